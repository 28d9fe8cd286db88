// Failure bundles out of the emulated test host. Its shared directories are copies (files
// written inside stay inside): the way back is L1's virtio serial port (src/host/run.ts
// outputFile; ~150 MB/s) or, without it, the command's output over L1's serial console
// (~0.15 MB/s of core data). The inner sweep/test writes each bundle as blocks as soon as its
// cell finishes (then deletes its copy, which lives in L1's RAM), and the outer command
// rebuilds the bundle at the same absolute path here. A block:
//   @@KTSTR_FILE@@ {"bundle":DIR,"name":FILE,"size":N}
//   D <offset hex> <base64 of raw-deflated bytes>      (non-zero 1 MiB pieces only: holes stay holes)
//   @@KTSTR_FILE_END@@ <sha256 hex of the D lines' text>
//   ... more files ...
//   @@KTSTR_BUNDLE_END@@ DIR
// Deflate only shrinks the transfer (kernel pages compress ~3x); the file written here is the
// same sparse, uncompressed core inspect, crash and drgn read. A bundle is built in a
// temporary directory next to DIR and renamed into place when its end arrives intact; a
// damaged or cut-off block removes it and says so.

import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

export const FILE_BEGIN = '@@KTSTR_FILE@@';
export const FILE_END = '@@KTSTR_FILE_END@@';
export const BUNDLE_END = '@@KTSTR_BUNDLE_END@@';
const PIECE = 1024 * 1024;
const PAGE = 4096;
const MARKERS = [FILE_BEGIN, FILE_END, BUNDLE_END];
/** Characters that tell a block line from another (the longest marker). */
const HEAD = Math.max(...MARKERS.map((m) => m.length));

function allZero(b: Uint8Array, n: number): boolean {
  if (b.byteOffset % 4 !== 0) {
    for (let i = 0; i < n; i++) if (b[i] !== 0) return false;
    return true;
  }
  const w = new Int32Array(b.buffer, b.byteOffset, n >> 2);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  for (let i = n & ~3; i < n; i++) if (b[i] !== 0) return false;
  return true;
}

/** Writes bundle `dir` (its plain files) as blocks through `write` (synchronously: no other output gets between). */
export function emitBundle(dir: string, write: (text: string) => void): void {
  const buf = new Uint8Array(PIECE);
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const st = statSync(path);
    if (!st.isFile()) continue;
    write(`${FILE_BEGIN} ${JSON.stringify({ bundle: dir, name, size: st.size })}\n`);
    const hash = createHash('sha256');
    const fd = openSync(path, 'r');
    try {
      for (let off = 0; off < st.size; off += PIECE) {
        const n = readSync(fd, buf, 0, Math.min(PIECE, st.size - off), off);
        if (n === 0 || allZero(buf, n)) continue;
        const line = `D ${off.toString(16)} ${deflateRawSync(buf.subarray(0, n), { level: 1 }).toString('base64')}`;
        hash.update(line);
        write(line + '\n');
      }
    } finally {
      closeSync(fd);
    }
    write(`${FILE_END} ${hash.digest('hex')}\n`);
  }
  write(`${BUNDLE_END} ${dir}\n`);
}

/** Rebuilds the bundles of the block lines it is given; reports each one finished or lost. */
export class BundleReceiver {
  private dir: string | null = null;
  private tmp: string | null = null;
  private file: { fd: number; size: number; hash: ReturnType<typeof createHash> } | null = null;
  private broken: string | null = null;
  readonly received: string[] = [];

  /** Inside a file's block (its data lines are coming). */
  get inFile(): boolean {
    return this.file !== null;
  }

  constructor(private readonly report: (message: string) => void) {}

  /** Whether `line` belongs to a block (it is then consumed). */
  accepts(line: string): boolean {
    return (
      line.startsWith(FILE_BEGIN) ||
      line.startsWith(FILE_END) ||
      line.startsWith(BUNDLE_END) ||
      (this.file !== null && line.startsWith('D '))
    );
  }

  line(line: string): void {
    try {
      if (line.startsWith(FILE_BEGIN))
        this.begin(JSON.parse(line.slice(FILE_BEGIN.length)) as { bundle: unknown; name: unknown; size: unknown });
      else if (line.startsWith(FILE_END)) this.endFile(line.slice(FILE_END.length).trim());
      else if (line.startsWith(BUNDLE_END)) this.endBundle(line.slice(BUNDLE_END.length).trim());
      else this.data(line);
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  private begin(h: { bundle: unknown; name: unknown; size: unknown }): void {
    if (
      typeof h.bundle !== 'string' ||
      !isAbsolute(h.bundle) ||
      typeof h.name !== 'string' ||
      h.name !== basename(h.name) ||
      h.name.startsWith('.') ||
      !Number.isSafeInteger(h.size) ||
      (h.size as number) < 0
    )
      throw new Error('a malformed file header');
    if (this.dir !== h.bundle) {
      if (this.dir !== null) this.fail('a bundle ended without its end line');
      this.dir = h.bundle;
      this.broken = null;
      mkdirSync(dirname(h.bundle), { recursive: true });
      this.tmp = mkdtempSync(join(dirname(h.bundle), `.${basename(h.bundle)}.recv-`));
    }
    if (this.broken !== null) return;
    this.closeFile();
    this.file = {
      fd: openSync(join(this.tmp!, h.name), 'wx', 0o644),
      size: h.size as number,
      hash: createHash('sha256'),
    };
  }

  private data(line: string): void {
    if (this.broken !== null || this.file === null) return;
    const m = /^D ([0-9a-f]{1,12}) ([A-Za-z0-9+/=]*)$/.exec(line);
    if (m === null) throw new Error('a malformed data line');
    const bytes = inflateRawSync(Buffer.from(m[2], 'base64'));
    const at = parseInt(m[1], 16);
    if (at + bytes.length > this.file.size) throw new Error('data past the end of the file');
    // only the non-zero 4 KiB pages: the rest stays a hole, as in the core that was sent
    for (let p = 0; p < bytes.length;) {
      const end = Math.min(p + PAGE, bytes.length);
      if (allZero(bytes.subarray(p, end), end - p)) {
        p = end;
        continue;
      }
      let runEnd = end;
      while (
        runEnd < bytes.length &&
        !allZero(bytes.subarray(runEnd, Math.min(runEnd + PAGE, bytes.length)), Math.min(PAGE, bytes.length - runEnd))
      )
        runEnd = Math.min(runEnd + PAGE, bytes.length);
      for (let done = p; done < runEnd;) done += writeSync(this.file.fd, bytes, done, runEnd - done, at + done);
      p = runEnd;
    }
    this.file.hash.update(line);
  }

  private endFile(digest: string): void {
    if (this.broken !== null || this.file === null) return;
    if (this.file.hash.digest('hex') !== digest) throw new Error('a file arrived damaged (checksum)');
    ftruncateSync(this.file.fd, this.file.size);
    this.closeFile();
  }

  private endBundle(dir: string): void {
    if (this.dir !== dir || this.tmp === null) throw new Error(`an end for ${dir}, which did not begin`);
    if (this.broken === null) {
      this.closeFile();
      chmodSync(this.tmp, 0o755);
      const old = existsSync(dir) ? `${this.tmp}.old` : null;
      if (old !== null) renameSync(dir, old);
      renameSync(this.tmp, dir);
      if (old !== null) rmSync(old, { recursive: true, force: true });
      this.received.push(dir);
    }
    this.dir = null;
    this.tmp = null;
  }

  private closeFile(): void {
    if (this.file !== null) {
      closeSync(this.file.fd);
      this.file = null;
    }
  }

  private fail(why: string): void {
    this.closeFile();
    if (this.tmp !== null) rmSync(this.tmp, { recursive: true, force: true });
    if (this.dir !== null && this.broken === null)
      this.report(`the failure bundle ${this.dir} could not be brought out of the test host: ${why}`);
    this.broken = why;
  }

  /** The output ended: a bundle still open is cut off. */
  end(): void {
    if (this.dir !== null) this.fail('the output ended in the middle of it');
    this.dir = null;
    this.tmp = null;
  }
}

/**
 * A text filter for the inner command's output: whole lines that belong to bundle blocks go
 * to `receiver`, everything else to `forward` at once. A line is held back only while its
 * first characters are too few to tell and could start a block line, and a block line is gathered
 * in pieces (linear in its length: data lines are ~1.4 MB and arrive in small chunks).
 */
export class BundleBlockFilter {
  /** The current line: 'start' (undecided, its head in `parts`), 'forward' (not ours), 'block' (gathered in `parts`). */
  private state: 'start' | 'forward' | 'block' = 'start';
  private parts: string[] = [];
  private headLen = 0;

  constructor(
    private readonly receiver: BundleReceiver,
    private readonly forward: (text: string) => void,
  ) {}

  private isBlock(head: string): boolean {
    return this.receiver.accepts(head);
  }

  private couldBeBlock(head: string): boolean {
    return MARKERS.some((m) => m.startsWith(head)) || (this.receiver.inFile && (head === 'D' || head.startsWith('D ')));
  }

  push(text: string): void {
    let out = '';
    for (let i = 0; i < text.length;) {
      const nl = text.indexOf('\n', i);
      const end = nl < 0 ? text.length : nl + 1;
      const piece = text.slice(i, end);
      i = end;
      const lineEnds = nl >= 0;
      if (this.state === 'start') {
        this.parts.push(piece);
        this.headLen += piece.length;
        if (this.headLen < HEAD && !lineEnds) {
          const head = this.parts.join('');
          if (this.couldBeBlock(head)) {
            this.parts = [head];
            continue;
          }
        }
        const head = this.parts.join('');
        this.parts = [];
        this.headLen = 0;
        if (this.isBlock(head)) {
          this.parts.push(head);
          this.state = 'block';
        } else {
          out += head;
          this.state = 'forward';
        }
      } else if (this.state === 'forward') {
        out += piece;
      } else {
        this.parts.push(piece);
      }
      if (lineEnds) {
        if (this.state === 'block') {
          if (out !== '') {
            this.forward(out);
            out = '';
          }
          const line = this.parts.join('');
          this.parts = [];
          this.receiver.line(line.slice(0, line.endsWith('\r\n') ? -2 : -1));
        }
        this.state = 'start';
      }
    }
    if (out !== '') this.forward(out);
  }

  end(): void {
    const rest = this.parts.join('');
    this.parts = [];
    if (rest !== '') {
      if (this.state === 'block' || (this.state === 'start' && this.isBlock(rest))) this.receiver.line(rest);
      else this.forward(rest);
    }
    this.state = 'start';
    this.receiver.end();
  }
}
