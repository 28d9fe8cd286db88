// A cpio "newc" (SVR4, no CRC) archive writer and reader: the format the Linux kernel unpacks
// as an initramfs. Several archives may be concatenated into one initrd; the kernel unpacks
// them in order, later entries replacing earlier ones.
//
// Entry layout: a 110-byte ASCII header ("070701" and 13 eight-digit hex fields: ino, mode,
// uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check),
// the NUL-terminated name padded to a 4-byte boundary, then the data padded to 4 bytes. The
// archive ends with an entry named "TRAILER!!!". Names carry no leading "/".
//
// The writer creates missing parent directories itself (the kernel does not), writes each path
// once, and copies host paths together with the symlinks on the way to them, so a library
// found as /lib/x86_64-linux-gnu/libc.so.6 on a merged-/usr system arrives as the symlink
// /lib -> usr/lib plus the real file under /usr/lib.

import { constants as fsConstants } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, posix, resolve } from 'node:path';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

const MAGIC = '070701';
const HEADER_SIZE = 110;
const TRAILER = 'TRAILER!!!';
const COPY_CHUNK = 4 << 20;
const MAX_FILE_SIZE = 0xffffffff;

/** Where archive bytes go. `write` may return a promise; the writer awaits it. */
export interface CpioSink {
  write(chunk: Uint8Array): Promise<void> | void;
}

/** Collects the archive in memory (small archives, tests). */
export class MemorySink implements CpioSink {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  write(chunk: Uint8Array): void {
    this.chunks.push(Buffer.from(chunk));
    this.size += chunk.length;
  }

  get length(): number {
    return this.size;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/** Writes the archive to a file handle, buffering small writes. */
export class FileSink implements CpioSink {
  private pending: Buffer[] = [];
  private pendingSize = 0;
  private written = 0;

  constructor(
    private readonly handle: FileHandle,
    private position = 0,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length >= 1 << 16) {
      await this.flush();
      await this.writeAll(chunk);
      return;
    }
    this.pending.push(Buffer.from(chunk));
    this.pendingSize += chunk.length;
    if (this.pendingSize >= 1 << 20) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pendingSize === 0) return;
    const data = Buffer.concat(this.pending, this.pendingSize);
    this.pending = [];
    this.pendingSize = 0;
    await this.writeAll(data);
  }

  /** Bytes handed to the file so far (after flush()). */
  get bytesWritten(): number {
    return this.written + this.pendingSize;
  }

  private async writeAll(data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, this.position);
      this.position += bytesWritten;
      done += bytesWritten;
    }
    this.written += data.length;
  }
}

export interface EntryOptions {
  /** Permission bits (and setuid/setgid/sticky); the file type comes from the method. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; default 0. */
  mtime?: number;
}

export interface HostCopyOptions {
  /** Archive path for the host path (default: the same absolute path). Symlinks on the way
   * are only reproduced when the path is kept. */
  as?: string;
  /** Called for every regular file copied from the host (for progress / accounting). */
  onFile?: (hostPath: string, size: number) => void;
}

export interface HostTreeOptions extends HostCopyOptions {
  /** Return true to leave out a path (absolute host path; directories prune their subtree). */
  exclude?: (hostPath: string, isDirectory: boolean) => boolean;
}

/** Normalises an archive path: absolute-looking, no trailing slash, no "." or "..". */
export function archivePath(path: string): string {
  const p = posix.normalize('/' + path);
  if (p !== '/' && p.endsWith('/')) return p.slice(0, -1);
  return p;
}

function hex8(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`cpio header field out of range: ${value}`);
  }
  return value.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

const ZEROS = new Uint8Array(4);

interface Header {
  name: string; // without leading "/"
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
}

/**
 * A newc archive writer. Paths are absolute-looking archive paths ("/usr/bin/node"); parents
 * are created as 0755 directories when they were not written before. Each path is written
 * once: later writes of a path already in the archive are ignored (first one wins).
 */
export class CpioWriter {
  private readonly seen = new Map<string, number>(); // path -> file type bits
  private ino: number;
  private bytes = 0;
  private finished = false;

  constructor(
    private readonly sink: CpioSink,
    options: { firstInode?: number } = {},
  ) {
    this.ino = options.firstInode ?? 721;
  }

  /** Bytes emitted so far. */
  get size(): number {
    return this.bytes;
  }

  /** True when `path` has been written (explicitly or as a created parent). */
  has(path: string): boolean {
    return this.seen.has(archivePath(path));
  }

  /** The archive paths written so far, in order. */
  paths(): string[] {
    return [...this.seen.keys()];
  }

  async directory(path: string, options: EntryOptions = {}): Promise<void> {
    const p = archivePath(path);
    if (p === '/' || this.seen.has(p)) return;
    await this.parents(p);
    await this.entry(p, S_IFDIR | (options.mode ?? 0o755), options, 0, 2);
  }

  async file(path: string, data: Uint8Array | string, options: EntryOptions = {}): Promise<void> {
    const p = archivePath(path);
    if (this.seen.has(p)) return;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    await this.parents(p);
    await this.entry(p, S_IFREG | (options.mode ?? 0o644), options, bytes.length, 1);
    await this.emit(bytes);
    await this.emit(ZEROS.subarray(0, pad4(bytes.length)));
  }

  async symlink(path: string, target: string, options: EntryOptions = {}): Promise<void> {
    const p = archivePath(path);
    if (this.seen.has(p)) return;
    const bytes = Buffer.from(target, 'utf8');
    await this.parents(p);
    await this.entry(p, S_IFLNK | (options.mode ?? 0o777), options, bytes.length, 1);
    await this.emit(bytes);
    await this.emit(ZEROS.subarray(0, pad4(bytes.length)));
  }

  async charDevice(path: string, major: number, minor: number, options: EntryOptions = {}): Promise<void> {
    const p = archivePath(path);
    if (this.seen.has(p)) return;
    await this.parents(p);
    await this.entry(p, S_IFCHR | (options.mode ?? 0o600), options, 0, 1, major, minor);
  }

  /**
   * Copies a regular file from the host, streaming its contents. Mode and mtime come from
   * the host file unless given.
   */
  async hostFile(path: string, hostPath: string, options: EntryOptions = {}): Promise<number> {
    const p = archivePath(path);
    if (this.seen.has(p)) return 0;
    const handle = await open(hostPath, fsConstants.O_RDONLY);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new Error(`${hostPath}: not a regular file`);
      if (st.size > MAX_FILE_SIZE) throw new Error(`${hostPath}: too large for a newc archive (${st.size} bytes)`);
      await this.parents(p);
      const mode = options.mode ?? st.mode & 0o7777;
      await this.entry(p, S_IFREG | mode, { mtime: Math.floor(st.mtimeMs / 1000), ...options }, st.size, 1);
      let position = 0;
      const buffer = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(st.size, 1)));
      while (position < st.size) {
        const want = Math.min(buffer.length, st.size - position);
        const { bytesRead } = await handle.read(buffer, 0, want, position);
        if (bytesRead === 0) throw new Error(`${hostPath}: file shrank while being archived`);
        // a copy: the sink may keep the chunk while we refill the buffer
        await this.emit(Buffer.from(buffer.subarray(0, bytesRead)));
        position += bytesRead;
      }
      await this.emit(ZEROS.subarray(0, pad4(st.size)));
      return st.size;
    } finally {
      await handle.close();
    }
  }

  /**
   * Copies a host path with everything needed to open it by that path: each symlink met on
   * the way (in any component) becomes a symlink entry and its target is copied too;
   * directories become directory entries (not their contents); the final file is copied.
   * Returns the host path of the final regular file or directory.
   */
  async hostPath(hostPath: string, options: HostCopyOptions = {}): Promise<string> {
    const abs = resolve(hostPath);
    if (options.as !== undefined) {
      const real = await realpath(abs);
      const st = await lstat(real);
      if (st.isDirectory()) await this.directory(options.as, hostEntryOptions(st));
      else {
        const size = await this.hostFile(options.as, real);
        options.onFile?.(real, size);
      }
      return real;
    }
    return this.copyChain(abs, options, 0);
  }

  /**
   * Copies a host directory tree (directories, regular files, symlinks as symlinks) to the same
   * absolute path, or under `as`. Sockets, FIFOs and device nodes are skipped. The directory
   * itself is reached like hostPath() reaches a path (symlinks on the way reproduced).
   */
  async hostTree(hostDir: string, options: HostTreeOptions = {}): Promise<void> {
    const root = resolve(hostDir);
    const realRoot = options.as === undefined ? await this.copyChain(root, options, 0) : root;
    const base = options.as === undefined ? realRoot : archivePath(options.as);
    if (options.as !== undefined) await this.directory(base, hostEntryOptions(await lstat(root)));
    await this.walk(realRoot, base, options);
  }

  /** Writes the trailer. The sink is not closed. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.entryRaw(
      { name: TRAILER, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0, rdevMajor: 0, rdevMinor: 0 },
      0,
    );
  }

  private async walk(hostDir: string, archiveDir: string, options: HostTreeOptions): Promise<void> {
    const names = (await readdir(hostDir)).sort();
    for (const name of names) {
      const host = join(hostDir, name);
      const target = posix.join(archiveDir, name);
      const st = await lstat(host);
      if (options.exclude?.(host, st.isDirectory()) === true) continue;
      if (st.isDirectory()) {
        await this.directory(target, hostEntryOptions(st));
        await this.walk(host, target, options);
      } else if (st.isFile()) {
        const size = await this.hostFile(target, host);
        options.onFile?.(host, size);
      } else if (st.isSymbolicLink()) {
        await this.symlink(target, await readlink(host), { mtime: Math.floor(st.mtimeMs / 1000) });
      }
    }
  }

  /** Copies `abs` (absolute, normalised) with its symlink chain; returns the real path reached. */
  private async copyChain(abs: string, options: HostCopyOptions, depth: number): Promise<string> {
    if (depth > 40) throw new Error(`${abs}: too many levels of symbolic links`);
    const parts = abs.split('/').filter((s) => s !== '');
    let current = '/';
    for (let i = 0; i < parts.length; i++) {
      const next = posix.join(current, parts[i]!);
      const st = await lstat(next);
      const last = i === parts.length - 1;
      if (st.isSymbolicLink()) {
        const link = await readlink(next);
        await this.symlink(next, link, { mtime: Math.floor(st.mtimeMs / 1000) });
        const targetAbs = posix.normalize(isAbsolute(link) ? link : posix.join(current, link));
        const rest = parts.slice(i + 1).join('/');
        return this.copyChain(rest === '' ? targetAbs : posix.join(targetAbs, rest), options, depth + 1);
      }
      if (st.isDirectory()) {
        await this.directory(next, hostEntryOptions(st));
        current = next;
        continue;
      }
      if (!last) throw new Error(`${abs}: ${next} is not a directory`);
      if (st.isFile()) {
        const size = await this.hostFile(next, next);
        options.onFile?.(next, size);
      } else {
        throw new Error(`${next}: not a regular file, directory or symlink`);
      }
      return next;
    }
    return current;
  }

  private async parents(p: string): Promise<void> {
    const parent = posix.dirname(p);
    if (parent === '/' || this.seen.has(parent)) return;
    await this.parents(parent);
    await this.entry(parent, S_IFDIR | 0o755, {}, 0, 2);
  }

  private async entry(
    p: string,
    mode: number,
    options: EntryOptions,
    size: number,
    nlink: number,
    rdevMajor = 0,
    rdevMinor = 0,
  ): Promise<void> {
    if (this.finished) throw new Error('cpio archive already finished');
    this.seen.set(p, mode & S_IFMT);
    await this.entryRaw(
      {
        name: p.slice(1),
        mode,
        uid: options.uid ?? 0,
        gid: options.gid ?? 0,
        nlink,
        mtime: options.mtime ?? 0,
        size,
        rdevMajor,
        rdevMinor,
      },
      this.ino++,
    );
  }

  private async entryRaw(h: Header, ino: number): Promise<void> {
    const name = Buffer.from(h.name + '\0', 'utf8');
    const header =
      MAGIC +
      hex8(ino) +
      hex8(h.mode) +
      hex8(h.uid) +
      hex8(h.gid) +
      hex8(h.nlink) +
      hex8(h.mtime) +
      hex8(h.size) +
      hex8(0) +
      hex8(0) +
      hex8(h.rdevMajor) +
      hex8(h.rdevMinor) +
      hex8(name.length) +
      hex8(0);
    const head = Buffer.alloc(HEADER_SIZE + name.length + pad4(HEADER_SIZE + name.length));
    head.write(header, 0, 'latin1');
    name.copy(head, HEADER_SIZE);
    await this.emit(head);
  }

  private async emit(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    await this.sink.write(chunk);
  }
}

function hostEntryOptions(st: { mode: number; mtimeMs: number }): EntryOptions {
  return { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
}

/** One entry read back from a newc archive. */
export interface CpioEntry {
  /** Archive path with a leading "/". */
  path: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Buffer;
}

/**
 * Parses newc archives (several concatenated ones too, with zero padding between them) up to
 * the end of `buf`. Throws on a bad magic number, a header field that is not hex, or a
 * truncated entry.
 */
export function readCpio(buf: Buffer): CpioEntry[] {
  const entries: CpioEntry[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) {
      off++;
      continue;
    } // padding between concatenated archives
    if (off + HEADER_SIZE > buf.length) throw new Error(`truncated cpio header at ${off}`);
    const magic = buf.toString('latin1', off, off + 6);
    if (magic !== MAGIC) throw new Error(`bad cpio magic ${JSON.stringify(magic)} at ${off}`);
    const at = off;
    const field = (i: number): number => {
      const hex = buf.toString('latin1', at + 6 + i * 8, at + 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(hex)) throw new Error(`bad cpio header field ${JSON.stringify(hex)} at ${at}`);
      return parseInt(hex, 16);
    };
    const nameSize = field(11);
    const size = field(6);
    const nameStart = off + HEADER_SIZE;
    const name = buf.toString('utf8', nameStart, nameStart + nameSize - 1);
    const dataStart = nameStart + nameSize + pad4(HEADER_SIZE + nameSize);
    if (dataStart + size > buf.length) throw new Error(`truncated cpio entry ${name}`);
    off = dataStart + size + pad4(size);
    if (name === TRAILER) continue;
    entries.push({
      path: '/' + name,
      ino: field(0),
      mode: field(1),
      uid: field(2),
      gid: field(3),
      nlink: field(4),
      mtime: field(5),
      rdevMajor: field(9),
      rdevMinor: field(10),
      data: buf.subarray(dataStart, dataStart + size),
    });
  }
  return entries;
}

/** Convenience: builds a small archive in memory. */
export async function buildCpio(fill: (w: CpioWriter) => Promise<void>): Promise<Buffer> {
  const sink = new MemorySink();
  const writer = new CpioWriter(sink);
  await fill(writer);
  await writer.finish();
  return sink.toBuffer();
}
