// `ktstr-wasm test [FILE...]`: run scheduler tests written with `ktstr-wasm/test` (each in its
// own VM with its topology, its scheduler or EEVDF, its cgroups and workers) and judge them;
// `test merge FILE...` prints several shards' JSON results as one run. The implementation
// (test-run.ts) is loaded only when the command runs.

import { collect, Command, Option, positiveInt } from './commander.js';
import { addCellRunOptions } from './monitor-flags.js';
import type { TestFlags } from './test-run.js';

const EXAMPLES = `
Examples:
  $ ktstr-wasm test                                   every *.ktstr.ts / *.ktstr.js under the current directory
  $ ktstr-wasm test tests/sched.ktstr.ts --filter pinned
  $ ktstr-wasm test --scheduler scx_simple --scheduler scx-ktstr --kernel ../linux
  $ ktstr-wasm test --compare-eevdf                   each test also under EEVDF, figures side by side
  $ ktstr-wasm test --list
  $ ktstr-wasm test --json out.json --junit junit.xml --shard 1/3
  $ ktstr-wasm test merge shard-*.json

A test file imports from 'ktstr-wasm/test' (docs/test-api.md):
  ktstrTest('steady', { llcs: 2, cores: 2, scheduler: 'scx-ktstr' }, (ctx) => scenarios.steady(ctx));
TypeScript works as is (no build step). The body runs inside the guest; the checks
(starvation, gaps, fairness, isolation, liveness; docs/checks.md) are judged on the host.

Where /dev/kvm is absent, PVM or not accessible, the tests run inside the emulated KVM test
host (QEMU TCG): slower, but real KVM; --no-test-host refuses instead.

Exit status: 0 every test passed (or was skipped); 1 a test failed (or was interrupted); 2 usage error.`;

export function testCommand(parent: Command): Command {
  const test = new Command('test')
    .copyInheritedSettings(parent)
    .description('run scheduler tests (ktstr-wasm/test) in VMs and judge fairness, starvation, gaps, isolation')
    .argument('[files...]', 'test files (default: every *.ktstr.ts / *.ktstr.js under --dir)')
    .option('--dir <DIR>', 'where to look for test files (default: the current directory)')
    .option('--filter <TEXT>', 'only the tests whose "file › name" contains TEXT')
    .option(
      '--scheduler <NAME>',
      'run every test under this scheduler instead of its own (repeatable; eevdf: none)',
      collect,
    )
    .option(
      '--kernel <SPEC>',
      'a kernel: path, kernel directory, source tree, cache label or version (repeatable)',
      collect,
    )
    .option('--config <FILE>', 'scheduler registry (default: ktstr.config.json of the package)')
    .option('--compare-eevdf', 'also run each test under EEVDF and print the figures side by side')
    .option('--json <FILE>', 'write the results as JSON (- for stdout; schema: docs/test-api.md)')
    .option('--junit <FILE>', 'write a JUnit XML report (one testcase per test)')
    .option('--shard <I/N>', 'run only shard I of N (merge the JSON files with test merge)')
    .option('-j, --jobs <N>', 'tests in parallel (default: host CPUs, bounded by memory)', positiveInt('--jobs', 256))
    .addOption(
      new Option('--keep-dumps <WHICH>', 'failure bundles (logs, results, guest.core) for which cells')
        .choices(['failures', 'all', 'none'])
        .default('failures'),
    )
    .option('--out <DIR>', 'where failure bundles go, one directory per cell', './ktstr-out');
  addCellRunOptions(test)
    .option('--list', 'print the tests and exit')
    .option('--no-test-host', 'fail instead of running inside the emulated test host when /dev/kvm is unusable')
    .option('-v, --verbose', "print each test's phases and worker start-up time")
    .addOption(
      new Option('--result-block', "print the JSON result between markers (the test host's inner run)").hideHelp(),
    )
    .addOption(
      new Option(
        '--bundle-blocks',
        "print each bundle as blocks on stdout and delete it (the test host's inner run)",
      ).hideHelp(),
    )
    .addOption(
      new Option(
        '--payload-stage <DIR>',
        "payload binaries staged by the outer run (the test host's inner run)",
      ).hideHelp(),
    )
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError("(run 'ktstr-wasm test --help' for usage)")
    .action(async (files: string[], flags: TestFlags) => {
      const { runTestCommand } = await import('./test-run.js');
      process.exitCode = await runTestCommand(files, flags);
    });
  test
    .command('merge')
    .description('merge the JSON results of several shards and print them as one run')
    .argument('<files...>', 'test --json files')
    .option('--json <FILE>', 'write the merged result as JSON')
    .option('--junit <FILE>', 'write a JUnit XML report of the merged result')
    .action(async (files: string[], flags: { json?: string; junit?: string }) => {
      const { runTestMerge } = await import('./test-run.js');
      process.exitCode = await runTestMerge(files, flags);
    });
  return test;
}
