// starvation: did every worker get to run? A worker fails when it reported an error (it could
// not do its job), when it did no work at all (0 iterations, any work type), or — CPU-bound
// workers (spin, yield, mixed) only — when its CPU time in a phase it ran in is below
// `minShare` of its fair share there (model: fair-share.ts). Phases shorter than
// `minPhaseMs` are not judged on their own.

import { fairShares } from './fair-share.js';
import { fmtDuration, fmtFraction, trimNum } from './format.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { judged, Lines, type Judged } from './verdict.js';
import { ranIn, unusable, type RunView, type WorkerView } from './view.js';

const FIELDS = ['iterations', 'wallNs', 'error', 'work', 'cgroup', 'phases', 'allowed', 'startPhase', 'stopPhase'];

export function starvation(view: RunView, t: Thresholds): Judged {
  const lines = new Lines('starvation');
  for (const p of view.problems) lines.fail(`bad run record: ${p}`);
  if (lines.failed) return judged(lines, {});
  const usable: WorkerView[] = [];
  for (const w of view.workers) {
    const bad = unusable(w, FIELDS);
    for (const b of bad) lines.fail(b);
    if (bad.length === 0) usable.push(w);
  }
  const done = new Set<WorkerView>();
  for (const w of usable) {
    if (w.error !== null) {
      lines.fail(`${w.name} failed in the guest: ${w.error}`);
      done.add(w);
      continue;
    }
    if (w.iterations === 0) {
      lines.fail(`${w.name} did no work (0 iterations in ${fmtDuration(w.wallNs)})`);
      done.add(w);
    }
  }
  let judgedPhases = 0;
  let minShare = Infinity;
  const short: number[] = [];
  for (const ph of view.phases) {
    const lenMs = ph.endMs - ph.startMs;
    const running = usable.filter((w) => w.cpuBound && ranIn(w, ph.phase));
    if (running.length === 0) continue;
    if (lenMs < t.minPhaseMs) {
      short.push(ph.phase);
      continue;
    }
    judgedPhases++;
    const shares = fairShares(view, ph.phase, running);
    for (const w of running) {
      if (done.has(w)) continue;
      const fairNs = shares.get(w)! * lenMs * 1e6 * view.availability;
      if (fairNs <= 0) {
        lines.note(`${w.name} has no online CPU allowed in phase ${ph.phase}; not judged there`);
        continue;
      }
      const gotNs = w.usage.get(ph.phase)?.ns ?? 0;
      const ratio = gotNs / fairNs;
      minShare = Math.min(minShare, ratio);
      if (ratio < t.starvation.minShare) {
        lines.fail(
          `${w.name} got ${fmtDuration(gotNs)} of CPU, ${fmtFraction(ratio)} of its fair share ${fmtDuration(fairNs)} (min ${trimNum(t.starvation.minShare)}) ${ph.tag}`,
        );
      }
    }
  }
  if (view.availability < 0.99)
    lines.note(
      `the vCPUs ran ${(view.availability * 100).toFixed(0)}% of the run (the rest was steal: an emulated or busy host): fair shares scaled to it`,
    );
  if (short.length > 0)
    lines.note(
      `phase${short.length > 1 ? 's' : ''} ${short.join(', ')} shorter than ${t.minPhaseMs} ms: CPU time not judged there`,
    );
  const figures: Record<string, number> = { workers: usable.length, phases: judgedPhases };
  if (Number.isFinite(minShare)) figures.minShare = Number(minShare.toFixed(4));
  return judged(lines, figures, usable.length === 0 && !lines.failed ? 'no workers' : null);
}
