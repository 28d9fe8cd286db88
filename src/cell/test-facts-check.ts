// A test cell's facts come from the guest, which the host does not trust: checkTestFacts()
// accepts only the shape the judge and the reporters read (types, bounded arrays and strings,
// finite non-negative numbers), so a damaged report fails its test with a reason instead of
// throwing in the host or printing garbage.

import type { TestFacts } from '../guest/plan.js';

const MAX_RUNS = 64;
const MAX_WORKERS = 8192;
const MAX_CPUS = 4096;
const MAX_PHASES = 1024;
const MAX_LOGS = 1000;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const int = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const str = (v: unknown, max = 16384): boolean => typeof v === 'string' && v.length <= max;
const arr = (v: unknown, max: number): v is unknown[] => Array.isArray(v) && v.length <= max;
const cpuTimes = (v: unknown): boolean =>
  arr(v, MAX_CPUS) && v.every((c) => isObj(c) && int(c.cpu) && (c.cpu as number) < MAX_CPUS && int(c.ns));
const cpuList = (v: unknown): boolean => arr(v, MAX_CPUS) && v.every((c) => int(c) && (c as number) < MAX_CPUS);

function workerProblem(w: unknown): string | null {
  if (!isObj(w)) return 'not an object';
  for (const k of [
    'index',
    'pid',
    'nice',
    'iterations',
    'cpuTimeNs',
    'wallNs',
    'voluntarySwitches',
    'involuntarySwitches',
    'migrations',
    'maxGapNs',
    'maxGapAtNs',
    'wakeups',
    'startPhase',
  ]) {
    if (
      k === 'nice'
        ? !(typeof w.nice === 'number' && Number.isSafeInteger(w.nice) && Math.abs(w.nice) <= 20)
        : !int(w[k])
    )
      return k;
  }
  if (!(typeof w.policy === 'number' && Number.isSafeInteger(w.policy))) return 'policy';
  if (!(
    typeof w.maxGapCpu === 'number' &&
    Number.isSafeInteger(w.maxGapCpu) &&
    w.maxGapCpu >= -1 &&
    w.maxGapCpu < MAX_CPUS
  ))
    return 'maxGapCpu';
  if (!str(w.cgroup, 300) || !str(w.work, 20)) return 'cgroup/work';
  if (!(w.stopPhase === null || int(w.stopPhase))) return 'stopPhase';
  if (!(w.error === null || str(w.error, 2000))) return 'error';
  if (!cpuTimes(w.cpus)) return 'cpus';
  if (
    !arr(w.phases, MAX_PHASES) ||
    !w.phases.every((p) => isObj(p) && int(p.phase) && int(p.iterations) && cpuTimes(p.cpus))
  )
    return 'phases';
  if (!arr(w.allowed, MAX_PHASES) || !w.allowed.every((a) => isObj(a) && int(a.phase) && cpuList(a.cpus)))
    return 'allowed';
  const l = w.wakeLatencyNs;
  if (!(l === null || (isObj(l) && int(l.samples) && int(l.p50) && int(l.p99) && int(l.max)))) return 'wakeLatencyNs';
  return null;
}

function runProblem(r: unknown): string | null {
  if (!isObj(r)) return 'not an object';
  if (!str(r.label, 200) || !num(r.durationMs) || !num(r.spawnMs)) return 'label/durationMs/spawnMs';
  if (!cpuList(r.cpus)) return 'cpus';
  const pl = r.payload;
  if (!(
    pl === null ||
    (isObj(pl) &&
      arr(pl.cmd, 256) &&
      pl.cmd.every((c) => str(c, 4096)) &&
      ['exit', 'stopped', 'failed'].includes(pl.ended as string) &&
      (pl.exitCode === null || typeof pl.exitCode === 'number') &&
      (pl.signal === null || str(pl.signal, 20)) &&
      str(pl.output, 20000) &&
      num(pl.ms))
  ))
    return 'payload';
  const st = r.cpuStat;
  if (!(st === null || (isObj(st) && num(st.busyMs) && num(st.idleMs) && num(st.stealMs) && num(st.windowMs))))
    return 'cpuStat';
  if (
    !arr(r.phases, MAX_PHASES) ||
    !r.phases.every(
      (p) =>
        isObj(p) &&
        int(p.phase) &&
        str(p.label, 2000) &&
        num(p.atMs) &&
        (p.transitionMs === undefined || num(p.transitionMs)),
    )
  )
    return 'phases';
  if (
    !arr(r.cgroups, MAX_WORKERS) ||
    !r.cgroups.every(
      (c) =>
        isObj(c) &&
        str(c.name, 300) &&
        (c.weight === null || int(c.weight)) &&
        (c.max === null || (isObj(c.max) && int(c.max.quotaUs) && int(c.max.periodUs))) &&
        arr(c.workers, MAX_WORKERS) &&
        c.workers.every(int),
    )
  )
    return 'cgroups';
  if (!arr(r.workers, MAX_WORKERS)) return 'workers';
  for (let i = 0; i < r.workers.length; i++) {
    const p = workerProblem(r.workers[i]);
    if (p !== null) return `workers[${i}].${p}`;
  }
  return null;
}

/** The facts, or the path of the first thing wrong with them. */
export function checkTestFacts(v: unknown): TestFacts | string {
  if (!isObj(v)) return 'test: not an object';
  if (!arr(v.runs, MAX_RUNS)) return 'test.runs';
  for (let i = 0; i < v.runs.length; i++) {
    const run = v.runs[i];
    if (!isObj(run) || !(run.checks === null || isObj(run.checks))) return `test.runs[${i}].checks`;
    const p = runProblem(run.record);
    if (p !== null) return `test.runs[${i}].record.${p}`;
  }
  const e = v.error;
  if (!(e === null || (isObj(e) && str(e.message) && str(e.stack, 65536)))) return 'test.error';
  if (!(v.skipped === null || str(v.skipped, 2000))) return 'test.skipped';
  if (!num(v.bodyMs)) return 'test.bodyMs';
  if (!arr(v.logs, MAX_LOGS) || !v.logs.every((l) => str(l, 4000))) return 'test.logs';
  if (!(v.stateAtEnd === undefined || str(v.stateAtEnd, 40))) return 'test.stateAtEnd';
  for (const k of ['schedulerAlive', 'detachedOnPurpose'])
    if (!(v[k] === undefined || typeof v[k] === 'boolean')) return `test.${k}`;
  return v as unknown as TestFacts;
}
