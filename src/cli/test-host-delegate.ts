// Commands that boot VMs (sweep, shell) on a machine whose /dev/kvm cannot run them: the same
// command runs again inside the emulated KVM test host (src/host), with one line saying so.
// Paths named on the command line are made absolute and their directories shared into the
// test host; the inner command's output streams through; a result block the inner command
// prints between markers (see RESULT_BEGIN) is taken out of the stream and handed back, so
// files the user asked for (--json, --junit) are written on this machine, at the paths given.
// Failure bundles come back as blocks (bundle-transfer.ts) through L1's virtio serial port
// (a file here, read when the run ends) or, failing that, through the output stream.

import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isHardwareKvm, probeKvm, type KvmProbe } from '../doctor/kvm-kind.js';
import { EXIT_INTERRUPTED, KtstrError, UsageError } from './errors.js';
import { paint } from './colour.js';
import { BundleBlockFilter, BundleReceiver } from './bundle-transfer.js';

export const RESULT_BEGIN = '@@KTSTR_RESULT_BEGIN@@';
export const RESULT_END = '@@KTSTR_RESULT_END@@';

/** Why this process cannot run VMs itself (null: it can). */
export function unusableKvm(env: NodeJS.ProcessEnv = process.env): { probe: KvmProbe; why: string } | null {
  const probe = probeKvm();
  if (isHardwareKvm(probe)) return null;
  if (env.KTSTR_IN_TEST_HOST === '1') return null; // L1's KVM is what there is; let it fail loudly if it does
  const why =
    probe.kind === 'absent'
      ? '/dev/kvm is absent'
      : probe.kind === 'no-access'
        ? '/dev/kvm is not accessible to this user'
        : probe.kind === 'pvm'
          ? '/dev/kvm is PVM, which cannot run Linux guests'
          : `/dev/kvm is ${probe.kind} (${probe.detail})`;
  return { probe, why };
}

/** The directory to share for a path given on the command line (the file's directory, or the directory itself). */
export function shareDirFor(path: string): string | undefined {
  const abs = resolve(path);
  if (!existsSync(abs)) return undefined;
  return statSync(abs).isDirectory() ? abs : dirname(abs);
}

export interface DelegateOptions {
  /** The command's arguments after the program name (e.g. ['sweep', '--kernel', '/abs/k']). */
  args: string[];
  /** Host directories the inner command reads (kernels, configs). */
  shareDirs: string[];
  memoryMiB: number;
  /** Whole run, ms. */
  timeoutMs: number;
  /** Receives the result block the inner command printed, if any. */
  onResult?: (text: string) => void;
  /** Where the inner command's output goes (default stdout; stderr when stdout is for a result file). */
  output?: NodeJS.WritableStream;
}

/** Splits the inner command's output: everything is passed on except the result block. */
export class ResultBlockFilter {
  private pending = '';
  private inBlock = false;
  private block = '';
  result: string | undefined;

  constructor(private readonly forward: (text: string) => void) {}

  private afterEnd = false;

  push(text: string): void {
    this.pending += text;
    for (;;) {
      if (this.afterEnd) {
        // the newline after the end marker belongs to the block
        if (this.pending === '') return;
        this.pending = this.pending.replace(/^\r?\n/, '');
        if (this.pending === '\r') return;
        this.afterEnd = false;
      }
      const marker = this.inBlock ? RESULT_END : RESULT_BEGIN;
      const i = this.pending.indexOf(marker);
      if (i < 0) {
        // keep a tail that might be the start of the marker, never half a surrogate pair
        let cut = this.pending.length - Math.min(this.pending.length, marker.length - 1);
        const unit = this.pending.charCodeAt(cut);
        if (cut > 0 && unit >= 0xdc00 && unit <= 0xdfff) cut--;
        this.take(this.pending.slice(0, cut));
        this.pending = this.pending.slice(cut);
        return;
      }
      this.take(this.pending.slice(0, i));
      this.pending = this.pending.slice(i + marker.length);
      if (this.inBlock) {
        this.result = this.block.trim();
        this.block = '';
        this.afterEnd = true;
      }
      this.inBlock = !this.inBlock;
    }
  }

  private take(text: string): void {
    if (this.inBlock) this.block += text;
    else if (text !== '') this.forward(text);
  }

  end(): void {
    if (!this.inBlock && this.pending !== '') this.forward(this.pending);
    this.pending = '';
  }
}

/** Rebuilds the bundles the inner command wrote to the test host's output port (`file`: what QEMU received). */
function receivePort(file: string, forward: (text: string) => void): void {
  if (!existsSync(file)) return;
  const blocks = new BundleBlockFilter(
    new BundleReceiver((m) => process.stderr.write(paint(process.stderr).red(`ktstr-wasm: ${m}`) + '\n')),
    forward,
  );
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4 * 1024 * 1024);
    const text = new StringDecoder('utf8');
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) blocks.push(text.write(buf.subarray(0, n)));
    blocks.push(text.end());
  } finally {
    closeSync(fd);
    blocks.end();
  }
}

/** Runs `ktstr-wasm <args>` inside the test host; returns its exit status. */
export async function runInTestHostInstead(o: DelegateOptions, why: string): Promise<number> {
  const { runInTestHost, testHostAvailable } = await import('../host/index.js');
  const available = testHostAvailable();
  if (!available.ok) throw new UsageError(`${why}, and the emulated test host is unavailable: ${available.reason}`);
  process.stderr.write(
    paint(process.stderr).dim(
      `ktstr-wasm: ${why}: running inside the emulated KVM test host (QEMU TCG; slower, real KVM)`,
    ) + '\n',
  );
  const bin = fileURLToPath(new URL('../../../bin/ktstr-wasm', import.meta.url));
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const utf8 = new StringDecoder('utf8');
  const out = o.output ?? process.stdout;
  // failure bundles the inner command prints as blocks are rebuilt here (bundle-transfer.ts)
  const bundles = new BundleBlockFilter(
    new BundleReceiver((m) => process.stderr.write(paint(process.stderr).red(`ktstr-wasm: ${m}`) + '\n')),
    (t) => {
      if (t !== '') out.write(t);
    },
  );
  const filter = new ResultBlockFilter((t) => bundles.push(t));
  // the fast way out: L1's virtio serial port, received into a file here and read at the end
  const portDir = mkdtempSync(join(tmpdir(), 'ktstr-port-'));
  const portFile = join(portDir, 'port.out');
  try {
    const r = await runInTestHost({
      argv: [process.execPath, bin, ...o.args],
      cwd: process.cwd(),
      env: process.env,
      memoryMiB: o.memoryMiB,
      timeoutMs: o.timeoutMs,
      shareDirs: [...new Set(o.shareDirs)],
      signal: controller.signal,
      outputFile: portFile,
      onOutput: (chunk) => filter.push(utf8.write(chunk)),
      onProgress: (m) => process.stderr.write(paint(process.stderr).dim(`ktstr-wasm: ${m}`) + '\n'),
    });
    filter.end();
    bundles.end();
    if (filter.result !== undefined) o.onResult?.(filter.result);
    if (r.timedOut)
      throw new KtstrError(`the test host did not finish within ${Math.round(o.timeoutMs / 1000)} s; it was stopped`);
    return r.exitCode;
  } catch (e) {
    // a TestHostError (the test host could not run the command) is a failure, as any error is
    if (controller.signal.aborted) return EXIT_INTERRUPTED;
    throw e;
  } finally {
    bundles.end(); // a cut-off bundle's temporary directory goes
    receivePort(portFile, (t) => out.write(t));
    rmSync(portDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
