// Runs one command inside L1: QEMU TCG with an emulated AMD SVM CPU, the cached image as
// initramfs, the run spec sent over the serial console, the command's output streamed back
// between nonce markers, and its exit status read from the end marker.
//
// QEMU is always killed and reaped before runInTestHost returns or throws (timeout, abort,
// error); the only files used are the cached images.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { guestEnvironment, L1_PATH, newNonce, specLine } from './env.js';
import { TestHostError } from './errors.js';
import { ensureImage, findHostTools, findProjectDir, type TestHostImage } from './image.js';
import { cachedHostKernel } from './kernel.js';
import { findOnPath, hostCacheDir } from './paths.js';
import { FAIL_MARK, READY_MARK } from './init-script.js';
import { l1ClockCmdline, measureHostTscKhz } from './clock.js';

import { DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS, defaultCpus } from './defaults.js';
export { DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS, defaultCpus };
/** Exit status reported for a timeout (as timeout(1) does). */
export const TIMEOUT_EXIT_CODE = 124;


/**
 * The kernel command line of L1. `nohz=off highres=off`: a periodic local APIC timer. Under
 * QEMU 7.2 TCG with nested SVM an L1 timer interrupt is sometimes left pending in the APIC
 * (IRR 0xec, deliverable) without reaching the CPU — L1 then sleeps in HLT for ever, or stays
 * in a guest vCPU spinning on a lock whose holder never runs again. In one-shot mode nothing
 * re-arms the timer after that; in periodic mode the next tick delivers it. Measured: the
 * topology suite went from hanging on most runs to passing, and 4-vCPU guests boot 3x faster.
 */
export const L1_CMDLINE = [
  'console=ttyS0', 'quiet', 'loglevel=1', 'panic=-1', 'mitigations=off', 'tsc=reliable',
  'no_timer_check', 'random.trust_cpu=on', '8250.nr_uarts=1', 'i8042.noaux', 'i8042.nokbd',
  'nohz=off', 'highres=off',
].join(' ');

export interface RunInTestHostOptions {
  /** The command and its arguments, run inside L1 (looked up on L1's PATH). */
  argv: readonly string[];
  /** Working directory inside L1 (the same path as on the host); default process.cwd(). */
  cwd?: string;
  /**
   * Environment source: every KTSTR_* variable, CI, NO_COLOR, FORCE_COLOR, NODE_OPTIONS,
   * NODE_ENV, TZ, LANG, LC_ALL and the names in `keepEnv` are passed in; default process.env.
   * PATH and HOME are L1's own; KTSTR_IN_TEST_HOST=1 is set.
   */
  env?: NodeJS.ProcessEnv;
  keepEnv?: readonly string[];
  /** L1 RAM in MiB; default 3072. */
  memoryMiB?: number;
  /** L1 vCPUs; default defaultCpus() (half the host CPUs, 1 to 4). */
  cpus?: number;
  /** Whole run (boot included; image build excluded); default 900 000 ms. */
  timeoutMs?: number;
  /** The command's output (stdout and stderr merged), as it comes. */
  onOutput?: (chunk: Buffer) => void;
  /** Short progress messages (building the image, booting). */
  onProgress?: (message: string) => void;
  /** L1's console before the command starts and QEMU's messages (for --verbose). */
  onConsole?: (text: string) => void;
  /** Aborting kills QEMU; the promise then rejects with TestHostError kind 'aborted'. */
  signal?: AbortSignal;
  /** Tree copied into L1 at the same path; default: the package/git root around cwd. */
  projectDir?: string;
  /** More host directories copied in at the same paths. */
  shareDirs?: readonly string[];
  /** Paths inside the project tree left out of L1 (relative to it); .git always is. */
  exclude?: readonly string[];
  /** Prebuilt kernels directory (default ../shared/kernels or $KTSTR_KERNELS_DIR); null: none. */
  kernelsDir?: string | null;
  /** Default hostCacheDir(). */
  cacheDir?: string;
  /**
   * A host file that receives what the command writes to L1's virtio serial port named
   * OUTPUT_PORT (a fast channel out of L1; the command finds the port's device through
   * KTSTR_HOST_PORT, see hostPortDevice()). Files written inside L1 stay there otherwise.
   */
  outputFile?: string;
}

/** The name of the virtio serial port that `outputFile` receives. */
export const OUTPUT_PORT = 'ktstr.out';

export interface TestHostResult {
  /** The command's exit status (128+n when killed by signal n), or 124 on timeout. */
  exitCode: number;
  timedOut: boolean;
  /** Seconds from spawning QEMU to the command starting inside L1. */
  bootSeconds: number;
  /** L1's own uptime when init asked for the command (guest clock). */
  guestBootSeconds: number;
  /** Seconds the command ran (start marker to end marker). */
  commandSeconds: number;
  /** Seconds from spawning QEMU to QEMU gone. */
  vmSeconds: number;
  /** Seconds spent finding or building the image. */
  imageSeconds: number;
  imageCached: boolean;
  imageBytes: number;
  imagePath: string;
  kernelRelease: string;
}

export interface TestHostAvailability {
  ok: boolean;
  /** When !ok: why not and what to do; when ok: what will be used. */
  reason: string;
  /** qemu-system-x86_64 found on PATH. */
  qemu?: string;
  /** The cached L1 kernel release, when there is one (else it is downloaded on first use). */
  kernelRelease?: string;
}

/**
 * Whether runInTestHost can work here: Linux x86-64, QEMU, busybox and firmware present, and the
 * L1 kernel cached or downloadable (apt-get, dpkg-deb, xz). Downloads and builds nothing.
 */
export function testHostAvailable(env: NodeJS.ProcessEnv = process.env): TestHostAvailability {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { ok: false, reason: `the test host needs Linux on x86-64 (this is ${process.platform}/${process.arch})` };
  }
  let qemu: string;
  try {
    qemu = findHostTools(env).qemu;
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  const kernel = cachedHostKernel(hostCacheDir(env), env);
  if (kernel !== undefined) {
    return { ok: true, reason: `QEMU TCG (${qemu}) with the cached L1 kernel ${kernel.release}`, qemu, kernelRelease: kernel.release };
  }
  const missing = ['apt-get', 'apt-cache', 'dpkg-deb', 'xz'].filter((t) => findOnPath(t, env) === undefined);
  if (missing.length > 0) {
    return { ok: false, qemu, reason: `the L1 kernel is not cached and ${missing.join(', ')} (to download it from Debian) ${missing.length > 1 ? 'are' : 'is'} missing` };
  }
  return { ok: true, qemu, reason: `QEMU TCG (${qemu}); the L1 kernel (Debian linux-image-6.12.*-cloud-amd64-unsigned) is downloaded on first use` };
}

/** QEMU's command line for L1 (the initrd is passed as fd 3). */
export function qemuArgs(image: TestHostImage, memoryMiB: number, cpus: number, env: NodeJS.ProcessEnv = process.env, tscKhz: number | null = measureHostTscKhz() ?? null, outputFile?: string): string[] {
  // KTSTR_HOST_CMDLINE_EXTRA: appended to L1's kernel command line (debugging: loglevel=7)
  const extra = env.KTSTR_HOST_CMDLINE_EXTRA?.trim() ?? '';
  const cmdline = [L1_CMDLINE, ...l1ClockCmdline(tscKhz), ...(extra === '' ? [] : [extra])].join(' ');
  // KTSTR_HOST_MONITOR=PATH: QEMU's human monitor on a unix socket (debugging a stalled L1:
  // `echo 'info registers' | socat - UNIX-CONNECT:PATH`)
  const monitor = env.KTSTR_HOST_MONITOR;
  const debug = monitor !== undefined && monitor !== '' ? ['-monitor', `unix:${monitor},server=on,wait=off`] : [];
  // outputFile: a virtio serial port on microvm's PCIe bus (L1's kernel has virtio-pci and
  // virtio-console built in; its virtio-mmio is a module the image does not carry)
  const port = outputFile === undefined ? [] : [
    '-device', 'virtio-serial-pci,id=ktvs', '-chardev', `file,id=ktout,path=${outputFile}`,
    '-device', `virtserialport,bus=ktvs.0,chardev=ktout,name=${OUTPUT_PORT}`,
  ];
  return [
    ...debug,
    '-accel', 'tcg', '-cpu', 'EPYC,+svm,+npt',
    // pit=on: without a PIT the kernel cannot calibrate the TSC under TCG and hangs
    '-M', `microvm,isa-serial=on,rtc=on,acpi=on,pit=on${outputFile === undefined ? '' : ',pcie=on'}`,
    ...port,
    '-smp', String(cpus), '-m', String(memoryMiB),
    '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio', '-no-reboot',
    '-kernel', image.kernel.bootImage, '-initrd', '/dev/fd/3', '-append', cmdline,
  ];
}

const TCG_WARNING = /^qemu-system-x86_64: warning: TCG doesn't support requested feature/;
const MAX_LOG = 64 * 1024;

/** Keeps the last MAX_LOG characters. */
class TailLog {
  text = '';

  add(s: string): void {
    this.text += s;
    if (this.text.length > 2 * MAX_LOG) this.text = this.text.slice(-MAX_LOG);
  }

  tail(lines: number): string {
    return this.text.replace(/\r/g, '').split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
  }
}

const qemuVersions = new Map<string, string | null>();
/** `10.0.2` from `qemu-system-x86_64 --version` (null when it does not say): what the guest may rely on of TCG. */
function qemuVersion(qemu: string): string | null {
  if (!qemuVersions.has(qemu)) {
    let v: string | null = null;
    try { v = /version (\d+\.\d+(?:\.\d+)?)/.exec(execFileSync(qemu, ['--version'], { encoding: 'utf8', timeout: 10_000 }))?.[1] ?? null; } catch { /* unknown */ }
    qemuVersions.set(qemu, v);
  }
  return qemuVersions.get(qemu)!;
}

/** Runs `argv` inside a fresh L1 and resolves with its exit status (see TestHostResult). */
export async function runInTestHost(options: RunInTestHostOptions): Promise<TestHostResult> {
  if (options.argv.length === 0) throw new TestHostError('no command given');
  const cwd = resolve(options.cwd ?? process.cwd());
  const sourceEnv = options.env ?? process.env;
  const memoryMiB = options.memoryMiB ?? DEFAULT_MEMORY_MIB;
  const cpus = options.cpus ?? defaultCpus();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 256) throw new TestHostError(`memory must be an integer >= 256 MiB (got ${memoryMiB})`);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new TestHostError(`cpus must be an integer from 1 to 64 (got ${cpus})`);
  const progress = options.onProgress ?? (() => {});
  options.signal?.throwIfAborted();

  const build = (): Promise<TestHostImage> => ensureImage({
    projectDir: options.projectDir ?? findProjectDir(cwd),
    shareDirs: options.shareDirs,
    exclude: options.exclude,
    kernelsDir: options.kernelsDir,
    cacheDir: options.cacheDir,
    env: sourceEnv,
    onProgress: progress,
    signal: options.signal,
  }).catch((err: unknown) => {
    if (options.signal?.aborted === true) throw new TestHostError('aborted while building the test host image', 'aborted', { cause: err });
    throw err;
  });
  let image = await build();
  options.signal?.throwIfAborted();
  const nonce = newNonce();
  const pathDirs = new Set(L1_PATH.split(':'));
  const extra = [image.node, image.qemu].map((p) => p.slice(0, p.lastIndexOf('/'))).filter((d) => !pathDirs.has(d));
  const env: Record<string, string> = {
    ...guestEnvironment(sourceEnv, options.keepEnv ?? []),
    PATH: [L1_PATH, ...new Set(extra)].join(':'),
    HOME: '/root',
    KTSTR_IN_TEST_HOST: '1',
    ...(qemuVersion(image.qemu) === null ? {} : { KTSTR_TEST_HOST_QEMU: qemuVersion(image.qemu)! }),
    ...(options.outputFile === undefined ? {} : { KTSTR_HOST_PORT: OUTPUT_PORT }),
  };
  const line = specLine({ nonce, cwd, env, argv: options.argv });
  // open the image now: QEMU gets this open file (as /dev/fd/3), so a concurrent run that
  // replaces the cached image cannot pull it away; a replacement that happened in between
  // is rebuilt once
  let fd: number;
  try {
    fd = openSync(image.path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    image = await build();
    fd = openSync(image.path, 'r');
  }

  progress(`booting the test host (L1 ${image.kernel.release}, QEMU TCG, ${cpus} vCPU, ${memoryMiB} MiB)`);

  let child: ChildProcess;
  const spawnedAt = performance.now();
  const args = qemuArgs(image, memoryMiB, cpus, sourceEnv, undefined, options.outputFile);
  // setpriv --pdeathsig: QEMU gets SIGKILL if this process dies without cleaning up
  // (SIGKILL, a crash), so L1 never outlives its owner
  const setpriv = findOnPath('setpriv', sourceEnv);
  try {
    child = setpriv !== undefined
      ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', image.qemu, ...args], { stdio: ['pipe', 'pipe', 'pipe', fd] })
      : spawn(image.qemu, args, { stdio: ['pipe', 'pipe', 'pipe', fd] });
  } finally {
    closeSync(fd);
  }
  return supervise(child, {
    nonce, line, timeoutMs, spawnedAt, image, options,
  });
}

interface SuperviseArgs {
  nonce: string;
  line: string;
  timeoutMs: number;
  spawnedAt: number;
  image: TestHostImage;
  options: RunInTestHostOptions;
}

/** Where the part of `buf` that could be the beginning of `mark` starts (buf.length if none). */
export function holdback(buf: Buffer, mark: Buffer): number {
  for (let i = Math.max(0, buf.length - (mark.length - 1)); i < buf.length; i++) {
    if (buf[i] === mark[0] && buf.subarray(i).equals(mark.subarray(0, buf.length - i))) return i;
  }
  return buf.length;
}

function supervise(child: ChildProcess, a: SuperviseArgs): Promise<TestHostResult> {
  const { nonce, options } = a;
  const startMark = Buffer.from(`${nonce}:start\n`, 'latin1');
  const endMark = Buffer.from(`${nonce}:exit:`, 'latin1');
  const consoleLog = new TailLog();
  const stderrLog = new TailLog();
  let phase: 'boot' | 'run' | 'done' = 'boot';
  let bootBuf: Buffer = Buffer.alloc(0);
  let runBuf: Buffer = Buffer.alloc(0);
  let exitCode: number | undefined;
  let guestBoot = NaN;
  let startedAt = NaN;
  let endedAt = NaN;
  let failure: string | undefined;
  let timedOut = false;
  let aborted = false;
  let specSent = false;

  const emit = (chunk: Buffer): void => {
    if (chunk.length > 0) options.onOutput?.(chunk);
  };

  const onRunData = (data: Buffer): void => {
    runBuf = runBuf.length === 0 ? data : Buffer.concat([runBuf, data]);
    const at = runBuf.indexOf(endMark);
    if (at < 0) {
      const cut = holdback(runBuf, endMark);
      emit(runBuf.subarray(0, cut));
      runBuf = runBuf.subarray(cut);
      return;
    }
    const nl = runBuf.indexOf(0x0a, at + endMark.length);
    if (nl < 0) {
      emit(runBuf.subarray(0, at));
      runBuf = runBuf.subarray(at);
      return;
    }
    emit(runBuf.subarray(0, at));
    const code = Number(runBuf.toString('latin1', at + endMark.length, nl).trim());
    exitCode = Number.isInteger(code) ? code : 1;
    endedAt = performance.now();
    phase = 'done';
    runBuf = Buffer.alloc(0);
    // L1 powers off by itself; give it a moment, then stop it
    setTimeout(() => kill(), 3000).unref();
  };

  const onBootData = (data: Buffer): void => {
    bootBuf = bootBuf.length === 0 ? data : Buffer.concat([bootBuf, data]);
    const text = bootBuf.toString('latin1');
    if (!specSent) {
      const r = text.indexOf(READY_MARK);
      if (r >= 0) {
        const eol = text.indexOf('\n', r);
        if (eol >= 0) {
          guestBoot = Number(text.slice(r + READY_MARK.length, eol).trim());
          specSent = true;
          child.stdin?.write(a.line);
        }
      }
    }
    const f = text.indexOf(FAIL_MARK);
    if (f >= 0 && failure === undefined) {
      const eol = text.indexOf('\n', f);
      if (eol >= 0) failure = text.slice(f + FAIL_MARK.length, eol).replace(/\r/g, '');
    }
    const s = bootBuf.indexOf(startMark);
    if (s >= 0) {
      consoleLog.add(bootBuf.toString('latin1', 0, s));
      options.onConsole?.(bootBuf.toString('latin1', 0, s));
      startedAt = performance.now();
      phase = 'run';
      const rest = bootBuf.subarray(s + startMark.length);
      bootBuf = Buffer.alloc(0);
      if (rest.length > 0) onRunData(rest);
      return;
    }
    if (bootBuf.length > 4 * MAX_LOG) {
      // no start marker yet: keep a bounded tail (markers are short)
      consoleLog.add(bootBuf.toString('latin1', 0, bootBuf.length - 256));
      options.onConsole?.(bootBuf.toString('latin1', 0, bootBuf.length - 256));
      bootBuf = bootBuf.subarray(bootBuf.length - 256);
    }
  };

  child.stdout?.on('data', (data: Buffer) => {
    if (phase === 'boot') onBootData(data);
    else if (phase === 'run') onRunData(data);
  });
  let stderrPartial = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderrPartial += data.toString('utf8');
    const lines = stderrPartial.split('\n');
    stderrPartial = lines.pop() ?? '';
    for (const l of lines) {
      if (TCG_WARNING.test(l) || l.trim() === '') continue;
      stderrLog.add(l + '\n');
      options.onConsole?.(l + '\n');
    }
  });
  child.stdin?.on('error', () => {}); // QEMU gone: nothing to write to

  function kill(): void {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, a.timeoutMs);
  const onAbort = (): void => {
    aborted = true;
    kill();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // process.exit() elsewhere (e.g. EPIPE on stdout): kill QEMU on the way out
  process.on('exit', kill);

  return new Promise<TestHostResult>((resolvePromise, reject) => {
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
      if (child.pid === undefined) { // never started: no 'close' to wait for
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        process.off('exit', kill);
        reject(new TestHostError(`cannot start ${a.image.qemu}: ${err.message}`, 'failed', { cause: err }));
      }
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      process.off('exit', kill);
      const vmSeconds = (performance.now() - a.spawnedAt) / 1000;
      if (phase === 'run') emit(runBuf); // output before an unexpected end
      if (phase === 'boot') {
        consoleLog.add(bootBuf.toString('latin1'));
        options.onConsole?.(bootBuf.toString('latin1'));
      }
      if (stderrPartial.trim() !== '' && !TCG_WARNING.test(stderrPartial)) stderrLog.add(stderrPartial);
      const base = {
        bootSeconds: Number.isNaN(startedAt) ? NaN : (startedAt - a.spawnedAt) / 1000,
        guestBootSeconds: guestBoot,
        commandSeconds: Number.isNaN(startedAt) ? 0 : ((Number.isNaN(endedAt) ? performance.now() : endedAt) - startedAt) / 1000,
        vmSeconds,
        imageSeconds: a.image.seconds,
        imageCached: a.image.cached,
        imageBytes: a.image.bytes,
        imagePath: a.image.path,
        kernelRelease: a.image.kernel.release,
      };
      if (exitCode !== undefined) {
        resolvePromise({ exitCode, timedOut: false, ...base });
        return;
      }
      if (timedOut) {
        resolvePromise({ exitCode: TIMEOUT_EXIT_CODE, timedOut: true, ...base });
        return;
      }
      const qemuSaid = stderrLog.tail(5);
      if (aborted || /terminating on signal/.test(qemuSaid)) {
        reject(new TestHostError(`test host stopped (${aborted ? 'aborted' : qemuSaid.split('\n').pop()})`, 'aborted'));
        return;
      }
      if (spawnError !== undefined) {
        reject(new TestHostError(`cannot start ${a.image.qemu}: ${spawnError.message}`, 'failed', { cause: spawnError }));
        return;
      }
      const how = sig !== null ? `killed by ${sig}` : `exit status ${code}`;
      let message: string;
      if (failure !== undefined) message = `the test host could not start the command: ${failure}`;
      else if (phase === 'run') message = `the test host stopped before the command finished (QEMU ${how})`;
      else message = `the test host (L1) did not boot (QEMU ${how}); KTSTR_HOST_CMDLINE_EXTRA=loglevel=7 shows its kernel messages with --verbose`;
      const details = [qemuSaid && `QEMU: ${qemuSaid}`, phase === 'boot' && `last L1 console lines:\n${consoleLog.tail(15)}`]
        .filter((s): s is string => typeof s === 'string' && s !== '').join('\n');
      reject(new TestHostError(details === '' ? message : `${message}\n${details}`, 'failed'));
    });
  });
}
