// What `ktstr-wasm host run` and `host build` do: run a command in the emulated KVM test host
// (signals forwarded as an abort, the command's exit status passed on) and build or find
// the test host image. Loaded by host-command.ts only when a subcommand runs.

import { constants } from 'node:os';
import { ensureImage, findProjectDir, runInTestHost, TIMEOUT_EXIT_CODE, type TestHostResult } from '../host/index.js';
import { paint } from './colour.js';
import { KtstrError } from './errors.js';
import { write } from './output.js';

export interface RunFlags {
  memory: number;
  cpus: number;
  timeout: number;
  keepEnv?: string[];
  project?: string;
  share?: string[];
  exclude?: string[];
  verbose?: boolean;
  quiet?: boolean;
}

export interface BuildFlags {
  project?: string;
  share?: string[];
  exclude?: string[];
  json?: boolean;
  quiet?: boolean;
}

function progressPrinter(quiet: boolean | undefined): (message: string) => void {
  if (quiet === true) return () => {};
  return (message) => process.stderr.write(paint(process.stderr).dim(`ktstr-wasm: ${message}`) + '\n');
}

/** Exits at once with `code` once stdout and stderr have taken what was written. */
async function exitWith(code: number): Promise<never> {
  await new Promise<void>((r) => process.stdout.write('', () => r()));
  await new Promise<void>((r) => process.stderr.write('', () => r()));
  process.exit(code);
}

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export async function runCommandInHost(argv: string[], flags: RunFlags): Promise<void> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    received ??= sig;
    controller.abort();
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  const verbose = flags.verbose === true;
  let result: TestHostResult;
  try {
    result = await runInTestHost({
      argv,
      cwd: process.cwd(),
      env: process.env,
      keepEnv: flags.keepEnv,
      memoryMiB: flags.memory,
      cpus: flags.cpus,
      timeoutMs: flags.timeout * 1000,
      projectDir: flags.project,
      shareDirs: flags.share,
      exclude: flags.exclude,
      signal: controller.signal,
      onOutput: (chunk) => {
        process.stdout.write(chunk);
      },
      onProgress: progressPrinter(flags.quiet),
      onConsole: verbose
        ? (text) => process.stderr.write(paint(process.stderr).dim(text.replace(/\r/g, '')))
        : undefined,
    });
  } catch (err) {
    if (received !== undefined) {
      // QEMU is gone; die of the same signal, as an interrupted command does
      for (const s of SIGNALS) process.off(s, onSignal);
      process.kill(process.pid, received);
      await new Promise((r) => setTimeout(r, 1000));
      await exitWith(128 + (constants.signals[received] ?? 2));
    }
    throw err; // a TestHostError: the test host could not run the command, a failure
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
  if (verbose) {
    const mib = (result.imageBytes / 1024 ** 2).toFixed(0);
    process.stderr.write(
      `ktstr-wasm: test host: image ${mib} MiB (${result.imageCached ? 'cached' : 'built'}, ${result.imageSeconds.toFixed(2)} s); ` +
        `L1 boot ${result.bootSeconds.toFixed(2)} s (guest ${result.guestBootSeconds.toFixed(2)} s to init); ` +
        `command ${result.commandSeconds.toFixed(2)} s; QEMU ${result.vmSeconds.toFixed(2)} s; exit ${result.exitCode}\n`,
    );
  }
  if (result.timedOut) {
    throw new KtstrError(
      `the command did not finish within ${flags.timeout} s inside the test host; QEMU was killed (exit ${TIMEOUT_EXIT_CODE})`,
      'failed',
      { status: TIMEOUT_EXIT_CODE },
    );
  }
  if (result.exitCode !== 0) await exitWith(result.exitCode);
}

/** Builds (or finds) the test host image; a TestHostError is a failure. */
export async function buildHostImage(flags: BuildFlags): Promise<void> {
  const image = await ensureImage({
    projectDir: flags.project ?? findProjectDir(process.cwd()),
    shareDirs: flags.share,
    exclude: flags.exclude,
    onProgress: progressPrinter(flags.quiet),
  });
  const info = {
    path: image.path,
    bytes: image.bytes,
    baseBytes: image.baseBytes,
    cached: image.cached,
    baseCached: image.baseCached,
    seconds: Number(image.seconds.toFixed(3)),
    kernel: image.kernel.release,
    bootImage: image.kernel.bootImage,
    qemu: image.qemu,
    node: image.node,
  };
  if (flags.json === true) {
    await write(process.stdout, JSON.stringify(info, null, 2) + '\n');
  } else {
    const mib = (n: number): string => `${(n / 1024 ** 2).toFixed(1)} MiB`;
    await write(
      process.stdout,
      `image   ${info.path}\n` +
        `size    ${mib(info.bytes)} (base ${mib(info.baseBytes)})\n` +
        `kernel  ${info.kernel} (${info.bootImage})\n` +
        `time    ${info.seconds.toFixed(2)} s (${info.cached ? 'cached' : info.baseCached ? 'project part rebuilt' : 'built'})\n`,
    );
  }
}
