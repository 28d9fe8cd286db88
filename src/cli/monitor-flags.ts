// --monitor-interval, --no-repro and --no-snapshot of `sweep` and `test`: the host monitor's
// sampling interval for every cell, whether a crashed scheduler's cell gets its auto-repro
// run, and whether cells start from their machine's snapshot, as the inner run inside the
// test host gets them.

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
