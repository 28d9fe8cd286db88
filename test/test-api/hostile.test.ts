// Guest data is untrusted: NaN, negative and huge numbers, unknown phases, missing fields,
// wrong types, terminal escapes and oversized runs fail a check with a message saying what is
// wrong — judgeRun never throws, stays deterministic, and its output stays bounded.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DEFAULT_THRESHOLDS,
  judgeRun,
  mergeThresholds,
  type AssertResult,
  type CheckName,
} from '../../src/test/checks/index.js';
import { MAX_FAILURES } from '../../src/test/checks/verdict.js';
import type { RunRecord, SchedulerLiveness } from '../../src/test-api/record.js';
import { attached, RunBuilder } from './run-builder.js';

const T = DEFAULT_THRESHOLDS;
const ALL_ON = mergeThresholds({
  benchmark: { enabled: true, minIterationsPerSec: 1, maxWakeP99Us: 1e6, maxCvPct: 100 },
  migration: { enabled: true },
});
const failures = (r: AssertResult, name: CheckName): string[] => r.checks.find((c) => c.check === name)!.failures;
const fair = () => new RunBuilder().workers('a', 2, { ns: 5e9 }).workers('b', 2, { ns: 5e9 });
const asRun = (v: unknown) => v as RunRecord;

test('a record that is not a run fails every worker check, liveness judged on its own', () => {
  const r = judgeRun(asRun(null), attached(), ALL_ON);
  assert.not.ok(r.passed);
  for (const c of ['starvation', 'gaps', 'fairness', 'isolation', 'benchmark', 'migration'] as const) {
    assert.equal(failures(r, c), [`${c}: bad run record: the run record is null, not an object`]);
  }
  assert.ok(r.checks.find((c) => c.check === 'liveness')!.passed);
  const noPhases = fair().build();
  (noPhases as unknown as Record<string, unknown>).phases = 'x';
  assert.equal(failures(judgeRun(noPhases, attached(), T), 'gaps'), [
    'gaps: bad run record: phases is "x", not a list',
  ]);
  const late = fair().build();
  late.phases.push({ phase: 2, label: 'add c', atMs: 20_000 });
  assert.equal(failures(judgeRun(late, attached(), T), 'isolation'), [
    "isolation: bad run record: phase 2 starts at 20000 ms, after the run's end (10000 ms)",
  ]);
  const gap = fair().build();
  gap.phases[0].phase = 3;
  assert.equal(failures(judgeRun(gap, attached(), T), 'starvation'), [
    'starvation: bad run record: phases are not numbered 1..1 (found phase 3 at position 1)',
  ]);
  const many = fair().build();
  many.phases = Array.from({ length: 1001 }, (_, i) => ({ phase: i + 1, label: 'x', atMs: i }));
  assert.equal(failures(judgeRun(many, attached(), T), 'gaps'), [
    'gaps: bad run record: the run has 1001 phases (at most 1000)',
  ]);
  const dur = fair().build();
  dur.durationMs = -1;
  assert.equal(failures(judgeRun(dur, attached(), T), 'fairness'), ['fairness: bad run record: durationMs is -1']);
});

test('bad worker fields fail the checks that need them, naming worker and field', () => {
  const run = fair().build();
  run.workers[0].phases[0].cpus[0].ns = NaN;
  run.workers[1].iterations = -5;
  run.workers[2].maxGapNs = 1e300;
  run.workers[3].allowed = [{ phase: 9, cpus: [0] }];
  const r = judgeRun(run, attached(), T);
  assert.equal(failures(r, 'starvation'), [
    'starvation: worker 0 (cg a, spin): unusable report: phase 1 cpus has an unusable entry (cpu 0, ns NaN)',
    'starvation: worker 1 (cg a, spin): unusable report: iterations is -5 (want a number from 0 to 1e15)',
    'starvation: worker 3 (cg b, spin): unusable report: allowed CPUs reported for unknown phase 9',
  ]);
  assert.equal(failures(r, 'gaps'), [
    'gaps: worker 2 (cg b, spin): unusable report: maxGapNs is 1e+300 (want a number from 0 to 1e15 ns)',
  ]);
  assert.equal(failures(r, 'isolation'), [
    'isolation: worker 0 (cg a, spin): unusable report: phase 1 cpus has an unusable entry (cpu 0, ns NaN)',
    'isolation: worker 3 (cg b, spin): unusable report: allowed CPUs reported for unknown phase 9',
  ]);
  // The other workers are still judged.
  assert.is(r.checks.find((c) => c.check === 'gaps')!.figures.workers, 3);
});

test('missing fields, unknown phases and types, duplicate indexes, bad cgroups', () => {
  const run = fair().build();
  const w = run.workers as unknown as Record<string, unknown>[];
  delete w[0].allowed;
  w[1].work = 'bogus';
  (w[2].phases as { phase: number }[])[0].phase = 7;
  w[3].index = 0;
  run.cgroups[1].weight = -3;
  const r = judgeRun(run, attached(), T);
  assert.equal(failures(r, 'fairness'), [
    'fairness: worker 0 (cg a, spin): unusable report: allowed is missing, not a list',
    'fairness: worker 1 (cg a, ?): unusable report: work is "bogus", not a known work type',
    'fairness: worker 2 (cg b, spin): unusable report: usage reported for unknown phase 7',
    'fairness: worker 0 (cg b, spin): unusable report: index 0 is used by two workers',
    'fairness: cg b: unusable record: cpu.weight is -3 (want 1 to 10000)',
  ]);
  const stop = fair().build();
  stop.workers[0].stopPhase = 4;
  assert.equal(failures(judgeRun(stop, attached(), T), 'starvation'), [
    'starvation: worker 0 (cg a, spin): unusable report: stopPhase is 4, not a phase from startPhase 1 on',
  ]);
});

test('guest text cannot drive the terminal or run long', () => {
  const run = fair().build();
  run.workers[0].error = `\x1b[2J\x9b31mboom\nsecond line ${'x'.repeat(500)}`;
  run.workers[1].cgroup = 'a\rb';
  const lines = failures(judgeRun(run, attached(), T), 'starvation');
  assert.ok(
    lines[0].startsWith('starvation: worker 0 (cg a, spin) failed in the guest: ^[[2J\\x9b31mboom second line xxx'),
    lines[0],
  );
  assert.ok(lines[0].length < 300, `${lines[0].length}`);
  assert.not.match(lines.join(''), /[\x00-\x1f\x7f-\x9f]/);
  const crash: SchedulerLiveness = {
    ...attached('scx_\x1bevil'),
    stateAtEnd: 'disabled',
    processAlive: false,
    exit: { kind: 1024, reason: 'runtime error', message: 'bad\x07' },
  };
  assert.equal(failures(judgeRun(run, crash, T), 'liveness'), [
    'liveness: scheduler scx_^[evil crashed (error exit, kind 1024 ERROR): runtime error: bad^G',
  ]);
});

test('hostile liveness records', () => {
  const run = fair().build();
  const live = (l: unknown) => failures(judgeRun(run, l as SchedulerLiveness, T), 'liveness');
  assert.equal(live('nope'), ['liveness: no usable scheduler liveness record (string)']);
  assert.equal(live({ ...attached(), stateAtEnd: 'disabled', exit: { kind: NaN } }), [
    'liveness: scheduler scx_ktstr died for an unknown reason (state disabled, unreadable exit info)',
  ]);
  assert.equal(live({ ...attached(), processAlive: undefined }), [
    'liveness: scheduler scx_ktstr: unusable liveness record (detachedOnPurpose, processAlive or stateAtEnd missing)',
  ]);
  assert.equal(live({ ...attached(), name: 5 }), ['liveness: scheduler name is number, not a string']);
  assert.equal(live({ ...attached(), exit: { kind: 7, reason: 'odd', message: 'odd' } }), [
    'liveness: scheduler scx_ktstr exited cleanly (kind 7): odd',
  ]);
});

test('output stays bounded on a huge run', () => {
  const b = new RunBuilder({ cpus: 2 }).workers('a', 2000, { allowed: [0], perCpu: [[{ cpu: 1, ns: 1e6 }]] });
  const r = judgeRun(b.build(), attached(), T);
  const iso = failures(r, 'isolation');
  assert.is(iso.length, MAX_FAILURES);
  assert.is(iso[MAX_FAILURES - 1], `isolation: ... and ${2000 - (MAX_FAILURES - 1)} more failures`);
  assert.ok(r.notes.length <= 8 * 101);
});

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const NASTY: unknown[] = [
  NaN,
  -1,
  1e300,
  Infinity,
  null,
  undefined,
  'x',
  [],
  {},
  true,
  0,
  2 ** 53,
  -0.5,
  [{}],
  [{ phase: 1, cpus: [1e9] }],
];

/** Every path to a leaf of a JSON-like value. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

test('fuzz: any field replaced by garbage — no throw, lines well formed, same answer twice', () => {
  const base = new RunBuilder({
    phases: [
      ['start', 0],
      ['resize b to 0-1', 5000],
    ],
  })
    .cgroup('b', { weight: 200, max: { quotaUs: 50_000, periodUs: 100_000 } })
    .workers('a', 2, {
      allowed: [
        [0, 1, 2, 3],
        [2, 3],
      ],
    })
    .workers('b', 2, {
      allowed: [
        [0, 1, 2, 3],
        [0, 1],
      ],
      wakeP99Ns: 1e5,
    })
    .build();
  const all = paths(base).filter((p) => p.length > 0);
  const rand = rng(42);
  for (let i = 0; i < 400; i++) {
    const run = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
    for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) {
      const p = all[Math.floor(rand() * all.length)];
      let o = run as Record<string | number, unknown>;
      for (const key of p.slice(0, -1)) {
        const next = o?.[key];
        if (typeof next !== 'object' || next === null) {
          o = undefined as never;
          break;
        }
        o = next as Record<string | number, unknown>;
      }
      if (o) o[p[p.length - 1]] = NASTY[Math.floor(rand() * NASTY.length)];
    }
    const judge = () => judgeRun(run as unknown as RunRecord, attached(), ALL_ON);
    let r: AssertResult;
    try {
      r = judge();
    } catch (e) {
      throw new Error(`judgeRun threw on case ${i}: ${(e as Error).stack}\n${JSON.stringify(run)}`);
    }
    assert.equal(judge(), r, `deterministic, case ${i}`);
    for (const c of r.checks) {
      for (const l of c.failures) {
        assert.ok(l.startsWith(`${c.check}: `), l);
        assert.not.ok(l.includes('internal error'), `case ${i}: ${l}`);
        assert.not.ok(/undefined|\[object/.test(l.replace(/is undefined|value undefined/g, '')), `case ${i}: ${l}`);
      }
      assert.is(c.passed, c.failures.length === 0);
      for (const v of Object.values(c.figures)) assert.ok(Number.isFinite(v), `${c.check} figure ${v}`);
    }
  }
});

test.run();
