// gaps: the longest time each worker was runnable but off-CPU (measured in the guest between
// its iterations) must stay under `maxGapMs`. Every work type is judged: the worker leaves
// its voluntary sleeps out of the gap. The failure line places the gap in its phase.

import { fmtAt, fmtDuration, fmtLimitMs } from './format.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { judged, Lines, type Judged } from './verdict.js';
import { phaseAt, unusable, type RunView } from './view.js';

const FIELDS = ['maxGapNs', 'maxGapAtNs', 'work', 'cgroup'];

export function gaps(view: RunView, t: Thresholds): Judged {
  const lines = new Lines('gaps');
  for (const p of view.problems) lines.fail(`bad run record: ${p}`);
  if (lines.failed) return judged(lines, {});
  let workers = 0;
  let maxGapNs = 0;
  const limitNs = t.gaps.maxGapMs * 1e6;
  for (const w of view.workers) {
    const bad = unusable(w, FIELDS);
    for (const b of bad) lines.fail(b);
    if (bad.length > 0) continue;
    workers++;
    maxGapNs = Math.max(maxGapNs, w.maxGapNs);
    if (w.maxGapNs > limitNs) {
      const ph = phaseAt(view, w.maxGapAtNs);
      lines.fail(
        `${w.name} off-CPU ${fmtDuration(w.maxGapNs)} at t=${fmtAt(w.maxGapAtNs)} while runnable (max ${fmtLimitMs(t.gaps.maxGapMs)})${ph ? ` ${ph.tag}` : ''}`,
      );
    }
  }
  return judged(
    lines,
    { workers, maxGapMs: Math.round(maxGapNs / 1e3) / 1e3 },
    workers === 0 && !lines.failed ? 'no workers' : null,
  );
}
