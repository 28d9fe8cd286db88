// benchmark (opt-in): performance floors and ceilings, each judged only when set —
// `minIterationsPerSec` per worker (iterations / wall time), `maxWakeP99Us` per worker with
// measured wake-ups, `maxCvPct` of the iteration rate across a cgroup's workers of one work
// type (population standard deviation / mean).

import { fmtDuration, fmtLimitMs, fmtLimitPct, fmtNum, fmtPct, trimNum } from './format.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { judged, Lines, skippedVerdict, type Judged } from './verdict.js';
import { unusable, type RunView, type WorkerView } from './view.js';

export function benchmark(view: RunView, t: Thresholds): Judged {
  const b = t.benchmark;
  if (!b.enabled) return { verdict: skippedVerdict('benchmark', 'off (opt-in: benchmark.enabled)'), notes: [] };
  if (b.minIterationsPerSec === undefined && b.maxWakeP99Us === undefined && b.maxCvPct === undefined) {
    return {
      verdict: skippedVerdict('benchmark', 'no bound set (minIterationsPerSec, maxWakeP99Us, maxCvPct)'),
      notes: [],
    };
  }
  const lines = new Lines('benchmark');
  for (const p of view.problems) lines.fail(`bad run record: ${p}`);
  if (lines.failed) return judged(lines, {});
  const fields = [
    'work',
    'cgroup',
    ...(b.minIterationsPerSec !== undefined || b.maxCvPct !== undefined ? ['iterations', 'wallNs'] : []),
    ...(b.maxWakeP99Us !== undefined ? ['wakeLatencyNs'] : []),
  ];
  const rates = new Map<WorkerView, number>();
  let workers = 0;
  let minRate = Infinity;
  let maxP99Us = 0;
  let maxCv = 0;
  for (const w of view.workers) {
    const bad = unusable(w, fields);
    for (const l of bad) lines.fail(l);
    if (bad.length > 0) continue;
    workers++;
    if (fields.includes('iterations')) {
      if (w.wallNs > 0) rates.set(w, w.iterations / (w.wallNs / 1e9));
      else lines.note(`${w.name}: no wall time, iteration rate not judged`);
    }
    const rate = rates.get(w);
    if (b.minIterationsPerSec !== undefined && rate !== undefined) {
      minRate = Math.min(minRate, rate);
      if (rate < b.minIterationsPerSec)
        lines.fail(`${w.name} ${fmtNum(rate)} iterations/s (min ${trimNum(b.minIterationsPerSec)})`);
    }
    if (b.maxWakeP99Us !== undefined && w.wake !== null && w.wake.samples > 0) {
      maxP99Us = Math.max(maxP99Us, w.wake.p99 / 1e3);
      if (w.wake.p99 > b.maxWakeP99Us * 1e3) {
        lines.fail(
          `${w.name} wake-up latency p99 ${fmtDuration(w.wake.p99)} over ${w.wake.samples} wake-ups (max ${fmtLimitMs(b.maxWakeP99Us / 1e3)})`,
        );
      }
    }
  }
  if (b.maxCvPct !== undefined) {
    const groups = new Map<string, WorkerView[]>();
    for (const w of rates.keys()) {
      const key = JSON.stringify([w.cgroup, w.work]);
      const g = groups.get(key);
      if (g) g.push(w);
      else groups.set(key, [w]);
    }
    for (const g of groups.values()) {
      if (g.length < 2) continue;
      const r = g.map((w) => rates.get(w)!);
      const mean = r.reduce((s, x) => s + x, 0) / r.length;
      if (!(mean > 0)) continue;
      const cv = (Math.sqrt(r.reduce((s, x) => s + (x - mean) ** 2, 0) / r.length) / mean) * 100;
      maxCv = Math.max(maxCv, cv);
      if (cv > b.maxCvPct)
        lines.fail(
          `cg ${g[0].cgroup}: iteration rate CV ${fmtPct(cv)} across ${g.length} ${g[0].work} workers (max ${fmtLimitPct(b.maxCvPct)})`,
        );
    }
  }
  const figures: Record<string, number> = { workers };
  if (Number.isFinite(minRate)) figures.minIterationsPerSec = Math.round(minRate * 100) / 100;
  if (b.maxWakeP99Us !== undefined) figures.maxWakeP99Us = Math.round(maxP99Us * 10) / 10;
  if (b.maxCvPct !== undefined) figures.maxCvPct = Number(maxCv.toFixed(2));
  return judged(lines, figures, workers === 0 && !lines.failed ? 'no workers' : null);
}
