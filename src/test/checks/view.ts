// The run as the checks read it. A RunRecord comes from the guest and is untrusted: this
// module reads it field by field (never trusting a type), bounds every number, resolves the
// phases, and keeps what it could not use as problems — run-level ones (no phases, no workers
// array) that fail every worker check, and per-worker ones (a NaN, a negative count, usage in
// an unknown phase) that fail each check needing that field. The checks read only this view.

import { WORK_KINDS, type RunRecord } from '../../test-api/record.js';
import { cpuRanges, guestText } from './format.js';

/** Largest plausible duration (about 11.6 days), ns, and count. */
export const MAX_NS = 1e15;
export const MAX_COUNT = 1e15;
/** Largest CPU number accepted. */
export const MAX_CPU = 8191;
/** Work types that want a CPU all the time (judged against a fair share, compared for fairness). */
export const CPU_BOUND = new Set(['spin', 'yield', 'mixed']);
/** cpu.weight of a cgroup without one. */
export const DEFAULT_WEIGHT = 100;

export interface PhaseView {
  phase: number;
  label: string;
  startMs: number;
  endMs: number;
  /** `[phase 2: resize b to 0-1]` */
  tag: string;
  /** How long the operation that began it took, ms (in no phase). */
  transitionMs: number;
}

export interface UsageView {
  iterations: number;
  /** CPU -> ns. */
  cpus: Map<number, number>;
  ns: number;
}

export interface WorkerView {
  index: number;
  /** `worker 7 (cg b, spin)` */
  name: string;
  cgroup: string;
  work: string;
  cpuBound: boolean;
  iterations: number;
  cpuTimeNs: number;
  wallNs: number;
  migrations: number;
  maxGapNs: number;
  maxGapAtNs: number;
  wake: { samples: number; p99: number } | null;
  error: string | null;
  usage: Map<number, UsageView>;
  /** Phase -> allowed CPUs (sorted, online only). */
  allowed: Map<number, number[]>;
  /** Phases it ran in: from..to (startPhase..stopPhase or the last); 0..-1 when unknown. */
  from: number;
  to: number;
  /** Field -> what is wrong with it. */
  bad: Map<string, string>;
}

export interface CgroupView {
  name: string;
  weight: number;
  max: { quotaUs: number; periodUs: number } | null;
  bad: string | null;
}

export interface RunView {
  label: string;
  durationMs: number;
  online: Set<number>;
  phases: PhaseView[];
  phase: Map<number, PhaseView>;
  workers: WorkerView[];
  cgroups: Map<string, CgroupView>;
  /** Problems of the record as a whole: every worker check fails with them. */
  problems: string[];
  /**
   * The share of the run's CPU time the guest's vCPUs actually ran (1 − steal / (CPUs ×
   * window), from the record's cpuStat; 1 without it): under an emulated host the vCPUs share
   * the host's CPUs, and a fair share is that much smaller.
   */
  availability: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
function shown(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(guestText(v, 40));
  return Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : typeof v;
}
const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isNum = (v: unknown, hi: number): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= hi;

/** Most phases, workers and cgroups a run may have. */
export const MAX_PHASES = 1000;
export const MAX_WORKERS = 10_000;
export const MAX_CGROUPS = 1000;

/** Whether the worker ran in a phase. */
export const ranIn = (w: WorkerView, phase: number): boolean => w.from <= phase && phase <= w.to;

/** The phase a time (ns since the workers started) falls in. */
export function phaseAt(view: RunView, atNs: number): PhaseView | null {
  let found: PhaseView | null = null;
  for (const p of view.phases) if (p.startMs * 1e6 <= atNs) found = p;
  return found ?? view.phases[0] ?? null;
}

function readPhases(run: Obj, durationMs: number, problems: string[]): PhaseView[] {
  const raw = run.phases;
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.push(
      Array.isArray(raw) ? 'the run has no phases (phase 1 is missing)' : `phases is ${shown(raw)}, not a list`,
    );
    return [];
  }
  if (raw.length > MAX_PHASES) {
    problems.push(`the run has ${raw.length} phases (at most ${MAX_PHASES})`);
    return [];
  }
  const out: PhaseView[] = [];
  for (const [i, p] of raw.entries()) {
    if (!isObj(p) || !isInt(p.phase, 1, 1e6) || !isNum(p.atMs, MAX_NS / 1e6)) {
      problems.push(
        `phases[${i}] is unusable (phase ${shown(isObj(p) ? p.phase : p)}, atMs ${shown(isObj(p) ? p.atMs : undefined)})`,
      );
      return [];
    }
    const label = typeof p.label === 'string' ? guestText(p.label, 80) : '?';
    const transitionMs = isNum(p.transitionMs, MAX_NS / 1e6) ? p.transitionMs : 0;
    out.push({ phase: p.phase, label, startMs: p.atMs, endMs: 0, tag: `[phase ${p.phase}: ${label}]`, transitionMs });
  }
  out.sort((a, b) => a.phase - b.phase);
  for (let i = 0; i < out.length; i++) {
    if (out[i].phase !== i + 1) {
      problems.push(`phases are not numbered 1..${out.length} (found phase ${out[i].phase} at position ${i + 1})`);
      return [];
    }
    if (i > 0 && out[i].startMs < out[i - 1].startMs) {
      problems.push(
        `phase ${out[i].phase} starts at ${out[i].startMs} ms, before phase ${out[i - 1].phase} (${out[i - 1].startMs} ms)`,
      );
      return [];
    }
  }
  const last = out[out.length - 1];
  if (last.startMs > durationMs) {
    problems.push(`phase ${last.phase} starts at ${last.startMs} ms, after the run's end (${durationMs} ms)`);
    return [];
  }
  // a phase ends where the next one's operation began to apply (the transition is in no phase)
  for (let i = 0; i < out.length; i++)
    out[i].endMs =
      i + 1 < out.length ? Math.max(out[i].startMs, out[i + 1].startMs - out[i + 1].transitionMs) : durationMs;
  return out;
}

/** CPU -> ns of a usage list, or what is wrong with it. */
function readCpuTimes(v: unknown, field: string): Map<number, number> | string {
  if (!Array.isArray(v)) return `${field} is ${shown(v)}, not a list`;
  const m = new Map<number, number>();
  for (const c of v) {
    if (!isObj(c) || !isInt(c.cpu, 0, MAX_CPU) || !isNum(c.ns, MAX_NS)) {
      return `${field} has an unusable entry (cpu ${shown(isObj(c) ? c.cpu : c)}, ns ${shown(isObj(c) ? c.ns : undefined)})`;
    }
    m.set(c.cpu, (m.get(c.cpu) ?? 0) + c.ns);
  }
  return m;
}

function readWorker(w: unknown, pos: number, view: RunView): WorkerView {
  const bad = new Map<string, string>();
  const o: Obj = isObj(w) ? w : {};
  if (!isObj(w)) bad.set('report', `workers[${pos}] is ${shown(w)}, not a report`);
  const index = isInt(o.index, 0, 1e9) ? o.index : -1;
  if (index < 0) bad.set('index', `index is ${shown(o.index)}`);
  const cgroup = typeof o.cgroup === 'string' ? guestText(o.cgroup, 64) : '?';
  if (typeof o.cgroup !== 'string') bad.set('cgroup', `cgroup is ${shown(o.cgroup)}`);
  const work = typeof o.work === 'string' && (WORK_KINDS as readonly string[]).includes(o.work) ? o.work : '?';
  if (work === '?') bad.set('work', `work is ${shown(o.work)}, not a known work type`);
  const num = (field: string, unit: '' | ' ns'): number => {
    const v = o[field];
    if (isNum(v, unit ? MAX_NS : MAX_COUNT)) return v;
    bad.set(field, `${field} is ${shown(v)} (want a number from 0 to 1e15${unit})`);
    return NaN;
  };
  const iterations = num('iterations', '');
  const cpuTimeNs = num('cpuTimeNs', ' ns');
  const wallNs = num('wallNs', ' ns');
  const migrations = num('migrations', '');
  const maxGapNs = num('maxGapNs', ' ns');
  const maxGapAtNs = num('maxGapAtNs', ' ns');
  let wake: WorkerView['wake'] = null;
  const wl = o.wakeLatencyNs;
  if (wl !== null) {
    if (isObj(wl) && isNum(wl.samples, MAX_COUNT) && isNum(wl.p99, MAX_NS)) wake = { samples: wl.samples, p99: wl.p99 };
    else
      bad.set(
        'wakeLatencyNs',
        `wakeLatencyNs is unusable (${isObj(wl) ? `samples ${shown(wl.samples)}, p99 ${shown(wl.p99)}` : shown(wl)})`,
      );
  }
  let error: string | null = null;
  if (typeof o.error === 'string') error = guestText(o.error);
  else if (o.error !== null) bad.set('error', `error is ${shown(o.error)}`);

  const known = (p: unknown): p is number => typeof p === 'number' && view.phase.has(p);
  const usage = new Map<number, UsageView>();
  if (!Array.isArray(o.phases)) bad.set('phases', `phases is ${shown(o.phases)}, not a list`);
  else {
    for (const u of o.phases) {
      if (!isObj(u) || !known(u.phase)) {
        bad.set('phases', `usage reported for unknown phase ${shown(isObj(u) ? u.phase : u)}`);
        break;
      }
      if (usage.has(u.phase)) {
        bad.set('phases', `usage for phase ${u.phase} reported twice`);
        break;
      }
      if (!isNum(u.iterations, MAX_COUNT)) {
        bad.set('phases', `iterations in phase ${u.phase} is ${shown(u.iterations)}`);
        break;
      }
      const cpus = readCpuTimes(u.cpus, `phase ${u.phase} cpus`);
      if (typeof cpus === 'string') {
        bad.set('phases', cpus);
        break;
      }
      let ns = 0;
      for (const v of cpus.values()) ns += v;
      usage.set(u.phase, { iterations: u.iterations, cpus, ns });
    }
  }

  const allowed = new Map<number, number[]>();
  if (!Array.isArray(o.allowed)) bad.set('allowed', `allowed is ${shown(o.allowed)}, not a list`);
  else {
    for (const a of o.allowed) {
      if (!isObj(a) || !known(a.phase)) {
        bad.set('allowed', `allowed CPUs reported for unknown phase ${shown(isObj(a) ? a.phase : a)}`);
        break;
      }
      if (allowed.has(a.phase)) {
        bad.set('allowed', `allowed CPUs for phase ${a.phase} reported twice`);
        break;
      }
      if (!Array.isArray(a.cpus) || !a.cpus.every((c) => isInt(c, 0, MAX_CPU))) {
        bad.set('allowed', `allowed CPUs for phase ${a.phase} are unusable`);
        break;
      }
      allowed.set(
        a.phase,
        [...new Set(a.cpus as number[])].filter((c) => view.online.has(c)).sort((x, y) => x - y),
      );
    }
  }

  let from = 0;
  let to = -1;
  const last = view.phases.length;
  if (!known(o.startPhase)) bad.set('startPhase', `startPhase is ${shown(o.startPhase)}, not a phase of the run`);
  else if (o.stopPhase !== null && (!known(o.stopPhase) || o.stopPhase < o.startPhase))
    bad.set('stopPhase', `stopPhase is ${shown(o.stopPhase)}, not a phase from startPhase ${o.startPhase} on`);
  else {
    from = o.startPhase;
    to = o.stopPhase === null ? last : (o.stopPhase as number);
    for (let p = from; p <= to; p++) {
      if (!allowed.has(p) && !bad.has('allowed')) {
        bad.set('allowed', `no allowed CPUs reported for phase ${p}, in which it ran`);
        break;
      }
    }
  }
  const name = `worker ${index < 0 ? '?' : index} (cg ${cgroup}, ${work})`;
  return {
    index,
    name,
    cgroup,
    work,
    cpuBound: CPU_BOUND.has(work),
    iterations,
    cpuTimeNs,
    wallNs,
    migrations,
    maxGapNs,
    maxGapAtNs,
    wake,
    error,
    usage,
    allowed,
    from,
    to,
    bad,
  };
}

function readCgroup(c: unknown, pos: number): CgroupView | null {
  if (!isObj(c) || typeof c.name !== 'string') return null;
  const v: CgroupView = { name: guestText(c.name, 64), weight: DEFAULT_WEIGHT, max: null, bad: null };
  if (c.weight !== null) {
    if (isNum(c.weight, 10000) && c.weight >= 1) v.weight = c.weight;
    else v.bad = `cpu.weight is ${shown(c.weight)} (want 1 to 10000)`;
  }
  if (c.max !== null) {
    const m = c.max;
    if (isObj(m) && isNum(m.quotaUs, MAX_NS) && isNum(m.periodUs, MAX_NS) && m.quotaUs > 0 && m.periodUs > 0)
      v.max = { quotaUs: m.quotaUs, periodUs: m.periodUs };
    else v.bad = `cpu.max is unusable (cgroups[${pos}])`;
  }
  return v;
}

/** 1 − steal / (CPUs × window), within [0.02, 1]; 1 when the figures are missing or unusable. */
function availabilityOf(stat: unknown, cpus: number): number {
  if (
    !isObj(stat) ||
    !isNum(stat.stealMs, MAX_NS) ||
    !isNum(stat.windowMs, MAX_NS) ||
    cpus === 0 ||
    (stat.windowMs as number) <= 0
  )
    return 1;
  const a = 1 - (stat.stealMs as number) / (cpus * (stat.windowMs as number));
  return Math.min(1, Math.max(0.02, a));
}

/** Reads a RunRecord (any value) into the view; never throws on data. */
export function viewRun(runIn: RunRecord | unknown): RunView {
  const problems: string[] = [];
  const run: Obj = isObj(runIn) ? runIn : {};
  if (!isObj(runIn)) problems.push(`the run record is ${shown(runIn)}, not an object`);
  const label = typeof run.label === 'string' ? guestText(run.label, 80) : '?';
  let durationMs = 0;
  if (isNum(run.durationMs, MAX_NS / 1e6)) durationMs = run.durationMs;
  else if (isObj(runIn)) problems.push(`durationMs is ${shown(run.durationMs)}`);
  const online = new Set<number>();
  if (Array.isArray(run.cpus) && run.cpus.length > 0 && run.cpus.every((c) => isInt(c, 0, MAX_CPU)))
    for (const c of run.cpus as number[]) online.add(c);
  else if (isObj(runIn))
    problems.push(
      `cpus (online CPUs) is unusable: ${Array.isArray(run.cpus) ? `[${run.cpus.slice(0, 8).map(shown).join(',')}${run.cpus.length > 8 ? ',…' : ''}]` : shown(run.cpus)}`,
    );
  const phases = isObj(runIn) && problems.length === 0 ? readPhases(run, durationMs, problems) : [];
  const view: RunView = {
    label,
    durationMs,
    online,
    phases,
    phase: new Map(phases.map((p) => [p.phase, p])),
    workers: [],
    cgroups: new Map(),
    problems,
    availability: availabilityOf(run.cpuStat, online.size),
  };
  if (!Array.isArray(run.workers)) {
    if (isObj(runIn)) problems.push(`workers is ${shown(run.workers)}, not a list`);
  } else if (run.workers.length > MAX_WORKERS)
    problems.push(`the run has ${run.workers.length} workers (at most ${MAX_WORKERS})`);
  else if (problems.length === 0) {
    view.workers = run.workers.map((w, i) => readWorker(w, i, view));
    const seen = new Set<number>();
    for (const w of view.workers) {
      if (w.index >= 0 && seen.has(w.index)) w.bad.set('index', `index ${w.index} is used by two workers`);
      seen.add(w.index);
    }
  }
  if (Array.isArray(run.cgroups) && run.cgroups.length > MAX_CGROUPS)
    problems.push(`the run has ${run.cgroups.length} cgroups (at most ${MAX_CGROUPS})`);
  else if (Array.isArray(run.cgroups)) {
    run.cgroups.forEach((c, i) => {
      const v = readCgroup(c, i);
      if (v === null) problems.push(`cgroups[${i}] is unusable (no name)`);
      else if (view.cgroups.has(v.name)) problems.push(`cgroup ${v.name} is listed twice`);
      else view.cgroups.set(v.name, v);
    });
  } else if (isObj(runIn)) problems.push(`cgroups is ${shown(run.cgroups)}, not a list`);
  return view;
}

/** Lines for the fields a check needs that the worker's report got wrong (empty: usable). */
export function unusable(w: WorkerView, fields: readonly string[]): string[] {
  const out: string[] = [];
  for (const k of ['report', 'index', ...fields]) {
    const why = w.bad.get(k);
    if (why !== undefined) out.push(`${w.name}: unusable report: ${why}`);
  }
  return out;
}

/** The allowed CPUs of a worker in a phase, as ranges. */
export const allowedText = (w: WorkerView, phase: number): string => cpuRanges(w.allowed.get(phase) ?? []);
