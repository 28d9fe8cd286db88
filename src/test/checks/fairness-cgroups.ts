// fairness between cgroups, in one phase. Cgroups are compared when they are siblings (same
// parent path, no child cgroups of their own), all their running workers share one allowed
// CPU set, and that set is the same. Among those:
// - equal cpu.weight, equal cpu.max and the same workers (count and work types): the spread
//   of per-cgroup CPU time totals must be <= `maxSpreadPct`;
// - unequal cpu.weight, every worker CPU-bound, no cpu.max: each cgroup's share of the group's
//   CPU time must be within `weightTolerance` (relative) of its share by weight, computed by a
//   weighted max-min split of the CPUs (a cgroup with fewer workers than its weighted CPUs gets
//   only what its workers can use). Not judged when the CPUs are not oversubscribed.

import { waterFill } from './fair-share.js';
import { cpuRanges, fmtDuration, fmtLimitPct, fmtPct, trimNum } from './format.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import type { Lines } from './verdict.js';
import type { PhaseView, RunView, WorkerView } from './view.js';

/** Running state of the fairness check in a run. */
export interface FairnessState {
  lines: Lines;
  comparisons: number;
  maxSpreadPct: number;
  maxWeightDeviationPct: number;
}

/** (max-min)/max·100, or null when every value is 0. */
export function spreadPct(values: readonly number[]): number | null {
  let max = -Infinity;
  let min = Infinity;
  for (const v of values) {
    max = Math.max(max, v);
    min = Math.min(min, v);
  }
  if (!(max > 0)) return null;
  return ((max - min) / max) * 100;
}

interface Member {
  name: string;
  weight: number;
  maxKey: string;
  workers: WorkerView[];
  ns: number;
  allCpuBound: boolean;
  capped: boolean;
}

const parentOf = (name: string): string => (name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '');
const names = (ms: readonly Member[]): string =>
  ms.length <= 6
    ? ms.map((m) => m.name).join(', ')
    : `${ms
        .slice(0, 6)
        .map((m) => m.name)
        .join(', ')}, …`;

function members(
  st: FairnessState,
  view: RunView,
  ph: PhaseView,
  running: WorkerView[],
  badCgroups: Set<string>,
): Map<string, Member[]> {
  const byCgroup = new Map<string, WorkerView[]>();
  for (const w of running) {
    const l = byCgroup.get(w.cgroup);
    if (l) l.push(w);
    else byCgroup.set(w.cgroup, [w]);
  }
  const parents = new Set<string>();
  for (const n of view.cgroups.keys())
    for (let i = n.indexOf('/'); i >= 0; i = n.indexOf('/', i + 1)) parents.add(n.slice(0, i));
  const groups = new Map<string, Member[]>();
  for (const [name, ws] of byCgroup) {
    const cg = view.cgroups.get(name);
    if (!cg) {
      st.lines.note(`cg ${name} ${ph.tag}: not among the run's cgroups, not compared with others`);
      continue;
    }
    if (badCgroups.has(name) || parents.has(name)) continue;
    const sets = new Set(ws.map((w) => cpuRanges(w.allowed.get(ph.phase) ?? [])));
    if (sets.size > 1) {
      st.lines.note(`cg ${name} ${ph.tag}: workers on different CPUs, not compared with other cgroups`);
      continue;
    }
    const allowed = [...sets][0];
    if (!ws.some((w) => w.cpuBound)) continue;
    const m: Member = {
      name,
      weight: cg.weight,
      maxKey: cg.max ? `${cg.max.quotaUs}/${cg.max.periodUs}` : 'max',
      workers: ws,
      ns: ws.reduce((s, w) => s + (w.usage.get(ph.phase)?.ns ?? 0), 0),
      allCpuBound: ws.every((w) => w.cpuBound),
      capped: cg.max !== null,
    };
    const key = JSON.stringify([parentOf(name), allowed]);
    const g = groups.get(key);
    if (g) g.push(m);
    else groups.set(key, [m]);
  }
  return groups;
}

function equalWeights(st: FairnessState, group: Member[], allowed: string, ph: PhaseView, t: Thresholds): void {
  const sub = new Map<string, Member[]>();
  for (const m of group) {
    const key = JSON.stringify([m.weight, m.maxKey, m.workers.map((w) => w.work).sort()]);
    const l = sub.get(key);
    if (l) l.push(m);
    else sub.set(key, [m]);
  }
  for (const ms of sub.values()) {
    if (ms.length < 2) continue;
    const spread = spreadPct(ms.map((m) => m.ns));
    if (spread === null) continue;
    st.comparisons++;
    st.maxSpreadPct = Math.max(st.maxSpreadPct, spread);
    if (spread <= t.fairness.maxSpreadPct) continue;
    const hi = ms.reduce((a, b) => (b.ns > a.ns ? b : a));
    const lo = ms.reduce((a, b) => (b.ns < a.ns ? b : a));
    const works = [...new Set(ms[0].workers.map((w) => w.work))].join('/');
    st.lines.fail(
      `cgroups ${names(ms)} (weight ${trimNum(ms[0].weight)}, ${ms[0].workers.length} ${works} workers each on ${allowed}): ` +
        `CPU time spread ${fmtPct(spread)} (${hi.name} ${fmtDuration(hi.ns)}, ${lo.name} ${fmtDuration(lo.ns)}) (max ${fmtLimitPct(t.fairness.maxSpreadPct)}) ${ph.tag}`,
    );
  }
}

function byWeight(
  st: FairnessState,
  group: Member[],
  allowedCpus: number,
  allowed: string,
  ph: PhaseView,
  t: Thresholds,
): void {
  const which = `cgroups ${names(group)} on ${allowed}`;
  if (group.some((m) => !m.allCpuBound || m.capped)) {
    st.lines.note(`${which} ${ph.tag}: weights not compared (a cgroup has cpu.max or workers that sleep on purpose)`);
    return;
  }
  const split = waterFill(
    allowedCpus,
    group.map((m) => ({ weight: m.weight, demand: m.workers.length })),
  );
  if (!split.some((s) => s.byWeight)) {
    st.lines.note(`${which} ${ph.tag}: CPUs not oversubscribed, weights not in play`);
    return;
  }
  const totalNs = group.reduce((s, m) => s + m.ns, 0);
  const totalAlloc = split.reduce((s, a) => s + a.alloc, 0);
  if (!(totalNs > 0) || !(totalAlloc > 0)) {
    st.lines.note(`${which} ${ph.tag}: no CPU time, weights not judged`);
    return;
  }
  st.comparisons++;
  group.forEach((m, i) => {
    const got = m.ns / totalNs;
    const want = split[i].alloc / totalAlloc;
    const off = Math.abs(got / want - 1);
    st.maxWeightDeviationPct = Math.max(st.maxWeightDeviationPct, off * 100);
    if (off > t.fairness.weightTolerance) {
      st.lines.fail(
        `cg ${m.name} (weight ${trimNum(m.weight)}) got ${fmtPct(got * 100)} of the CPU time of ${which}, ${fmtPct(want * 100)} expected by weight ` +
          `(off by ${fmtPct(off * 100)}, max ${fmtLimitPct(t.fairness.weightTolerance * 100)}) ${ph.tag}`,
      );
    }
  });
}

export function fairnessBetweenCgroups(
  st: FairnessState,
  view: RunView,
  ph: PhaseView,
  running: WorkerView[],
  badCgroups: Set<string>,
  t: Thresholds,
): void {
  for (const group of members(st, view, ph, running, badCgroups).values()) {
    if (group.length < 2) continue;
    const cpus = group[0].workers[0].allowed.get(ph.phase) ?? [];
    const allowed = cpuRanges(cpus);
    equalWeights(st, group, allowed, ph, t);
    if (new Set(group.map((m) => m.weight)).size > 1) byWeight(st, group, cpus.length, allowed, ph, t);
  }
}
