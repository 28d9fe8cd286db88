// What one scheduler test produces, as plain data: the workers' reports (measured in the guest
// by the ktstr-worker binary), the cgroups and phases of the run (dynamic operations start a
// new phase), and what the host saw of the scheduler. The checks (src/test/checks/) judge a
// RunRecord; the reporters and the JSON file print it. JSON-safe throughout.

/** Work types of ktstr-worker (native/worker/). */
export type WorkKind = 'spin' | 'yield' | 'sleepy' | 'burst' | 'pingpong' | 'forkexec' | 'futex' | 'mixed';
export const WORK_KINDS: readonly WorkKind[] = [
  'spin',
  'yield',
  'sleepy',
  'burst',
  'pingpong',
  'forkexec',
  'futex',
  'mixed',
];

/** Time a worker spent on one CPU, from its per-iteration samples, ns. */
export interface CpuTime {
  cpu: number;
  ns: number;
}

/** A worker's use of the machine within one phase of the run. */
export interface PhaseUsage {
  /** Phase number (1 = from the start until the first dynamic operation). */
  phase: number;
  iterations: number;
  cpus: CpuTime[];
}

/** Percentiles of a worker's wakeup latencies (nearest rank: each one an observed sample), ns. */
export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** One worker: one process of ktstr-worker, measured by itself. */
export interface WorkerReport {
  /** Index in the run (stable across phases). */
  index: number;
  pid: number;
  /** The cgroup it was started in, by test name (e.g. `a`, `parent/child`); moved workers keep it, see `moves`. */
  cgroup: string;
  work: WorkKind;
  /** Scheduling policy the kernel reported after the switch (7 = SCHED_EXT, 0 = SCHED_NORMAL). */
  policy: number;
  nice: number;
  /** Units of work done while running (phase >= 1). */
  iterations: number;
  /** Its CPU time (CLOCK_PROCESS_CPUTIME_ID) while running, ns. */
  cpuTimeNs: number;
  /** From start to stop, ns. */
  wallNs: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
  /** Changes of CPU seen between consecutive iterations. */
  migrations: number;
  /** Time per CPU over the whole run. */
  cpus: CpuTime[];
  phases: PhaseUsage[];
  /** Longest off-CPU gap while runnable, ns, when (ns since start) and on which CPU it ended. */
  maxGapNs: number;
  maxGapAtNs: number;
  maxGapCpu: number;
  /** Wakeups measured (sleeps, pipe reads, futex waits); latency null for work types without them. */
  wakeups: number;
  wakeLatencyNs: LatencySummary | null;
  /** The worker could not do its job (setup failed in the guest); null when fine. */
  error: string | null;
  /** The CPUs it was allowed per phase (cpuset.cpus.effective of its cgroup ∩ its affinity). */
  allowed: { phase: number; cpus: number[] }[];
  /** Phase it started in (1 unless added by a dynamic operation) and phase it was stopped after (null: ran to the end). */
  startPhase: number;
  stopPhase: number | null;
}

/** A phase of the run: 1 from the start, then one per dynamic operation. */
export interface RunPhase {
  phase: number;
  /** What started it, e.g. `start`, `resize a to 0-1`, `add c`, `remove b`, `replace scheduler with scx_simple`. */
  label: string;
  /** ms since the workers started (after the operation that began it was applied). */
  atMs: number;
  /** How long its operation took to apply, ms: the previous phase ended that long before atMs (0 for phase 1). */
  transitionMs?: number;
}

export interface CgroupRecord {
  /** Test name (`a`, `parent/child`). */
  name: string;
  /** cpu.weight (null: default 100). */
  weight: number | null;
  /** cpu.max as written (null: unlimited). */
  max: { quotaUs: number; periodUs: number } | null;
  /** Worker indexes started in it. */
  workers: number[];
}

/** What the host knows of the scheduler at the end of the run. */
export interface SchedulerLiveness {
  /** Registry name, or null under EEVDF. */
  name: string | null;
  /** sched_ext state at the end of the run (`enabled`, `disabled`, ...; '' under EEVDF with no sched_ext). */
  stateAtEnd: string;
  /** The scheduler's process still ran when the workers stopped. */
  processAlive: boolean;
  /** scx_exit_info as read from guest memory when it exited (null: it did not exit, or unread). */
  exit: { kind: number; reason: string; message: string } | null;
  /** The test body detached or replaced it on purpose (no liveness failure for that). */
  detachedOnPurpose: boolean;
}

/** One run of workers (one `ctx.run`). */
export interface RunRecord {
  /** Label of the run inside the test (`run 1`, or the scenario's name). */
  label: string;
  durationMs: number;
  /** Online CPUs of the guest. */
  cpus: number[];
  phases: RunPhase[];
  cgroups: CgroupRecord[];
  workers: WorkerReport[];
  /** Guest ms from the start command until every worker of the run was in its cgroup and parked. */
  spawnMs: number;
  /**
   * The guest's CPU time over the run, all CPUs, from /proc/stat (ms, 10 ms resolution): what
   * the workers and everything else used, idle time, and steal (time the vCPUs did not run
   * because the host ran something else: large in an emulated test host), over `windowMs`
   * (from the workers' start until all had stopped). The workers' CPU time + steal ≈ CPUs ×
   * windowMs when the workers keep every CPU busy. Busy and idle are tick-sampled and
   * unreliable under heavy steal.
   */
  cpuStat: { busyMs: number; idleMs: number; stealMs: number; windowMs: number } | null;
  /** The test's payload as it ran alongside the workers (null: none). */
  payload: PayloadRecord | null;
}

/** A payload's run (rt-app, stress-ng, any executable) during a run of workers. */
export interface PayloadRecord {
  /** The command as the guest ran it. */
  cmd: string[];
  /** `exit`: it ended by itself; `stopped`: still running at the run's end (SIGTERM, then SIGKILL); `failed`: could not start. */
  ended: 'exit' | 'stopped' | 'failed';
  exitCode: number | null;
  signal: string | null;
  /** Its stdout and stderr, merged (head and tail kept, at most 16 KiB). */
  output: string;
  ms: number;
}
