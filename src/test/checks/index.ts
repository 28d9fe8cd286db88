// The checks of a scheduler test, judged on the host from a RunRecord and the scheduler's
// liveness: starvation, gaps, fairness, isolation (on by default), benchmark and migration
// (opt-in), liveness; temporal assertions over sample series for test bodies. judgeRun never
// throws on the record: what it cannot read fails a check with a message saying so.
// docs/checks.md describes every check, threshold and failure line.

import type { RunRecord, SchedulerLiveness } from '../../test-api/record.js';
import { benchmark } from './benchmark.js';
import { fairness } from './fairness.js';
import { gaps } from './gaps.js';
import { isolation } from './isolation.js';
import { liveness } from './liveness.js';
import { migration } from './migration.js';
import { starvation } from './starvation.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { skippedVerdict, type AssertResult, type CheckName, type Judged } from './verdict.js';
import { viewRun, type RunView } from './view.js';

export {
  DEFAULT_THRESHOLDS,
  mergeThresholds,
  type DeepPartial,
  type ThresholdOverrides,
  type Thresholds,
} from '../../test-api/thresholds.js';
export {
  CHECK_NAMES,
  mergeResults,
  resultOf,
  type AssertResult,
  type CheckName,
  type CheckVerdict,
} from './verdict.js';
export { temporal, type Sample } from './temporal.js';
export { SCX_EXIT_KINDS, SCX_EXIT_ERROR } from './liveness.js';
export { stall, longestWaits } from './stall.js';

type RunCheck = (view: RunView, t: Thresholds) => Judged;
const RUN_CHECKS: [CheckName, RunCheck][] = [
  ['starvation', starvation],
  ['gaps', gaps],
  ['fairness', fairness],
  ['isolation', isolation],
  ['benchmark', benchmark],
  ['migration', migration],
];
const SWITCHED: Record<string, (t: Thresholds) => boolean> = {
  starvation: (t) => t.starvation.enabled,
  gaps: (t) => t.gaps.enabled,
  fairness: (t) => t.fairness.enabled,
  isolation: (t) => t.isolation.enabled,
};

/** A check that threw (a bug, or thresholds not made by mergeThresholds) fails instead of throwing. */
function safely(check: CheckName, f: () => Judged): Judged {
  try {
    return f();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return {
      verdict: {
        check,
        passed: false,
        skipped: null,
        failures: [`${check}: internal error while judging: ${msg}`],
        figures: {},
      },
      notes: [],
    };
  }
}

/** Judges one run: every check (off ones skipped with a reason), the scheduler's liveness, notes. */
export function judgeRun(run: RunRecord, schedLiveness: SchedulerLiveness, t: Thresholds): AssertResult {
  let view: RunView;
  try {
    view = viewRun(run);
  } catch (e) {
    view = viewRun(null);
    view.problems = [`unreadable (${e instanceof Error ? e.message : String(e)})`];
  }
  const results: Judged[] = RUN_CHECKS.map(([name, f]) =>
    safely(name, () => {
      const on = SWITCHED[name];
      if (on && !on(t)) return { verdict: skippedVerdict(name, `off (${name}.enabled = false)`), notes: [] };
      return f(view, t);
    }),
  );
  results.push(safely('liveness', () => liveness(schedLiveness, t)));
  const checks = results.map((r) => r.verdict);
  const notes = results.flatMap((r) => r.notes);
  return { passed: checks.every((c) => c.passed), checks, notes, thresholds: t };
}
