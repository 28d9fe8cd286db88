// `ktstr-wasm sweep [PRESET...]`: boot every declared scheduler x kernel x topology cell in a VM
// and check that its BPF programs verify, that it attaches and that it dispatches a workload;
// `sweep merge FILE...` prints the tables of several shards' JSON results as one run.
// The implementation (sweep-run.ts) is loaded only when the command runs.

import { collect, Command, Option, positiveInt } from './commander.js';
import { addCellRunOptions } from './monitor-flags.js';
import type { SweepFlags } from './sweep-run.js';

const EXAMPLES = `
Examples:
  $ ktstr-wasm sweep                                  every declared scheduler, the discovered kernel, every accepted preset
  $ ktstr-wasm sweep --scheduler scx-ktstr tiny-1llc tiny-2llc odd-3llc smt-2llc
  $ ktstr-wasm sweep --kernel 6.12.117-sched_ext --kernel ../linux
  $ ktstr-wasm sweep --scheduler ktstr_broken --raw   the verifier log uncollapsed
  $ ktstr-wasm sweep --list                           the cells, without running them
  $ ktstr-wasm sweep --json results.json --junit junit.xml --shard 2/4
  $ ktstr-wasm sweep merge shard-*.json               the tables of several shards, as one run

Cells: scheduler (ktstr.config.json, or --config) x kernel (--kernel, repeatable; default one
discovered kernel: KTSTR_KERNEL, the cache, the prebuilt kernels) x topology (the presets each
scheduler's constraints accept; positional preset names or --topology narrow them). Each cell
boots its own VM and passes when the programs verify, the scheduler reaches state "enabled"
and one SCHED_EXT worker per CPU makes progress.

--jobs: cells run in parallel on worker threads, by default one per host CPU and no more than
host memory holds (guest RAM per cell = the preset's + 320 MiB for the agent, plus ~640 MiB
on the host).

Where /dev/kvm is absent, PVM or not accessible, the sweep runs inside the emulated KVM test
host (QEMU TCG): slower, but real KVM; --no-test-host refuses instead.

Exit status: 0 every cell passed; 1 a cell failed (or was interrupted); 2 usage error.`;

export function sweepCommand(parent: Command): Command {
  const sweep = new Command('sweep')
    .copyInheritedSettings(parent)
    .description(
      'verify, attach and dispatch every scheduler x kernel x topology in VMs; print verified_insns and a pass/fail grid',
    )
    .argument('[presets...]', 'topology presets to run (default: every preset each scheduler accepts)')
    .option('--scheduler <NAME>', 'a declared scheduler (repeatable; default all)', collect)
    .option(
      '--kernel <SPEC>',
      'a kernel: path, kernel directory, source tree, cache label or version (repeatable)',
      collect,
    )
    .option('--topology <SPEC>', 'a topology spec {numa}n{llcs}l{cores}c{threads}t or preset (repeatable)', collect)
    .option('--config <FILE>', 'scheduler registry (default: ktstr.config.json of the package)')
    .option('--raw', 'print verifier logs uncollapsed')
    .option('--json <FILE>', 'write the results as JSON (- for stdout; schema: docs/sweep-json.md)')
    .option('--junit <FILE>', 'write a JUnit XML report (one testcase per cell)')
    .option('--shard <I/N>', 'run only shard I of N (balanced by expected cost; merge the JSON files with sweep merge)')
    .option('-j, --jobs <N>', 'cells in parallel (default: host CPUs, bounded by memory)', positiveInt('--jobs', 256))
    .option('--timeout <SECONDS>', 'longest run of one cell', positiveInt('--timeout', 86400), 300)
    .addOption(
      new Option('--keep-dumps <WHICH>', 'failure bundles (logs, results, guest.core) for which cells')
        .choices(['failures', 'all', 'none'])
        .default('failures'),
    )
    .option('--out <DIR>', 'where failure bundles go, one directory per cell', './ktstr-out');
  addCellRunOptions(sweep)
    .option('--list', 'print the cells and exit')
    .option('--no-test-host', 'fail instead of running inside the emulated test host when /dev/kvm is unusable')
    .option('-v, --verbose', "print each cell's phase timings and host RSS")
    .addOption(
      new Option('--result-block', "print the JSON result between markers (the test host's inner sweep)").hideHelp(),
    )
    .addOption(
      new Option(
        '--bundle-blocks',
        "print each bundle as blocks on stdout and delete it (the test host's inner run)",
      ).hideHelp(),
    )
    .addOption(
      new Option(
        '--tty-status',
        "draw the live status although stderr is no terminal (the test host's inner sweep)",
      ).hideHelp(),
    )
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError("(run 'ktstr-wasm sweep --help' for usage)")
    .action(async (presets: string[], flags: SweepFlags) => {
      const { runSweepCommand } = await import('./sweep-run.js');
      process.exitCode = await runSweepCommand(presets, flags);
    });
  sweep
    .command('merge')
    .description('merge the JSON results of several shards and print the tables of the whole run')
    .argument('<files...>', 'sweep --json files')
    .option('--json <FILE>', 'write the merged result as JSON')
    .option('--junit <FILE>', 'write a JUnit XML report of the merged result')
    .action(async (files: string[], flags: { json?: string; junit?: string }) => {
      const { runSweepMerge } = await import('./sweep-run.js');
      process.exitCode = await runSweepMerge(files, flags);
    });
  return sweep;
}
