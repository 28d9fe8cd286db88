// --monitor-interval, --no-repro and --no-snapshot of `sweep` and `test`: the host monitor's
// sampling interval for every cell, whether a crashed scheduler's cell gets its auto-repro
// run, and whether cells start from their machine's snapshot: declared here for both
// commands, and passed on to the inner run inside the test host.

import { nonNegativeInt, type Command } from './commander.js';

/** Adds --monitor-interval, --no-repro and --no-snapshot to `sweep` or `test` (in that order). */
export function addCellRunOptions(cmd: Command): Command {
  return cmd
    .option(
      '--monitor-interval <MS>',
      'host monitor sampling interval, ms (runqueues, sched_ext state; 0: off)',
      nonNegativeInt('--monitor-interval', 60_000),
      100,
    )
    .option(
      '--no-repro',
      'do not rerun a cell whose scheduler crashed (the repro run probes the crash path from the host)',
    )
    .option(
      '--no-snapshot',
      "boot every cell's VM cold (default: the first cell of a machine saves a snapshot at its agent's start, the others restore it)",
    );
}

export interface MonitorFlags {
  monitorInterval?: number;
  repro?: boolean;
  snapshot?: boolean;
}

export function monitorDelegateArgs(flags: MonitorFlags): string[] {
  const args = ['--monitor-interval', String(flags.monitorInterval ?? 100)];
  if (flags.repro === false) args.push('--no-repro');
  if (flags.snapshot === false) args.push('--no-snapshot');
  return args;
}
