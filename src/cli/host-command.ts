// `ktstr-wasm host run [options] -- CMD ARGS...`: runs a command inside the emulated KVM test
// host (L1: QEMU TCG with an emulated AMD SVM CPU, so /dev/kvm works inside) and exits with
// its exit status. `ktstr-wasm host build`: builds (or finds) the cached L1 image and says
// where it is, how big, and how long that took.
// The implementation (host-run.ts) is loaded only when a subcommand runs.

import { Command, InvalidArgumentError } from './commander.js';
import { DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS, defaultCpus } from '../host/defaults.js';
import type { BuildFlags, RunFlags } from './host-run.js';

const RUN_EXAMPLES = `
Examples:
  $ ktstr-wasm host run -- node -e "console.log(require('fs').existsSync('/dev/kvm'))"
  $ ktstr-wasm host run --timeout 600 -- node node_modules/uvu/bin.js dist/test/kvm '.test.js$'
  $ ktstr-wasm host run --cpus 2 --memory 4096 --keep-env MY_VAR -- sh -c 'exit 7'

The command runs as root in L1, in the same working directory, with the project tree (the
package or git root around the working directory, without .git and the packages that only
build or lint: typescript, assemblyscript, binaryen, prettier, eslint, dependency-cruiser,
@types) copied in at the same path, plus node, qemu-system-x86_64, busybox and the prebuilt
kernels (../shared/kernels). Files it
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
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value))
    throw new InvalidArgumentError(`not an environment variable name: ${value}`);
  return [...(previous ?? []), value];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `host run` and `host build`; `parent` supplies the shared settings (exitOverride, output). */
export function hostCommand(parent: Command): Command {
  const host = new Command('host')
    .copyInheritedSettings(parent)
    .description('the emulated KVM test host (QEMU TCG with AMD SVM; a real /dev/kvm inside)')
    .enablePositionalOptions()
    .showHelpAfterError("(run 'ktstr-wasm host --help' for usage)");
  host.addCommand(
    new Command('run')
      .copyInheritedSettings(host)
      .description('run a command inside the test host and exit with its exit status')
      .argument('<command...>', 'the command and its arguments (put -- before it)')
      .option('--memory <MiB>', 'L1 memory in MiB', positiveInt('--memory', 256, 65536), DEFAULT_MEMORY_MIB)
      .option('--cpus <N>', 'L1 vCPUs', positiveInt('--cpus', 1, 64), defaultCpus())
      .option(
        '--timeout <SECONDS>',
        'kill L1 after this long (boot included): exit 124',
        positiveInt('--timeout', 1, 86400 * 7),
        DEFAULT_TIMEOUT_MS / 1000,
      )
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
        const { runCommandInHost } = await import('./host-run.js');
        await runCommandInHost(argv, flags);
      }),
  );
  host.addCommand(
    new Command('build')
      .copyInheritedSettings(host)
      .description('build (or find in the cache) the test host image and print its path, size and build time')
      .option('--project <DIR>', 'tree copied into L1 (default: package/git root around the cwd)')
      .option('--share <DIR>', 'also copy this host directory in (repeatable)', collect)
      .option('--exclude <PATH>', 'leave this path of the project tree out (repeatable)', collect)
      .option('--json', 'print the result as JSON')
      .option('-q, --quiet', 'no progress messages')
      .addHelpText('after', BUILD_EXAMPLES)
      .action(async (flags: BuildFlags) => {
        const { buildHostImage } = await import('./host-run.js');
        await buildHostImage(flags);
      }),
  );
  return host;
}
