// What CPU time a worker could expect: the model behind starvation's fair share and
// fairness's weight comparison.
//
// Fair share of a CPU-bound worker w in a phase, in CPUs (at most 1):
//   sum over the online CPUs c it is allowed on of  ew(w) / sum of ew(j) over the CPU-bound
//   workers j running in the phase that are allowed on c,
// where ew(j) = cpu.weight of j's cgroup / its cgroup's CPU-bound workers in the phase; a
// cgroup's cpu.max caps it at (quota / period) / those workers. Each CPU is split among the
// workers allowed there by weight; a worker whose competitors can go elsewhere gets more than
// this, so the model errs low (lenient). Workers that sleep on purpose are not counted as
// competitors. Nested cgroups use their own weight only.

import { DEFAULT_WEIGHT, type RunView, type WorkerView } from './view.js';

/** Fair share in CPUs (0..1) of each of `workers` (the CPU-bound workers running in one phase), by worker. */
export function fairShares(view: RunView, phase: number, workers: readonly WorkerView[]): Map<WorkerView, number> {
  const perCgroup = new Map<string, number>();
  for (const w of workers) perCgroup.set(w.cgroup, (perCgroup.get(w.cgroup) ?? 0) + 1);
  const ew = new Map<WorkerView, number>();
  for (const w of workers) {
    const cg = view.cgroups.get(w.cgroup);
    ew.set(w, (cg && cg.bad === null ? cg.weight : DEFAULT_WEIGHT) / perCgroup.get(w.cgroup)!);
  }
  const perCpu = new Map<number, number>();
  for (const w of workers) for (const c of w.allowed.get(phase) ?? []) perCpu.set(c, (perCpu.get(c) ?? 0) + ew.get(w)!);
  const out = new Map<WorkerView, number>();
  for (const w of workers) {
    let share = 0;
    for (const c of w.allowed.get(phase) ?? []) share += ew.get(w)! / perCpu.get(c)!;
    const cg = view.cgroups.get(w.cgroup);
    if (cg?.max && cg.bad === null)
      share = Math.min(share, cg.max.quotaUs / cg.max.periodUs / perCgroup.get(w.cgroup)!);
    out.set(w, Math.min(1, share));
  }
  return out;
}

/**
 * Weighted max-min split of `capacity` CPUs among groups wanting at most `demand` CPUs each:
 * each gets capacity in proportion to its weight, a group that wants less gets what it wants
 * and the rest is split again. Returns each group's CPUs and whether its weight limited it.
 */
export function waterFill(
  capacity: number,
  groups: readonly { weight: number; demand: number }[],
): { alloc: number; byWeight: boolean }[] {
  const out = groups.map(() => ({ alloc: 0, byWeight: false }));
  let left = capacity;
  let active = groups.map((_, i) => i);
  while (active.length > 0) {
    const total = active.reduce((s, i) => s + groups[i].weight, 0);
    const capped = active.filter((i) => (left * groups[i].weight) / total >= groups[i].demand);
    if (capped.length === 0) {
      for (const i of active) out[i] = { alloc: (left * groups[i].weight) / total, byWeight: true };
      break;
    }
    for (const i of capped) {
      out[i] = { alloc: groups[i].demand, byWeight: false };
      left -= groups[i].demand;
    }
    active = active.filter((i) => !capped.includes(i));
  }
  return out;
}
