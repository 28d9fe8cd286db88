// A worker's report file (written by ktstr-worker, so only as trustworthy as the guest) made
// into a WorkerReport: every number checked, CPU lists bounded, and what the agent knows
// itself (cgroup, allowed CPUs, phases) added. A missing or malformed file becomes a report
// with `error` set, never an exception.

import type { CpuTime, LatencySummary, PhaseUsage, WorkerReport, WorkKind } from '../../../test-api/record.js';

export interface KnownFacts {
  index: number;
  pid: number;
  cgroup: string;
  work: WorkKind;
  nice: number;
  allowed: WorkerReport['allowed'];
  startPhase: number;
  stopPhase: number | null;
  /** The error when there is no report at all. */
  missing: string;
}

const MAX_CPUS = 4096;
const MAX_PHASES = 1024;

const count = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

function cpuTimes(v: unknown): CpuTime[] | null {
  if (!Array.isArray(v) || v.length > MAX_CPUS) return null;
  const out: CpuTime[] = [];
  for (const e of v) {
    const r = e as Record<string, unknown> | null;
    const cpu = count(r?.cpu);
    const ns = count(r?.ns);
    if (cpu === null || ns === null || cpu >= MAX_CPUS) return null;
    out.push({ cpu, ns });
  }
  return out;
}

function latency(v: unknown): LatencySummary | null | undefined {
  if (v === null) return null;
  const r = v as Record<string, unknown> | undefined;
  const samples = count(r?.samples);
  const p50 = count(r?.p50);
  const p99 = count(r?.p99);
  const max = count(r?.max);
  if (samples === null || p50 === null || p99 === null || max === null) return undefined;
  return { samples, p50, p99, max };
}

function phases(v: unknown): PhaseUsage[] | null {
  if (!Array.isArray(v) || v.length > MAX_PHASES) return null;
  const out: PhaseUsage[] = [];
  for (const e of v) {
    const r = e as Record<string, unknown> | null;
    const phase = count(r?.phase);
    const iterations = count(r?.iterations);
    const cpus = cpuTimes(r?.cpus);
    if (phase === null || iterations === null || cpus === null) return null;
    out.push({ phase, iterations, cpus });
  }
  return out;
}

export function toWorkerReport(raw: Record<string, unknown> | null, k: KnownFacts): WorkerReport {
  const base: WorkerReport = {
    index: k.index,
    pid: k.pid,
    cgroup: k.cgroup,
    work: k.work,
    policy: -1,
    nice: k.nice,
    iterations: 0,
    cpuTimeNs: 0,
    wallNs: 0,
    voluntarySwitches: 0,
    involuntarySwitches: 0,
    migrations: 0,
    cpus: [],
    phases: [],
    maxGapNs: 0,
    maxGapAtNs: 0,
    maxGapCpu: -1,
    wakeups: 0,
    wakeLatencyNs: null,
    error: k.missing,
    allowed: k.allowed,
    startPhase: k.startPhase,
    stopPhase: k.stopPhase,
  };
  if (raw === null) return base;
  const bad = (field: string): WorkerReport => ({ ...base, error: `worker ${k.index}'s report has a bad ${field}` });
  const nums = [
    'iterations',
    'cpuTimeNs',
    'wallNs',
    'voluntarySwitches',
    'involuntarySwitches',
    'migrations',
    'maxGapNs',
    'maxGapAtNs',
    'wakeups',
  ] as const;
  const out: WorkerReport = { ...base, error: null };
  for (const f of nums) {
    const v = count(raw[f]);
    if (v === null) return bad(f);
    out[f] = v;
  }
  if (raw.index !== k.index) return bad('index');
  const policy = raw.policy;
  if (typeof policy !== 'number' || !Number.isSafeInteger(policy)) return bad('policy');
  out.policy = policy;
  const gapCpu = raw.maxGapCpu;
  if (typeof gapCpu !== 'number' || !Number.isSafeInteger(gapCpu) || gapCpu < -1 || gapCpu >= MAX_CPUS)
    return bad('maxGapCpu');
  out.maxGapCpu = gapCpu;
  const cpus = cpuTimes(raw.cpus);
  if (cpus === null) return bad('cpus');
  out.cpus = cpus;
  const ph = phases(raw.phases);
  if (ph === null) return bad('phases');
  out.phases = ph;
  const lat = latency(raw.wakeLatencyNs);
  if (lat === undefined) return bad('wakeLatencyNs');
  out.wakeLatencyNs = lat;
  if (raw.error !== null && raw.error !== undefined)
    out.error = typeof raw.error === 'string' ? raw.error.slice(0, 500) : 'the worker reported an error';
  if (typeof raw.pid === 'number' && Number.isSafeInteger(raw.pid) && raw.pid > 0) out.pid = raw.pid;
  return out;
}
