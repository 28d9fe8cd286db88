// --monitor-interval and --no-repro of `sweep` and `test`: the host monitor's sampling
// interval for every cell and whether a crashed scheduler's cell gets its auto-repro run, as
// the inner run inside the test host gets them.

export interface MonitorFlags {
  monitorInterval?: number;
  repro?: boolean;
}

export function monitorDelegateArgs(flags: MonitorFlags): string[] {
  const args = ['--monitor-interval', String(flags.monitorInterval ?? 100)];
  if (flags.repro === false) args.push('--no-repro');
  return args;
}
