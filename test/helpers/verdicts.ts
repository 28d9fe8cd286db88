// Test helper: a cell's or a test's verdict as one comparable line -- what must not change
// whether its VM booted cold or was restored from a snapshot (issue 17, acceptance 4): pass or
// fail, the failure's kind, which checks failed, and for a sweep cell the programs the host
// read with their verified instruction counts (the verifier is deterministic: a restored guest
// must verify the same scheduler to the same count).

import type { CellResult } from '../../src/cell/result.js';
import type { TestResult } from '../../src/test/judge.js';

export function cellVerdict(c: CellResult): string {
  const programs = c.programs
    .map((p) => `${p.name}:${p.verifiedInsns}`)
    .sort()
    .join(' ');
  return `${c.passed ? 'pass' : `fail ${c.failure?.kind}`} [${programs}]`;
}

/** The checks a test failed, sorted. */
export function failedChecks(t: TestResult): string[] {
  return (t.assert?.checks ?? [])
    .filter((c) => !c.passed)
    .map((c) => c.check)
    .sort();
}

/** Pass or fail, and the failure's kind. */
export function testOutcome(t: TestResult): string {
  return `${t.status}${t.failure === undefined ? '' : ` ${t.failure.kind}`}`;
}

/** The outcome and which checks failed. */
export function testVerdict(t: TestResult): string {
  const failed = failedChecks(t);
  return `${testOutcome(t)}${failed.length > 0 ? ` checks ${failed.join(',')}` : ''}`;
}

/** Lines naming every id whose verdict differs between `a` and `b` (or is missing from one). */
export function verdictDifferences(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const id of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(id) !== b.get(id)) out.push(`${id}: ${a.get(id) ?? '(missing)'} vs ${b.get(id) ?? '(missing)'}`);
  }
  return out;
}
