// Runs one command inside L1: QEMU TCG with an emulated AMD SVM CPU, the cached image as
// initramfs, the run spec sent over the serial console, the command's output streamed back
// between nonce markers, and its exit status read from the end marker.
//
// runInTestHost: options checked, the image found or built, the spec line made, QEMU spawned;
// then supervise (QEMU's stdout read by L1Console and its stderr by QemuStderr, l1-console.ts;
// limitRun: timeout, abort, process exit) and, when QEMU has closed, collectRun (the result,
// or the TestHostError that says why there is none).
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
import { L1Console, QemuStderr, type L1Event, type L1Phase } from './l1-console.js';
import { l1ClockCmdline, measureHostTscKhz } from './clock.js';

import { DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS, defaultCpus } from './defaults.js';
export { DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS, defaultCpus };
export { holdback } from './l1-console.js';
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
  'console=ttyS0',
  'quiet',
  'loglevel=1',
  'panic=-1',
  'mitigations=off',
  'tsc=reliable',
  'no_timer_check',
  'random.trust_cpu=on',
  '8250.nr_uarts=1',
  'i8042.noaux',
  'i8042.nokbd',
  'nohz=off',
  'highres=off',
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
    return {
      ok: true,
      reason: `QEMU TCG (${qemu}) with the cached L1 kernel ${kernel.release}`,
      qemu,
      kernelRelease: kernel.release,
    };
  }
  const missing = ['apt-get', 'apt-cache', 'dpkg-deb', 'xz'].filter((t) => findOnPath(t, env) === undefined);
  if (missing.length > 0) {
    return {
      ok: false,
      qemu,
      reason: `the L1 kernel is not cached and ${missing.join(', ')} (to download it from Debian) ${missing.length > 1 ? 'are' : 'is'} missing`,
    };
  }
  return {
    ok: true,
    qemu,
    reason: `QEMU TCG (${qemu}); the L1 kernel (Debian linux-image-6.12.*-cloud-amd64-unsigned) is downloaded on first use`,
  };
}

/** QEMU's command line for L1 (the initrd is passed as fd 3). */
export function qemuArgs(
  image: TestHostImage,
  memoryMiB: number,
  cpus: number,
  env: NodeJS.ProcessEnv = process.env,
  tscKhz: number | null = measureHostTscKhz() ?? null,
  outputFile?: string,
): string[] {
  // KTSTR_HOST_CMDLINE_EXTRA: appended to L1's kernel command line (debugging: loglevel=7)
  const extra = env.KTSTR_HOST_CMDLINE_EXTRA?.trim() ?? '';
  const cmdline = [L1_CMDLINE, ...l1ClockCmdline(tscKhz), ...(extra === '' ? [] : [extra])].join(' ');
  // KTSTR_HOST_MONITOR=PATH: QEMU's human monitor on a unix socket (debugging a stalled L1:
  // `echo 'info registers' | socat - UNIX-CONNECT:PATH`)
  const monitor = env.KTSTR_HOST_MONITOR;
  const debug = monitor !== undefined && monitor !== '' ? ['-monitor', `unix:${monitor},server=on,wait=off`] : [];
  // outputFile: a virtio serial port on one of microvm's virtio-mmio slots (L1 loads the
  // virtio_mmio module; virtio-console is built in). Not on microvm's PCIe bus: with QEMU 10,
  // pcie=on leaves L1 hung before its first console line.
  const port =
    outputFile === undefined
      ? []
      : [
          '-device',
          'virtio-serial-device,id=ktvs',
          '-chardev',
          `file,id=ktout,path=${outputFile}`,
          '-device',
          `virtserialport,bus=ktvs.0,chardev=ktout,name=${OUTPUT_PORT}`,
        ];
  return [
    ...debug,
    '-accel',
    'tcg',
    '-cpu',
    'EPYC,+svm,+npt',
    // pit=on: without a PIT the kernel cannot calibrate the TSC under TCG and hangs
    '-M',
    'microvm,isa-serial=on,rtc=on,acpi=on,pit=on',
    ...port,
    '-smp',
    String(cpus),
    '-m',
    String(memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-serial',
    'stdio',
    '-no-reboot',
    '-kernel',
    image.kernel.bootImage,
    '-initrd',
    '/dev/fd/3',
    '-append',
    cmdline,
  ];
}

const MAX_LOG = 64 * 1024;

/** Keeps the last MAX_LOG characters. */
class TailLog {
  text = '';

  add(s: string): void {
    this.text += s;
    if (this.text.length > 2 * MAX_LOG) this.text = this.text.slice(-MAX_LOG);
  }

  tail(lines: number): string {
    return this.text
      .replace(/\r/g, '')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-lines)
      .join('\n');
  }
}

const qemuVersions = new Map<string, string | null>();
/** `10.0.2` from `qemu-system-x86_64 --version` (null when it does not say): what the guest may rely on of TCG. */
function qemuVersion(qemu: string): string | null {
  if (!qemuVersions.has(qemu)) {
    let v: string | null = null;
    try {
      v =
        /version (\d+\.\d+(?:\.\d+)?)/.exec(
          execFileSync(qemu, ['--version'], { encoding: 'utf8', timeout: 10_000 }),
        )?.[1] ?? null;
    } catch {
      /* unknown */
    }
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
  if (!Number.isInteger(memoryMiB) || memoryMiB < 256)
    throw new TestHostError(`memory must be an integer >= 256 MiB (got ${memoryMiB})`);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64)
    throw new TestHostError(`cpus must be an integer from 1 to 64 (got ${cpus})`);
  const progress = options.onProgress ?? (() => {});
  options.signal?.throwIfAborted();

  const build = (): Promise<TestHostImage> =>
    ensureImage({
      projectDir: options.projectDir ?? findProjectDir(cwd),
      shareDirs: options.shareDirs,
      exclude: options.exclude,
      kernelsDir: options.kernelsDir,
      cacheDir: options.cacheDir,
      env: sourceEnv,
      onProgress: progress,
      signal: options.signal,
    }).catch((err: unknown) => {
      if (options.signal?.aborted === true)
        throw new TestHostError('aborted while building the test host image', 'aborted', { cause: err });
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
  progress(`booting the test host (L1 ${image.kernel.release}, QEMU TCG, ${cpus} vCPU, ${memoryMiB} MiB)`);
  const deadline = performance.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await bootAndRun(Math.max(1, deadline - performance.now()));
    } catch (err) {
      // L1 resetting before it is ready is TCG's rare early-boot fault (seen about once in
      // twenty boots under load), not the command's: one more boot, said on the progress line
      if (!(err instanceof L1ResetError) || attempt >= L1_BOOT_ATTEMPTS || options.signal?.aborted === true) throw err;
      progress(
        `the test host (L1) reset while booting; booting it again (attempt ${attempt + 1} of ${L1_BOOT_ATTEMPTS})`,
      );
    }
  }

  /** One QEMU: spawned on the image and supervised to its end. */
  async function bootAndRun(runTimeoutMs: number): Promise<TestHostResult> {
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
    let child: ChildProcess;
    const spawnedAt = performance.now();
    const args = qemuArgs(image, memoryMiB, cpus, sourceEnv, undefined, options.outputFile);
    // setpriv --pdeathsig: QEMU gets SIGKILL if this process dies without cleaning up
    // (SIGKILL, a crash), so L1 never outlives its owner
    const setpriv = findOnPath('setpriv', sourceEnv);
    try {
      child =
        setpriv !== undefined
          ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', image.qemu, ...args], {
              stdio: ['pipe', 'pipe', 'pipe', fd],
            })
          : spawn(image.qemu, args, { stdio: ['pipe', 'pipe', 'pipe', fd] });
    } finally {
      closeSync(fd);
    }
    return supervise(child, {
      nonce,
      line,
      timeoutMs: runTimeoutMs,
      spawnedAt,
      image,
      options,
    });
  }
}

/** How many times L1 is booted when it resets before it is ready (L1ResetError). */
const L1_BOOT_ATTEMPTS = 2;

/** L1 reset (QEMU ended with status 0 under -no-reboot) before its init said it was ready. */
class L1ResetError extends TestHostError {}

interface SuperviseArgs {
  nonce: string;
  line: string;
  timeoutMs: number;
  spawnedAt: number;
  image: TestHostImage;
  options: RunInTestHostOptions;
}

/** What supervise learns of a run as it goes; collectRun turns it into the result or the error. */
interface RunRecord {
  /** L1's uptime at the ready line (NaN before). */
  guestBoot: number;
  /** When the command started and ended (performance.now(); NaN before). */
  startedAt: number;
  endedAt: number;
  exitCode?: number;
  /** Why init could not start the command. */
  failure?: string;
  timedOut: boolean;
  aborted: boolean;
  spawnError?: Error;
  consoleLog: TailLog;
  stderrLog: TailLog;
}

/**
 * Runs QEMU to its end: L1's console through L1Console (the spec sent when init is ready, the
 * command's output passed on, its status kept), QEMU's stderr through QemuStderr, the run's
 * limits (timeout, abort, this process's exit); on QEMU's close, collectRun.
 */
function supervise(child: ChildProcess, a: SuperviseArgs): Promise<TestHostResult> {
  const { options } = a;
  const record: RunRecord = {
    guestBoot: NaN,
    startedAt: NaN,
    endedAt: NaN,
    timedOut: false,
    aborted: false,
    consoleLog: new TailLog(),
    stderrLog: new TailLog(),
  };
  const l1 = new L1Console(a.nonce);
  const stderr = new QemuStderr();
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const onL1 = (e: L1Event): void => {
    switch (e.kind) {
      case 'ready':
        record.guestBoot = e.guestBootSeconds;
        child.stdin?.write(a.line);
        break;
      case 'failure':
        record.failure = e.message;
        break;
      case 'console':
        record.consoleLog.add(e.text);
        options.onConsole?.(e.text);
        break;
      case 'start':
        record.startedAt = performance.now();
        break;
      case 'output':
        options.onOutput?.(e.bytes);
        break;
      case 'exit':
        record.exitCode = e.code;
        record.endedAt = performance.now();
        // L1 powers off by itself; give it a moment, then stop it
        setTimeout(kill, 3000).unref();
        break;
    }
  };

  child.stdout?.on('data', (data: Buffer) => {
    for (const e of l1.feed(data)) onL1(e);
  });
  child.stderr?.on('data', (data: Buffer) => {
    for (const l of stderr.feed(data)) {
      record.stderrLog.add(l);
      options.onConsole?.(l);
    }
  });
  child.stdin?.on('error', () => {}); // QEMU gone: nothing to write to
  const release = limitRun(a, record, kill);

  return new Promise<TestHostResult>((resolvePromise, reject) => {
    child.once('error', (err) => {
      record.spawnError = err;
      if (child.pid === undefined) {
        // never started: no 'close' to wait for
        release();
        reject(new TestHostError(`cannot start ${a.image.qemu}: ${err.message}`, 'failed', { cause: err }));
      }
    });
    child.once('close', (code, sig) => {
      release();
      const vmSeconds = (performance.now() - a.spawnedAt) / 1000;
      for (const e of l1.finish()) onL1(e); // output before an unexpected end, or L1's last console text
      const last = stderr.finish();
      if (last !== undefined) record.stderrLog.add(last);
      const outcome = collectRun(record, a, { phase: l1.phase, code, sig, vmSeconds, now: performance.now() });
      if (outcome instanceof TestHostError) reject(outcome);
      else resolvePromise(outcome);
    });
  });
}

/** The run's limits: the timeout and the abort signal kill QEMU, and so does this process's exit. Returns their release. */
function limitRun(a: SuperviseArgs, record: RunRecord, kill: () => void): () => void {
  const timer = setTimeout(() => {
    record.timedOut = true;
    kill();
  }, a.timeoutMs);
  const onAbort = (): void => {
    record.aborted = true;
    kill();
  };
  a.options.signal?.addEventListener('abort', onAbort, { once: true });
  // process.exit() elsewhere (e.g. EPIPE on stdout): kill QEMU on the way out
  process.on('exit', kill);
  return () => {
    clearTimeout(timer);
    a.options.signal?.removeEventListener('abort', onAbort);
    process.off('exit', kill);
  };
}

/** How QEMU ended: where L1 was, its exit status or signal, its lifetime, and the time now. */
interface QemuEnd {
  phase: L1Phase;
  code: number | null;
  sig: NodeJS.Signals | null;
  vmSeconds: number;
  now: number;
}

/** Collect: the result of a run whose QEMU has ended, or the error that says why there is none. */
function collectRun(r: RunRecord, a: SuperviseArgs, q: QemuEnd): TestHostResult | TestHostError {
  const base = {
    bootSeconds: Number.isNaN(r.startedAt) ? NaN : (r.startedAt - a.spawnedAt) / 1000,
    guestBootSeconds: r.guestBoot,
    commandSeconds: Number.isNaN(r.startedAt)
      ? 0
      : ((Number.isNaN(r.endedAt) ? q.now : r.endedAt) - r.startedAt) / 1000,
    vmSeconds: q.vmSeconds,
    imageSeconds: a.image.seconds,
    imageCached: a.image.cached,
    imageBytes: a.image.bytes,
    imagePath: a.image.path,
    kernelRelease: a.image.kernel.release,
  };
  if (r.exitCode !== undefined) return { exitCode: r.exitCode, timedOut: false, ...base };
  if (r.timedOut) return { exitCode: TIMEOUT_EXIT_CODE, timedOut: true, ...base };
  const qemuSaid = r.stderrLog.tail(5);
  if (r.aborted || /terminating on signal/.test(qemuSaid)) {
    return new TestHostError(`test host stopped (${r.aborted ? 'aborted' : qemuSaid.split('\n').pop()})`, 'aborted');
  }
  if (r.spawnError !== undefined) {
    return new TestHostError(`cannot start ${a.image.qemu}: ${r.spawnError.message}`, 'failed', {
      cause: r.spawnError,
    });
  }
  const how = q.sig !== null ? `killed by ${q.sig}` : `exit status ${q.code}`;
  let message: string;
  if (r.failure !== undefined) message = `the test host could not start the command: ${r.failure}`;
  else if (q.phase === 'run') message = `the test host stopped before the command finished (QEMU ${how})`;
  else
    message = `the test host (L1) did not boot (QEMU ${how}); KTSTR_HOST_CMDLINE_EXTRA=loglevel=7 shows its kernel messages with --verbose`;
  const reset = r.failure === undefined && q.phase === 'boot' && q.sig === null && q.code === 0;
  const details = [
    qemuSaid && `QEMU: ${qemuSaid}`,
    q.phase === 'boot' && `last L1 console lines:\n${r.consoleLog.tail(15)}`,
  ]
    .filter((s): s is string => typeof s === 'string' && s !== '')
    .join('\n');
  const text = details === '' ? message : `${message}\n${details}`;
  return reset ? new L1ResetError(text, 'failed') : new TestHostError(text, 'failed');
}
