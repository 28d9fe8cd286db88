// isolation: in every phase, a worker may have had CPU time only on the CPUs it was allowed
// on in that phase (its cgroup's effective cpuset ∩ its affinity). One line per worker,
// phase and CPU outside the set.

import { cpuRanges, fmtDuration } from './format.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { judged, Lines, type Judged } from './verdict.js';
import { unusable, type RunView } from './view.js';

const FIELDS = ['phases', 'allowed', 'work', 'cgroup'];

export function isolation(view: RunView, _t: Thresholds): Judged {
  const lines = new Lines('isolation');
  for (const p of view.problems) lines.fail(`bad run record: ${p}`);
  if (lines.failed) return judged(lines, {});
  let workers = 0;
  let outsideNs = 0;
  for (const w of view.workers) {
    const bad = unusable(w, FIELDS);
    for (const b of bad) lines.fail(b);
    if (bad.length > 0) continue;
    workers++;
    for (const ph of view.phases) {
      const use = w.usage.get(ph.phase);
      if (!use) continue;
      const allowed = w.allowed.get(ph.phase);
      if (!allowed) {
        if (use.ns > 0)
          lines.fail(`${w.name} ran in phase ${ph.phase} but no allowed CPUs were reported for it ${ph.tag}`);
        continue;
      }
      const set = new Set(allowed);
      for (const [cpu, ns] of [...use.cpus].sort((a, b) => a[0] - b[0])) {
        if (ns <= 0 || set.has(cpu)) continue;
        outsideNs += ns;
        lines.fail(`${w.name} ran on CPU ${cpu} (${fmtDuration(ns)}) outside ${cpuRanges(allowed)} ${ph.tag}`);
      }
    }
  }
  return judged(
    lines,
    { workers, outsideMs: Math.round(outsideNs / 1e3) / 1e3 },
    workers === 0 && !lines.failed ? 'no workers' : null,
  );
}
