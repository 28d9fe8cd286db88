// fairness: CPU time among workers that should get the same, per phase (phases shorter than
// `minPhaseMs` are left out). Within a cgroup: its CPU-bound workers (spin, yield, mixed) of
// one work type on the same allowed CPUs, spread = (max-min)/max·100 <= `maxSpreadPct`.
// Between cgroups: see fairness-cgroups.ts. Skipped with a reason when nothing in the run is
// comparable.

import { fairnessBetweenCgroups, spreadPct, type FairnessState } from './fairness-cgroups.js';
import { cpuRanges, fmtDuration, fmtLimitPct, fmtPct } from './format.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { judged, Lines, type Judged } from './verdict.js';
import { ranIn, unusable, type PhaseView, type RunView, type WorkerView } from './view.js';

const FIELDS = ['work', 'cgroup', 'phases', 'allowed', 'startPhase', 'stopPhase'];

function withinCgroups(
  st: FairnessState,
  ph: PhaseView,
  running: WorkerView[],
  t: Thresholds,
  onlyPhase: boolean,
): void {
  const groups = new Map<string, WorkerView[]>();
  for (const w of running) {
    if (!w.cpuBound) continue;
    const key = JSON.stringify([w.cgroup, w.work, cpuRanges(w.allowed.get(ph.phase) ?? [])]);
    const g = groups.get(key);
    if (g) g.push(w);
    else groups.set(key, [w]);
  }
  const perCgroup = new Map<string, number>();
  for (const g of groups.values()) if (g.length >= 2) perCgroup.set(g[0].cgroup, (perCgroup.get(g[0].cgroup) ?? 0) + 1);
  for (const [cg, n] of perCgroup)
    if (n > 1)
      st.lines.note(`cg ${cg} ${ph.tag}: workers compared in ${n} groups (different work types or allowed CPUs)`);
  for (const g of groups.values()) {
    if (g.length < 2) continue;
    // one phase: the kernel's exact CPU time; per phase, the workers' samples (a yield's
    // runnable wait under 1 ms counts there as CPU time, so they are coarser)
    const ns = g.map((w) => (onlyPhase && w.cpuTimeNs > 0 ? w.cpuTimeNs : (w.usage.get(ph.phase)?.ns ?? 0)));
    const spread = spreadPct(ns);
    if (spread === null) {
      st.lines.note(`cg ${g[0].cgroup} ${ph.tag}: no CPU time at all, spread not judged`);
      continue;
    }
    st.comparisons++;
    st.maxSpreadPct = Math.max(st.maxSpreadPct, spread);
    if (spread > t.fairness.maxSpreadPct) {
      let hi = 0;
      let lo = 0;
      ns.forEach((v, i) => {
        if (v > ns[hi]) hi = i;
        if (v < ns[lo]) lo = i;
      });
      const allowed = cpuRanges(g[0].allowed.get(ph.phase) ?? []);
      st.lines.fail(
        `cg ${g[0].cgroup}: CPU time spread ${fmtPct(spread)} across ${g.length} ${g[0].work} workers on ${allowed} ` +
          `(worker ${g[hi].index} ${fmtDuration(ns[hi])}, worker ${g[lo].index} ${fmtDuration(ns[lo])}) (max ${fmtLimitPct(t.fairness.maxSpreadPct)}) ${ph.tag}`,
      );
    }
  }
}

export function fairness(view: RunView, t: Thresholds): Judged {
  const lines = new Lines('fairness');
  for (const p of view.problems) lines.fail(`bad run record: ${p}`);
  if (lines.failed) return judged(lines, {});
  const st: FairnessState = { lines, comparisons: 0, maxSpreadPct: 0, maxWeightDeviationPct: 0 };
  const usable: WorkerView[] = [];
  const badCgroups = new Set<string>();
  for (const w of view.workers) {
    const bad = unusable(w, FIELDS);
    for (const b of bad) lines.fail(b);
    if (bad.length === 0) usable.push(w);
    else badCgroups.add(w.cgroup);
  }
  for (const cg of view.cgroups.values())
    if (cg.bad !== null) {
      lines.fail(`cg ${cg.name}: unusable record: ${cg.bad}`);
      badCgroups.add(cg.name);
    }
  const notCpuBound = usable.filter((w) => !w.cpuBound);
  if (notCpuBound.length > 0) {
    const shown = notCpuBound
      .slice(0, 8)
      .map((w) => `worker ${w.index}`)
      .join(', ');
    lines.note(
      `not compared (work types that sleep on purpose): ${shown}${notCpuBound.length > 8 ? ` and ${notCpuBound.length - 8} more` : ''}`,
    );
  }
  const short: number[] = [];
  for (const ph of view.phases) {
    const running = usable.filter((w) => ranIn(w, ph.phase));
    if (running.length === 0) continue;
    if (ph.endMs - ph.startMs < t.minPhaseMs) {
      short.push(ph.phase);
      continue;
    }
    withinCgroups(st, ph, running, t, view.phases.length === 1);
    fairnessBetweenCgroups(st, view, ph, running, badCgroups, t);
  }
  if (short.length > 0)
    lines.note(`phase${short.length > 1 ? 's' : ''} ${short.join(', ')} shorter than ${t.minPhaseMs} ms: not compared`);
  const figures = {
    comparisons: st.comparisons,
    maxSpreadPct: Number(st.maxSpreadPct.toFixed(2)),
    maxWeightDeviationPct: Number(st.maxWeightDeviationPct.toFixed(2)),
  };
  const skip =
    st.comparisons === 0
      ? 'nothing comparable: no two CPU-bound workers of one cgroup with the same work type and CPUs, and no cgroups on the same CPUs to compare, in a phase long enough'
      : null;
  return judged(lines, figures, skip);
}
