// `ktstr-wasm host run [options] -- CMD ARGS...`: runs a command inside the emulated KVM test
// host (L1: QEMU TCG with an emulated AMD SVM CPU, so /dev/kvm works inside) and exits with
// its exit status. `ktstr-wasm host build`: builds (or finds) the cached L1 image and says
// where it is, how big, and how long that took.

import { Command, InvalidArgumentError } from 'commander';
import { constants } from 'node:os';
import {
  DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS, defaultCpus, ensureImage, findProjectDir, runInTestHost,
  TestHostError, TIMEOUT_EXIT_CODE, type TestHostResult,
} from '../host/index.js';
import { paint } from './colour.js';
import { CliError, EXIT_FAILED } from './errors.js';
import { write } from './output.js';

const RUN_EXAMPLES = `
Examples:
  $ ktstr-wasm host run -- node -e "console.log(require('fs').existsSync('/dev/kvm'))"
  $ ktstr-wasm host run --timeout 600 -- node node_modules/uvu/bin.js dist/test/kvm '.test.js$'
  $ ktstr-wasm host run --cpus 2 --memory 4096 --keep-env MY_VAR -- sh -c 'exit 7'

The command runs as root in L1, in the same working directory, with the project tree (the
package or git root around the working directory, without .git) copied in at the same path,
plus node, qemu-system-x86_64, busybox and the prebuilt kernels (../shared/kernels). Files it
writes are not copied back. stdin is empty; stdout and stderr arrive merged on stdout, and the
command sees a pipe, not a terminal. Environment inside: PATH and HOME of L1,
KTSTR_IN_TEST_HOST=1, every KTSTR_* variable, CI, NO_COLOR, FORCE_COLOR, NODE_OPTIONS,
NODE_ENV, TZ, LANG, LC_ALL, and the names given to --keep-env.

The first run downloads Debian's cloud kernel (apt-get download) and builds the image into
$XDG_CACHE_HOME/ktstr-wasm/host (~/.cache/...); later runs reuse it until an input changes.

Exit status: the command's; 124 when --timeout ends it; 1 when the test host cannot run
(QEMU missing: apt-get install qemu-system-x86); 2 usage error.`;

const BUILD_EXAMPLES = `
Examples:
  $ ktstr-wasm host build           build or find the image for the project around the cwd
  $ ktstr-wasm host build --json    path, sizes and timings as JSON`;

interface RunFlags {
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

function positiveInt(what: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

function envName(value: string, previous: string[] | undefined): string[] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) throw new InvalidArgumentError(`not an environment variable name: ${value}`);
  return [...(previous ?? []), value];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
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

async function runAction(argv: string[], flags: RunFlags): Promise<void> {
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
      onOutput: (chunk) => { process.stdout.write(chunk); },
      onProgress: progressPrinter(flags.quiet),
      onConsole: verbose ? (text) => process.stderr.write(paint(process.stderr).dim(text.replace(/\r/g, ''))) : undefined,
    });
  } catch (err) {
    if (received !== undefined) {
      // QEMU is gone; die of the same signal, as an interrupted command does
      for (const s of SIGNALS) process.off(s, onSignal);
      process.kill(process.pid, received);
      await new Promise((r) => setTimeout(r, 1000));
      await exitWith(128 + (constants.signals[received] ?? 2));
    }
    if (err instanceof TestHostError) throw new CliError(err.message, EXIT_FAILED, { cause: err });
    throw err;
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
  if (verbose) {
    const mib = (result.imageBytes / 1024 ** 2).toFixed(0);
    process.stderr.write(
      `ktstr-wasm: test host: image ${mib} MiB (${result.imageCached ? 'cached' : 'built'}, ${result.imageSeconds.toFixed(2)} s); `
      + `L1 boot ${result.bootSeconds.toFixed(2)} s (guest ${result.guestBootSeconds.toFixed(2)} s to init); `
      + `command ${result.commandSeconds.toFixed(2)} s; QEMU ${result.vmSeconds.toFixed(2)} s; exit ${result.exitCode}\n`);
  }
  if (result.timedOut) {
    throw new CliError(
      `the command did not finish within ${flags.timeout} s inside the test host; QEMU was killed (exit ${TIMEOUT_EXIT_CODE})`,
      TIMEOUT_EXIT_CODE);
  }
  if (result.exitCode !== 0) await exitWith(result.exitCode);
}

async function buildAction(flags: { project?: string; share?: string[]; exclude?: string[]; json?: boolean; quiet?: boolean }): Promise<void> {
  try {
    const image = await ensureImage({
      projectDir: flags.project ?? findProjectDir(process.cwd()),
      shareDirs: flags.share,
      exclude: flags.exclude,
      onProgress: progressPrinter(flags.quiet),
    });
    const info = {
      path: image.path, bytes: image.bytes, baseBytes: image.baseBytes, cached: image.cached,
      baseCached: image.baseCached, seconds: Number(image.seconds.toFixed(3)),
      kernel: image.kernel.release, bootImage: image.kernel.bootImage, qemu: image.qemu, node: image.node,
    };
    if (flags.json === true) {
      await write(process.stdout, JSON.stringify(info, null, 2) + '\n');
    } else {
      const mib = (n: number): string => `${(n / 1024 ** 2).toFixed(1)} MiB`;
      await write(process.stdout,
        `image   ${info.path}\n`
        + `size    ${mib(info.bytes)} (base ${mib(info.baseBytes)})\n`
        + `kernel  ${info.kernel} (${info.bootImage})\n`
        + `time    ${info.seconds.toFixed(2)} s (${info.cached ? 'cached' : info.baseCached ? 'project part rebuilt' : 'built'})\n`);
    }
  } catch (err) {
    if (err instanceof TestHostError) throw new CliError(err.message, EXIT_FAILED, { cause: err });
    throw err;
  }
}

/** `host run` and `host build`; `parent` supplies the shared settings (exitOverride, output). */
export function hostCommand(parent: Command): Command {
  const host = new Command('host')
    .copyInheritedSettings(parent)
    .description('the emulated KVM test host (QEMU TCG with AMD SVM; a real /dev/kvm inside)')
    .enablePositionalOptions()
    .showHelpAfterError("(run 'ktstr-wasm host --help' for usage)");
  host.addCommand(new Command('run')
    .copyInheritedSettings(host)
    .description('run a command inside the test host and exit with its exit status')
    .argument('<command...>', 'the command and its arguments (put -- before it)')
    .option('--memory <MiB>', 'L1 memory in MiB', positiveInt('--memory', 256, 65536), DEFAULT_MEMORY_MIB)
    .option('--cpus <N>', 'L1 vCPUs', positiveInt('--cpus', 1, 64), defaultCpus())
    .option('--timeout <SECONDS>', 'kill L1 after this long (boot included): exit 124', positiveInt('--timeout', 1, 86400 * 7), DEFAULT_TIMEOUT_MS / 1000)
    .option('--keep-env <NAME...>', 'also pass these environment variables in', envName)
    .option('--project <DIR>', 'tree copied into L1 at the same path (default: package/git root around the cwd)')
    .option('--share <DIR>', 'also copy this host directory in at the same path (repeatable)', collect)
    .option('--exclude <PATH>', 'leave this path of the project tree out (relative to it; repeatable)', collect)
    .option('-v, --verbose', "show L1's boot console and timings (boot, command, image) on stderr")
    .option('-q, --quiet', 'no progress messages')
    .passThroughOptions()
    .addHelpText('after', RUN_EXAMPLES)
    .showHelpAfterError("(run 'ktstr-wasm host run --help' for usage)")
    .action(async (argv: string[], flags: RunFlags) => {
      await runAction(argv, flags);
    }));
  host.addCommand(new Command('build')
    .copyInheritedSettings(host)
    .description('build (or find in the cache) the test host image and print its path, size and build time')
    .option('--project <DIR>', 'tree copied into L1 (default: package/git root around the cwd)')
    .option('--share <DIR>', 'also copy this host directory in (repeatable)', collect)
    .option('--exclude <PATH>', 'leave this path of the project tree out (repeatable)', collect)
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'no progress messages')
    .addHelpText('after', BUILD_EXAMPLES)
    .action(buildAction));
  return host;
}
