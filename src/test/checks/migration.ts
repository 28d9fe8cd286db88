// migration (opt-in): how often each worker changed CPU between consecutive iterations,
// migrations / iterations <= `maxMigrationRatio`. A worker without iterations is left to
// starvation.

import { fmtNum, trimNum } from './format.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { judged, Lines, skippedVerdict, type Judged } from './verdict.js';
import { unusable, type RunView } from './view.js';

const FIELDS = ['migrations', 'iterations', 'work', 'cgroup'];

export function migration(view: RunView, t: Thresholds): Judged {
  if (!t.migration.enabled)
    return { verdict: skippedVerdict('migration', 'off (opt-in: migration.enabled)'), notes: [] };
  const lines = new Lines('migration');
  for (const p of view.problems) lines.fail(`bad run record: ${p}`);
  if (lines.failed) return judged(lines, {});
  let workers = 0;
  let maxRatio = 0;
  for (const w of view.workers) {
    const bad = unusable(w, FIELDS);
    for (const l of bad) lines.fail(l);
    if (bad.length > 0) continue;
    if (w.iterations === 0) {
      lines.note(`${w.name}: no iterations, migration ratio not judged`);
      continue;
    }
    workers++;
    const ratio = w.migrations / w.iterations;
    maxRatio = Math.max(maxRatio, ratio);
    if (ratio > t.migration.maxMigrationRatio) {
      lines.fail(
        `${w.name} ${fmtNum(ratio)} migrations per iteration (${w.migrations} in ${w.iterations}) (max ${trimNum(t.migration.maxMigrationRatio)})`,
      );
    }
  }
  return judged(
    lines,
    { workers, maxMigrationRatio: Number(maxRatio.toPrecision(4)) },
    workers === 0 && !lines.failed ? 'no workers with iterations' : null,
  );
}
