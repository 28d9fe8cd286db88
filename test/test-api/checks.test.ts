// The checks of a run, each on a fair run (passes) and on a crafted bad one (fails with the
// exact line a person reads: worker, cgroup, phase label, value, threshold): starvation,
// gaps, isolation per phase across a resize, fairness within and between cgroups and by
// cpu.weight (1:2:4), benchmark and migration (opt-in), liveness's three kinds of death,
// and the merge of several runs.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DEFAULT_THRESHOLDS,
  judgeRun,
  mergeResults,
  mergeThresholds,
  type AssertResult,
  type CheckName,
  type CheckVerdict,
} from '../../src/test/checks/index.js';
import type { SchedulerLiveness } from '../../src/test-api/record.js';
import { attached, EEVDF, range, RunBuilder } from './run-builder.js';

const check = (r: AssertResult, name: CheckName): CheckVerdict => {
  const c = r.checks.find((x) => x.check === name);
  if (!c) throw new Error(`no ${name} verdict`);
  return c;
};
const T = DEFAULT_THRESHOLDS;

/** Two cgroups of four spinners on four CPUs, 10 s: everyone gets half a CPU. */
const fairRun = () => new RunBuilder().workers('a', 4, { ns: 5e9 }).workers('b', 4, { ns: 5e9 });

test('a fair run passes every default check; opt-in checks are skipped with the reason', () => {
  const r = judgeRun(fairRun().build(), attached(), T);
  assert.ok(r.passed, JSON.stringify(r, null, 1));
  assert.equal(
    r.checks.map((c) => c.check),
    ['starvation', 'gaps', 'fairness', 'isolation', 'benchmark', 'migration', 'liveness'],
  );
  for (const name of ['starvation', 'gaps', 'fairness', 'isolation', 'liveness'] as const)
    assert.is(check(r, name).skipped, null, name);
  assert.is(check(r, 'benchmark').skipped, 'off (opt-in: benchmark.enabled)');
  assert.is(check(r, 'migration').skipped, 'off (opt-in: migration.enabled)');
  assert.equal(check(r, 'starvation').figures, { workers: 8, phases: 1, minShare: 1 });
  assert.is(check(r, 'fairness').figures.comparisons, 3);
  assert.is(r.thresholds, T);
});

test('starvation: a worker below a tenth of its fair share, one that did nothing, one with an error', () => {
  const run = fairRun().build();
  run.workers[3].phases[0].cpus = [{ cpu: 2, ns: 200e6 }];
  run.workers[5].iterations = 0;
  run.workers[6].error = 'sched_setattr: Invalid argument';
  const v = check(judgeRun(run, attached(), T), 'starvation');
  assert.not.ok(v.passed);
  assert.equal(v.failures, [
    'starvation: worker 5 (cg b, spin) did no work (0 iterations in 10.0 s)',
    'starvation: worker 6 (cg b, spin) failed in the guest: sched_setattr: Invalid argument',
    'starvation: worker 3 (cg a, spin) got 200 ms of CPU, 0.04 of its fair share 5.00 s (min 0.1) [phase 1: start]',
  ]);
});

test('starvation: fair share follows allowed CPUs per phase, cpu.max, and leaves sleepers alone', () => {
  // Phase 2 squeezes b's two workers onto CPU 0 with a's two: each gets 1/4 of CPU 0 there.
  const b = new RunBuilder({
    phases: [
      ['start', 0],
      ['resize b to 0', 5000],
    ],
  })
    .workers('a', 2, { allowed: [range(0, 3), [0]], ns: [5e9, 1.25e9] })
    .workers('b', 2, { allowed: [range(0, 3), [0]], ns: [5e9, 0.2e9] })
    .worker('c', { work: 'sleepy', ns: 1e6 });
  const r = judgeRun(b.build(), attached(), T);
  assert.equal(check(r, 'starvation').failures, []);
  const strict = judgeRun(b.build(), attached(), mergeThresholds({ starvation: { minShare: 0.5 } }));
  assert.equal(check(strict, 'starvation').failures, [
    'starvation: worker 2 (cg b, spin) got 200 ms of CPU, 0.16 of its fair share 1.25 s (min 0.5) [phase 2: resize b to 0]',
    'starvation: worker 3 (cg b, spin) got 200 ms of CPU, 0.16 of its fair share 1.25 s (min 0.5) [phase 2: resize b to 0]',
  ]);
  // A cgroup capped at 5 % of a CPU: its worker's fair share is 5 % of the phase.
  const capped = new RunBuilder()
    .cgroup('q', { max: { quotaUs: 5000, periodUs: 100000 } })
    .worker('q', { ns: 0.45e9 })
    .build();
  assert.ok(judgeRun(capped, attached(), T).passed);
});

test('gaps: the line names the worker, the gap, when, the limit and the phase it fell in', () => {
  const b = new RunBuilder({
    phases: [
      ['start', 0],
      ['resize b to 0-1', 4000],
    ],
  })
    .workers('a', 4, { allowed: [range(0, 3), range(0, 3)] })
    .workers('b', 4, { allowed: [range(0, 3), [0, 1]] });
  assert.ok(check(judgeRun(b.build(), attached(), T), 'gaps').passed);
  const run = b.build();
  run.workers[7].maxGapNs = 3.41e9;
  run.workers[7].maxGapAtNs = 5.2e9;
  const v = check(judgeRun(run, attached(), T), 'gaps');
  assert.equal(v.failures, [
    'gaps: worker 7 (cg b, spin) off-CPU 3.41 s at t=5.2s while runnable (max 2 s) [phase 2: resize b to 0-1]',
  ]);
  assert.is(v.figures.maxGapMs, 3410);
  assert.ok(check(judgeRun(run, attached(), mergeThresholds({ gaps: { maxGapMs: 4000 } })), 'gaps').passed);
});

test("isolation: judged per phase against that phase's allowed CPUs, across a resize", () => {
  const b = new RunBuilder({
    cpus: 8,
    phases: [
      ['start', 0],
      ['resize a to 0-3', 5000],
    ],
  })
    .workers('a', 4, { allowed: [range(0, 7), range(0, 3)] })
    .workers('b', 4, { allowed: [range(4, 7), range(4, 7)] });
  assert.ok(check(judgeRun(b.build(), attached(), T), 'isolation').passed);
  const run = b.build();
  // CPU 5 was fine for worker 3 in phase 1; in phase 2 it is outside a's 0-3.
  run.workers[3].phases[1].cpus = [
    { cpu: 0, ns: 2e9 },
    { cpu: 5, ns: 12e6 },
  ];
  const v = check(judgeRun(run, attached(), T), 'isolation');
  assert.equal(v.failures, [
    'isolation: worker 3 (cg a, spin) ran on CPU 5 (12.0 ms) outside 0-3 [phase 2: resize a to 0-3]',
  ]);
  assert.is(v.figures.outsideMs, 12);
  run.workers[6].phases[0].cpus.push({ cpu: 0, ns: 1.5e9 }, { cpu: 1, ns: 2e6 });
  assert.equal(check(judgeRun(run, attached(), T), 'isolation').failures.slice(1), [
    'isolation: worker 6 (cg b, spin) ran on CPU 0 (1.50 s) outside 4-7 [phase 1: start]',
    'isolation: worker 6 (cg b, spin) ran on CPU 1 (2.00 ms) outside 4-7 [phase 1: start]',
  ]);
});

test('fairness: spread within a cgroup', () => {
  const run = new RunBuilder().workers('a', 4, { ns: 5e9 }).build();
  run.workers[3].phases[0].cpus = [{ cpu: 3, ns: 4e9 }];
  run.workers[3].cpuTimeNs = 4e9; // one phase: judged on the kernel's CPU time
  const v = check(judgeRun(run, attached(), T), 'fairness');
  assert.equal(v.failures, [
    'fairness: cg a: CPU time spread 20.0% across 4 spin workers on 0-3 (worker 0 5.00 s, worker 3 4.00 s) (max 15%) [phase 1: start]',
  ]);
  assert.ok(check(judgeRun(run, attached(), mergeThresholds({ fairness: { maxSpreadPct: 25 } })), 'fairness').passed);
});

test('fairness: cgroups of equal weight, workers and CPUs get the same', () => {
  const run = new RunBuilder().workers('a', 2, { ns: 8e9 }).workers('b', 2, { ns: 4.8e9 }).build();
  assert.equal(check(judgeRun(run, attached(), T), 'fairness').failures, [
    'fairness: cgroups a, b (weight 100, 2 spin workers each on 0-3): CPU time spread 40.0% (a 16.0 s, b 9.60 s) (max 15%) [phase 1: start]',
  ]);
});

test('fairness: cpu.weight 1:2:4 on the same CPUs passes within tolerance, fails when CPU time is equal', () => {
  const weighted = (ns: [number, number, number]) =>
    new RunBuilder()
      .cgroup('a', { weight: 100 })
      .cgroup('b', { weight: 200 })
      .cgroup('c', { weight: 400 })
      .workers('a', 4, { ns: ns[0] })
      .workers('b', 4, { ns: ns[1] })
      .workers('c', 4, { ns: ns[2] })
      .build();
  const ok = judgeRun(weighted([1.5e9, 2.7e9, 5.8e9]), attached(), T);
  assert.ok(ok.passed, JSON.stringify(ok.checks));
  assert.is(check(ok, 'fairness').figures.maxWeightDeviationPct, 5.5);
  const equal = check(judgeRun(weighted([10e9 / 3, 10e9 / 3, 10e9 / 3]), attached(), T), 'fairness');
  assert.equal(equal.failures, [
    'fairness: cg a (weight 100) got 33.3% of the CPU time of cgroups a, b, c on 0-3, 14.3% expected by weight (off by 133.3%, max 25%) [phase 1: start]',
    'fairness: cg c (weight 400) got 33.3% of the CPU time of cgroups a, b, c on 0-3, 57.1% expected by weight (off by 41.7%, max 25%) [phase 1: start]',
  ]);
  // Equal weights but CPU time 1:2:4: the spread between cgroups fails instead.
  const run = weighted([1.5e9, 2.7e9, 5.8e9]);
  run.cgroups.forEach((c) => {
    c.weight = null;
  });
  assert.equal(check(judgeRun(run, attached(), T), 'fairness').failures, [
    'fairness: cgroups a, b, c (weight 100, 4 spin workers each on 0-3): CPU time spread 74.1% (c 23.2 s, a 6.00 s) (max 15%) [phase 1: start]',
  ]);
});

test('fairness: weights on CPUs that are not oversubscribed are not in play; nothing comparable is a skip', () => {
  const run = new RunBuilder()
    .cgroup('a', { weight: 100 })
    .cgroup('b', { weight: 400 })
    .worker('a', { ns: 10e9 })
    .worker('b', { ns: 10e9 })
    .build();
  const r = judgeRun(run, attached(), T);
  assert.ok(check(r, 'fairness').passed);
  assert.ok(
    r.notes.includes('fairness: cgroups a, b on 0-3 [phase 1: start]: CPUs not oversubscribed, weights not in play'),
    r.notes.join('\n'),
  );
  const lone = judgeRun(new RunBuilder().worker('a').worker('b', { work: 'sleepy', ns: 1e6 }).build(), attached(), T);
  assert.match(check(lone, 'fairness').skipped ?? '', /^nothing comparable/);
  assert.ok(lone.notes.includes('fairness: not compared (work types that sleep on purpose): worker 1'));
});

test('fairness: nested cgroups are compared with their siblings, not with their parent', () => {
  const run = new RunBuilder()
    .workers('p', 2, { ns: 1e9 })
    .workers('p/x', 2, { ns: 4e9 })
    .workers('p/y', 2, { ns: 2e9 })
    .build();
  assert.equal(check(judgeRun(run, attached(), T), 'fairness').failures, [
    'fairness: cgroups p/x, p/y (weight 100, 2 spin workers each on 0-3): CPU time spread 50.0% (p/x 8.00 s, p/y 4.00 s) (max 15%) [phase 1: start]',
  ]);
  const stray = new RunBuilder().workers('a', 2, { ns: 4e9 }).build();
  stray.workers[1].cgroup = 'ghost';
  const r = judgeRun(stray, attached(), T);
  assert.ok(
    r.notes.includes("fairness: cg ghost [phase 1: start]: not among the run's cgroups, not compared with others"),
    r.notes.join('\n'),
  );
});

test('benchmark: each bound, only when set', () => {
  const run = new RunBuilder()
    .workers('a', 2, { ns: 5e9 })
    .worker('b', { work: 'pingpong', ns: 1e9, wakeP99Ns: 3.2e6 })
    .build();
  run.workers[1].iterations = 3e6;
  const on = (b: object) => judgeRun(run, attached(), mergeThresholds({ benchmark: { enabled: true, ...b } }));
  assert.is(check(on({}), 'benchmark').skipped, 'no bound set (minIterationsPerSec, maxWakeP99Us, maxCvPct)');
  assert.equal(check(on({ minIterationsPerSec: 400_000 }), 'benchmark').failures, [
    'benchmark: worker 1 (cg a, spin) 300000 iterations/s (min 400000)',
    'benchmark: worker 2 (cg b, pingpong) 100000 iterations/s (min 400000)',
  ]);
  assert.equal(check(on({ maxWakeP99Us: 500 }), 'benchmark').failures, [
    'benchmark: worker 2 (cg b, pingpong) wake-up latency p99 3.20 ms over 1000 wake-ups (max 500 µs)',
  ]);
  assert.equal(check(on({ maxCvPct: 10 }), 'benchmark').failures, [
    'benchmark: cg a: iteration rate CV 25.0% across 2 spin workers (max 10%)',
  ]);
  assert.ok(check(on({ minIterationsPerSec: 1000, maxWakeP99Us: 5000, maxCvPct: 30 }), 'benchmark').passed);
});

test('migration: migrations per iteration', () => {
  const run = new RunBuilder()
    .worker('a', { ns: 5e6, migrations: 1250 })
    .worker('a', { ns: 5e6, migrations: 10 })
    .build();
  assert.ok(check(judgeRun(run, attached(), T), 'migration').skipped);
  const v = check(judgeRun(run, attached(), mergeThresholds({ migration: { enabled: true } })), 'migration');
  assert.equal(v.failures, [
    'migration: worker 0 (cg a, spin) 0.250 migrations per iteration (1250 in 5000) (max 0.05)',
  ]);
  assert.is(v.figures.maxMigrationRatio, 0.25);
});

test('liveness: crashed, exited cleanly, died for an unknown reason; EEVDF and detaching on purpose pass', () => {
  const run = fairRun().build();
  const live = (l: Partial<SchedulerLiveness>) => check(judgeRun(run, { ...attached(), ...l }, T), 'liveness');
  const gone = { stateAtEnd: 'disabled', processAlive: false };
  assert.ok(live({}).passed);
  assert.equal(
    live({ ...gone, exit: { kind: 1025, reason: 'scx_bpf_error', message: 'dispatch: invalid DSQ 0x42' } }).failures,
    [
      'liveness: scheduler scx_ktstr crashed (error exit, kind 1025 ERROR_BPF): scx_bpf_error: dispatch: invalid DSQ 0x42',
    ],
  );
  assert.equal(
    live({
      ...gone,
      exit: { kind: 1026, reason: 'runnable task stall', message: 'ktstr-worker[212] failed to run for 5.2s' },
    }).failures,
    [
      'liveness: scheduler scx_ktstr crashed (error exit, kind 1026 ERROR_STALL): runnable task stall: ktstr-worker[212] failed to run for 5.2s',
    ],
  );
  assert.equal(
    live({ ...gone, exit: { kind: 64, reason: 'Scheduler unregistered from user space', message: '' } }).failures,
    ['liveness: scheduler scx_ktstr exited cleanly (kind 64 UNREG): Scheduler unregistered from user space'],
  );
  assert.equal(live(gone).failures, [
    'liveness: scheduler scx_ktstr died for an unknown reason (state disabled, process gone, no exit info)',
  ]);
  assert.equal(live({ processAlive: false }).failures, [
    'liveness: scheduler scx_ktstr died for an unknown reason (state enabled, process gone, no exit info)',
  ]);
  assert.equal(live({ exit: { kind: 65, reason: 'Scheduler unregistered from BPF', message: '' } }).figures, {
    crashed: 0,
    exited: 1,
    unknown: 0,
  });
  assert.ok(live({ ...gone, exit: { kind: 64, reason: 'x', message: '' }, detachedOnPurpose: true }).passed);
  const eevdf = judgeRun(run, EEVDF, T);
  assert.ok(check(eevdf, 'liveness').passed);
  assert.ok(eevdf.notes.includes('liveness: EEVDF (no sched_ext scheduler): nothing to judge'));
});

test('checks turned off are skipped with the key that turns them on', () => {
  const run = fairRun().build();
  run.workers[0].maxGapNs = 9e9;
  const r = judgeRun(run, attached(), mergeThresholds({ gaps: { enabled: false }, liveness: { enabled: false } }));
  assert.ok(r.passed);
  assert.is(check(r, 'gaps').skipped, 'off (gaps.enabled = false)');
  assert.is(check(r, 'liveness').skipped, 'off (liveness.enabled = false)');
});

test('mergeResults: several runs of a test as one verdict per check', () => {
  const good = judgeRun(fairRun().build(), attached(), T);
  const badRun = fairRun().build();
  badRun.workers[2].maxGapNs = 2.5e9;
  const bad = judgeRun(badRun, attached(), T);
  const m = mergeResults([good, bad]);
  assert.not.ok(m.passed);
  assert.is(m.checks.length, 7);
  const g = check(m, 'gaps');
  assert.equal(g.failures, [
    'gaps: worker 2 (cg a, spin) off-CPU 2.50 s at t=1.0s while runnable (max 2 s) [phase 1: start]',
  ]);
  assert.equal(g.figures, { workers: 16, maxGapMs: 2500 });
  assert.is(check(m, 'benchmark').skipped, 'off (opt-in: benchmark.enabled)');
  assert.ok(mergeResults([good, good]).passed);
  assert.throws(() => mergeResults([]), /no results/);
});

test.run();
