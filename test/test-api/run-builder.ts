// Synthetic RunRecords for the checks' tests: a run of N CPUs and phases, cgroups, and
// workers whose CPU time per phase is given (spread evenly over their allowed CPUs unless
// placed per CPU). Every other field gets a plausible value, so a test states only what it
// is about.

import type { CpuTime, RunRecord, SchedulerLiveness, WorkKind, WorkerReport } from '../../src/test-api/record.js';

export interface WorkerSpec {
  work?: WorkKind;
  /** Allowed CPUs in every phase, or per phase (index 0 = phase 1). Default: every CPU. */
  allowed?: number[] | number[][];
  /** CPU time per phase it ran in, ns (one number: the same in each). Default: half the phase. */
  ns?: number | number[];
  /** Exact CPU times per phase (index 0 = phase 1), overriding ns. */
  perCpu?: CpuTime[][];
  iterations?: number;
  maxGapNs?: number;
  maxGapAtNs?: number;
  startPhase?: number;
  stopPhase?: number | null;
  error?: string | null;
  migrations?: number;
  wakeP99Ns?: number;
}

export const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

export class RunBuilder {
  readonly run: RunRecord;
  constructor(opts: { cpus?: number; durationMs?: number; phases?: [string, number][] } = {}) {
    const phases = opts.phases ?? [['start', 0]];
    this.run = {
      label: 'run 1',
      durationMs: opts.durationMs ?? 10_000,
      cpus: range(0, (opts.cpus ?? 4) - 1),
      phases: phases.map(([label, atMs], i) => ({ phase: i + 1, label, atMs })),
      cgroups: [],
      workers: [],
      spawnMs: 40,
      cpuStat: null,
      payload: null,
    };
  }

  cgroup(
    name: string,
    opts: { weight?: number | null; max?: { quotaUs: number; periodUs: number } | null } = {},
  ): this {
    this.run.cgroups.push({ name, weight: opts.weight ?? null, max: opts.max ?? null, workers: [] });
    return this;
  }

  /** Adds `count` workers to a cgroup (created with defaults when new). */
  workers(cgroup: string, count: number, spec: WorkerSpec = {}): this {
    for (let i = 0; i < count; i++) this.worker(cgroup, spec);
    return this;
  }

  phaseMs(p: number): number {
    const ph = this.run.phases;
    return (p < ph.length ? ph[p].atMs : this.run.durationMs) - ph[p - 1].atMs;
  }

  worker(cgroup: string, spec: WorkerSpec = {}): this {
    if (!this.run.cgroups.some((c) => c.name === cgroup)) this.cgroup(cgroup);
    const index = this.run.workers.length;
    this.run.cgroups.find((c) => c.name === cgroup)!.workers.push(index);
    const start = spec.startPhase ?? 1;
    const stop = spec.stopPhase ?? null;
    const last = stop ?? this.run.phases.length;
    const allowedFor = (p: number): number[] => {
      const a = spec.allowed;
      if (a === undefined) return [...this.run.cpus];
      return Array.isArray(a[0]) ? (a as number[][])[p - 1] : (a as number[]);
    };
    const phases = [];
    const allowed = [];
    const total = new Map<number, number>();
    let wallNs = 0;
    for (let p = start; p <= last; p++) {
      const lenNs = this.phaseMs(p) * 1e6;
      wallNs += lenNs;
      let cpus: CpuTime[];
      if (spec.perCpu) cpus = spec.perCpu[p - 1];
      else {
        const ns = spec.ns === undefined ? lenNs / 2 : typeof spec.ns === 'number' ? spec.ns : spec.ns[p - 1];
        const on = allowedFor(p);
        cpus = on.map((cpu) => ({ cpu, ns: ns / on.length }));
      }
      const ns = cpus.reduce((s, c) => s + c.ns, 0);
      for (const c of cpus) total.set(c.cpu, (total.get(c.cpu) ?? 0) + c.ns);
      phases.push({ phase: p, iterations: Math.round(ns / 1e3), cpus });
      allowed.push({ phase: p, cpus: allowedFor(p) });
    }
    const cpuTimeNs = phases.reduce((s, p) => s + p.cpus.reduce((a, c) => a + c.ns, 0), 0);
    const work = spec.work ?? 'spin';
    const w: WorkerReport = {
      index,
      pid: 100 + index,
      cgroup,
      work,
      policy: 7,
      nice: 0,
      iterations: spec.iterations ?? phases.reduce((s, p) => s + p.iterations, 0),
      cpuTimeNs,
      wallNs,
      voluntarySwitches: 0,
      involuntarySwitches: 10,
      migrations: spec.migrations ?? 0,
      cpus: [...total].map(([cpu, ns]) => ({ cpu, ns })),
      phases,
      maxGapNs: spec.maxGapNs ?? 30e6,
      maxGapAtNs: spec.maxGapAtNs ?? 1e9,
      maxGapCpu: 0,
      wakeups: spec.wakeP99Ns === undefined ? 0 : 1000,
      wakeLatencyNs:
        spec.wakeP99Ns === undefined
          ? null
          : { samples: 1000, p50: spec.wakeP99Ns / 4, p99: spec.wakeP99Ns, max: spec.wakeP99Ns * 2 },
      error: spec.error ?? null,
      allowed,
      startPhase: start,
      stopPhase: stop,
    };
    this.run.workers.push(w);
    return this;
  }

  build(): RunRecord {
    return JSON.parse(JSON.stringify(this.run)) as RunRecord;
  }
}

/** A scheduler that stayed attached to the end. */
export const attached = (name = 'scx_ktstr'): SchedulerLiveness => ({
  name,
  stateAtEnd: 'enabled',
  processAlive: true,
  exit: null,
  detachedOnPurpose: false,
});
export const EEVDF: SchedulerLiveness = {
  name: null,
  stateAtEnd: '',
  processAlive: false,
  exit: null,
  detachedOnPurpose: false,
};
