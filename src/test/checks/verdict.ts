// The shape of a judgement: one CheckVerdict per check (passed, skipped with a reason, one
// line per failure, a few figures), an AssertResult per run, and the merge of several runs'
// results into one for the test. Failure lines per check are capped so that a hostile or
// very large run cannot produce unbounded output.

import type { Thresholds } from '../../test-api/thresholds.js';

export type CheckName =
  'starvation' | 'gaps' | 'fairness' | 'isolation' | 'benchmark' | 'migration' | 'liveness' | 'stall' | 'temporal';
export const CHECK_NAMES: readonly CheckName[] = [
  'starvation',
  'gaps',
  'fairness',
  'isolation',
  'benchmark',
  'migration',
  'liveness',
  'stall',
  'temporal',
];

export interface CheckVerdict {
  check: CheckName;
  /** False when any failure line was written. A skipped check passes. */
  passed: boolean;
  /** Why the check judged nothing (off, nothing comparable); null when it judged. */
  skipped: string | null;
  /** One line each: `<check>: <what> <measured> (<threshold>) [phase N: label]`. */
  failures: string[];
  /** Numbers behind the verdict (counts; `max*`/`min*` extremes seen). */
  figures: Record<string, number>;
}

export interface AssertResult {
  passed: boolean;
  checks: CheckVerdict[];
  /** Context that is not a failure: what was left out of a check and why. */
  notes: string[];
  thresholds: Thresholds;
}

/** Failure lines kept per check; past it one line says how many more there were. */
export const MAX_FAILURES = 50;
/** Notes kept per result. */
export const MAX_NOTES = 100;

/** Collects the lines of one check, bounded. */
export class Lines {
  readonly failures: string[] = [];
  readonly notes: string[] = [];
  private dropped = 0;
  private droppedNotes = 0;
  constructor(readonly check: CheckName) {}
  fail(line: string): void {
    if (this.failures.length < MAX_FAILURES - 1) this.failures.push(`${this.check}: ${line}`);
    else this.dropped++;
  }
  note(line: string): void {
    if (this.notes.length < MAX_NOTES) this.notes.push(`${this.check}: ${line}`);
    else this.droppedNotes++;
  }
  get failed(): boolean {
    return this.failures.length > 0;
  }
  /** The verdict: skipped (with `skipReason`) only when nothing failed. */
  verdict(figures: Record<string, number>, skipReason: string | null = null): CheckVerdict {
    const failures = [...this.failures];
    if (this.dropped > 0)
      failures.push(`${this.check}: ... and ${this.dropped} more failure${this.dropped === 1 ? '' : 's'}`);
    const failed = failures.length > 0;
    return { check: this.check, passed: !failed, skipped: failed ? null : skipReason, failures, figures };
  }
  allNotes(): string[] {
    return this.droppedNotes > 0
      ? [...this.notes, `${this.check}: ... and ${this.droppedNotes} more notes`]
      : [...this.notes];
  }
}

/** A check that did not run. */
export function skippedVerdict(check: CheckName, reason: string): CheckVerdict {
  return { check, passed: true, skipped: reason, failures: [], figures: {} };
}

/** An AssertResult from verdicts (e.g. temporal ones made in a test body), to merge with a run's. */
export function resultOf(checks: CheckVerdict[], thresholds: Thresholds, notes: string[] = []): AssertResult {
  return { passed: checks.every((c) => c.passed), checks, notes, thresholds };
}

function mergeFigures(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) {
    const have = into[k];
    if (have === undefined) into[k] = v;
    else if (k.startsWith('max')) into[k] = Math.max(have, v);
    else if (k.startsWith('min')) into[k] = Math.min(have, v);
    else into[k] = have + v;
  }
}

/**
 * Several runs of one test as one result: one verdict per check name (in the order first
 * seen), failing when any run's failed, skipped only when every run's was (its first reason);
 * failures and notes in run order; figures summed, except `max*` (largest) and `min*`
 * (smallest). Thresholds are the first result's (a test's runs share them).
 */
export function mergeResults(results: AssertResult[]): AssertResult {
  if (results.length === 0) throw new Error('mergeResults: no results to merge');
  const byName = new Map<CheckName, CheckVerdict>();
  for (const r of results) {
    for (const c of r.checks) {
      const have = byName.get(c.check);
      if (!have) {
        byName.set(c.check, { ...c, failures: [...c.failures], figures: { ...c.figures } });
        continue;
      }
      have.failures.push(...c.failures);
      have.passed = have.passed && c.passed;
      if (!have.passed) have.skipped = null;
      else if (have.skipped !== null && c.skipped === null) have.skipped = null;
      mergeFigures(have.figures, c.figures);
    }
  }
  const checks = [...byName.values()];
  const notes = [...new Set(results.flatMap((r) => r.notes))];
  return {
    passed: results.every((r) => r.passed) && checks.every((c) => c.passed),
    checks,
    notes,
    thresholds: results[0].thresholds,
  };
}

/** What one check of a run gives: its verdict and its notes. */
export interface Judged {
  verdict: CheckVerdict;
  notes: string[];
}

/** A Judged from the lines collected. */
export function judged(lines: Lines, figures: Record<string, number>, skipReason: string | null = null): Judged {
  return { verdict: lines.verdict(figures, skipReason), notes: lines.allNotes() };
}
