// judgeTest on synthetic cells: what a person is told for each way a test cell ends — the
// cell engine's failure passed through, a guest hang as the test's timeout, the body's
// exception, a skip, failed checks (the first failure line), the scheduler's liveness at the
// end (its own EXIT line after a clean stop is no failure; a scheduler gone is), bad
// thresholds as setup, and the API's boolean shorthand for a check.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CellResult } from '../../src/cell/result.js';
import type { TestFacts } from '../../src/guest/plan.js';
import { DEFAULT_THRESHOLDS, judgeRun } from '../../src/test/checks/index.js';
import { judgeTest, toOverrides, type JudgeInput } from '../../src/test/judge.js';
import type { RunRecord } from '../../src/test-api/record.js';
import { attached, RunBuilder } from './run-builder.js';

/** Two cgroups of four spinners on four CPUs, 10 s, everyone gets half a CPU. */
const fairRun = (): RunRecord => new RunBuilder().workers('a', 4, { ns: 5e9 }).workers('b', 4, { ns: 5e9 }).build();

const facts = (o: Partial<TestFacts> = {}): TestFacts => ({
  runs: [{ record: fairRun(), checks: null }],
  error: null,
  skipped: null,
  bodyMs: 10_000,
  logs: ['hello'],
  stateAtEnd: 'enabled',
  schedulerAlive: true,
  detachedOnPurpose: false,
  ...o,
});

const cell = (o: Partial<CellResult> = {}): CellResult => ({
  id: 'test/t.ktstr.ts/steady/scx_ktstr/6.12/1n1l4c1t',
  scheduler: 'scx_ktstr',
  kernel: '6.12',
  topology: '1n1l4c1t',
  passed: true,
  schedulerStatus: 'attached (state enabled, ops ktstr)',
  programs: [],
  guestPrograms: [],
  schedulerLog: 'scx_ktstr: started\n',
  workers: [],
  consoleTail: '',
  phases: { boot: 500, body: 10_000 },
  wallMs: 12_345,
  hostRssBytes: null,
  test: facts(),
  ...o,
});

const judge = (c: CellResult, o: Partial<JudgeInput> = {}) =>
  judgeTest({ cell: c, file: 't.ktstr.ts', name: 'steady', scheduler: 'scx_ktstr', timeoutMs: 180_000, ...o });

test("a fair run with the scheduler alive and enabled passes, carrying the cell's and the body's data", () => {
  const c = cell();
  const r = judge(c);
  assert.is(r.status, 'pass', JSON.stringify(r.failure));
  assert.is(r.failure, undefined);
  assert.is(r.id, c.id);
  assert.is(r.file, 't.ktstr.ts');
  assert.is(r.name, 'steady');
  assert.is(r.scheduler, 'scx_ktstr');
  assert.is(r.kernel, '6.12');
  assert.is(r.topology, '1n1l4c1t');
  assert.ok(r.assert !== null && r.assert.passed);
  assert.is(r.runs.length, 1);
  assert.is(r.runs[0], c.test!.runs[0].record);
  assert.equal(r.logs, ['hello']);
  assert.is(r.wallMs, 12_345);
  assert.equal(r.phases, c.phases);
  assert.is(r.error, null);
});

test('EEVDF: the scheduler is named eevdf and liveness has nothing to judge', () => {
  const r = judge(cell({ test: facts({ stateAtEnd: '', schedulerAlive: false }) }), { scheduler: null });
  assert.is(r.scheduler, 'eevdf');
  assert.is(r.status, 'pass', JSON.stringify(r.failure));
});

test('a cell failure is passed through with its kind and message', () => {
  for (const kind of ['verify', 'attach', 'dispatch', 'crash', 'setup'] as const) {
    const r = judge(cell({ passed: false, failure: { kind, message: `${kind} went wrong` } }));
    assert.is(r.status, 'fail');
    assert.equal(r.failure, { kind, message: `${kind} went wrong` });
    assert.is(r.assert, null, 'the checks are not run');
  }
  const g = judge(
    cell({ passed: false, failure: { kind: 'guest', message: 'kernel panic: not syncing' }, consoleTail: 'panic' }),
  );
  assert.equal(g.failure, { kind: 'guest', message: 'kernel panic: not syncing' });
  assert.is(g.consoleTail, 'panic');
});

test("a guest hang is the test's timeout, naming the timeout in seconds; other guest failures stay guest", () => {
  const r = judge(cell({ passed: false, failure: { kind: 'guest', message: 'guest hang: no output for 30 s' } }), {
    timeoutMs: 45_000,
  });
  assert.is(r.status, 'fail');
  assert.is(r.failure?.kind, 'timeout');
  assert.is(r.failure?.message, 'the test did not finish within its timeout (45 s); its VM was ended');
  const notHang = judge(cell({ passed: false, failure: { kind: 'guest', message: 'the guest hang detector fired' } }));
  assert.is(notHang.failure?.kind, 'guest');
  const setupHang = judge(cell({ passed: false, failure: { kind: 'setup', message: 'guest hang' } }));
  assert.is(setupHang.failure?.kind, 'setup', 'only a guest failure is a hang');
});

test('no facts from the guest is a guest failure', () => {
  const r = judge(cell({ test: undefined }));
  assert.equal(r.failure, { kind: 'guest', message: 'the test reported nothing' });
  assert.equal(r.runs, []);
  assert.equal(r.logs, []);
});

test('the body threw: kind body with the first line of its message; the runs it made are still judged', () => {
  const error = {
    message: 'expected 3 workers\n  got 2\n  (details)',
    stack: 'Error: expected 3 workers\n    at body (file:///w/t.ktstr.ts:4:9)',
  };
  const r = judge(cell({ test: facts({ error }) }));
  assert.is(r.status, 'fail');
  assert.equal(r.failure, { kind: 'body', message: 'expected 3 workers' });
  assert.equal(r.error, error);
  assert.ok(r.assert !== null && r.assert.passed);
  // a body error wins over failed checks
  const bad = fairRun();
  bad.workers[0].iterations = 0;
  const both = judge(cell({ test: facts({ error, runs: [{ record: bad, checks: null }] }) }));
  assert.is(both.failure?.kind, 'body');
  assert.ok(both.assert !== null && !both.assert.passed);
});

test('a skip: status skip with the reason, no failure', () => {
  const r = judge(cell({ test: facts({ skipped: 'steadyLlc needs at least 2 LLCs (this VM has 1)', runs: [] }) }));
  assert.is(r.status, 'skip');
  assert.is(r.skipReason, 'steadyLlc needs at least 2 LLCs (this VM has 1)');
  assert.is(r.failure, undefined);
  assert.is(r.assert, null, 'no runs: nothing judged');
});

test('failed checks: kind check, the message is the first failure line of the first failed check', () => {
  const run = fairRun();
  run.workers[5].iterations = 0;
  run.workers[2].maxGapNs = 5e9;
  const r = judge(cell({ test: facts({ runs: [{ record: run, checks: null }] }) }));
  assert.is(r.status, 'fail');
  assert.is(r.failure?.kind, 'check');
  const direct = judgeRun(run, attached(), DEFAULT_THRESHOLDS);
  const first = direct.checks.find((c) => !c.passed)!;
  assert.is(first.check, 'starvation');
  assert.is(r.failure?.message, first.failures[0]);
  assert.match(r.failure!.message, /^starvation: worker 5 \(cg b, spin\) did no work/);
  assert.ok(
    r.assert!.checks.some((c) => c.check === 'gaps' && !c.passed),
    'the gap is judged too',
  );
});

test('two runs: each judged with its own thresholds; one bad run fails the test', () => {
  const bad = fairRun();
  bad.label = 'run 2';
  bad.workers[1].iterations = 0;
  const off = judge(
    cell({
      test: facts({
        runs: [
          { record: fairRun(), checks: null },
          { record: bad, checks: { starvation: false } },
        ],
      }),
    }),
  );
  assert.is(off.status, 'pass', JSON.stringify(off.failure));
  const on = judge(
    cell({
      test: facts({
        runs: [
          { record: fairRun(), checks: { starvation: false } },
          { record: bad, checks: null },
        ],
      }),
    }),
  );
  assert.is(on.status, 'fail');
  assert.match(on.failure!.message, /worker 1 .* did no work/);
});

test("thresholds in three layers: the registry's, the test's (with the boolean shorthand), the run's", () => {
  // worker 3 gets 0.3 of its fair share: passes the default 0.1, fails 0.5 (fairness, which it
  // also breaks, is off in the registry layer throughout)
  const run = fairRun();
  run.workers[3].phases[0].cpus = [{ cpu: 0, ns: 1.5e9 }];
  const c = cell({ test: facts({ runs: [{ record: run, checks: null }] }) });
  const F = { fairness: { enabled: false } };
  assert.is(judge(c).failure?.kind, 'check', 'fairness on by default');
  assert.is(judge(c, { registryChecks: F }).status, 'pass');
  const strict = judge(c, { registryChecks: { ...F, starvation: { minShare: 0.5 } } });
  assert.is(strict.failure?.kind, 'check');
  assert.match(strict.failure!.message, /^starvation: worker 3 .*min 0\.5/);
  assert.is(strict.assert!.thresholds.starvation.minShare, 0.5);
  assert.is(
    judge(c, { registryChecks: { ...F, starvation: { minShare: 0.5 } }, testChecks: { starvation: false } }).status,
    'pass',
    'the test overrides the registry',
  );
  assert.is(
    judge(c, { registryChecks: { ...F, starvation: { minShare: 0.5 } }, testChecks: { starvation: { minShare: 0.2 } } })
      .status,
    'pass',
  );
  const runOn = cell({ test: facts({ runs: [{ record: run, checks: { starvation: { minShare: 0.5 } } }] }) });
  assert.is(
    judge(runOn, { registryChecks: F, testChecks: { starvation: { minShare: 0.2 } } }).failure?.kind,
    'check',
    'the run overrides the test',
  );
  assert.is(judge(c, { testChecks: { fairness: false } }).status, 'pass', 'the boolean shorthand turns a check off');
});

test("bad thresholds: kind setup naming the key; in a run's checks also naming the run", () => {
  const t = judge(cell(), { testChecks: { starvation: { minShare: 'half' } } as never });
  assert.is(t.status, 'fail');
  assert.is(t.failure?.kind, 'setup');
  assert.match(t.failure!.message, /^bad check thresholds: .*starvation\.minShare/);
  const reg = judge(cell(), { registryChecks: { nosuch: { enabled: true } } as never });
  assert.is(reg.failure?.kind, 'setup');
  assert.match(reg.failure!.message, /nosuch/);
  const run = judge(
    cell({
      test: facts({
        runs: [{ record: { ...fairRun(), label: 'warmup' }, checks: { gaps: { maxGapMs: 'long' } } as never }],
      }),
    }),
  );
  assert.is(run.failure?.kind, 'setup');
  assert.match(run.failure!.message, /^warmup: bad check thresholds: .*gaps\.maxGapMs/);
});

test("liveness: the EXIT line of the agent's own stop is no failure while the scheduler was alive and enabled at the end", () => {
  const log = 'scx_ktstr: started\nEXIT: unregistered from user space (kind 64)\n';
  const r = judge(cell({ schedulerLog: log }));
  assert.is(r.status, 'pass', JSON.stringify(r.failure));
  const live = r.assert!.checks.find((c) => c.check === 'liveness')!;
  assert.ok(live.passed);
  assert.is(r.schedulerLog, log);
});

test("liveness: a scheduler gone or disabled at the end fails, with the EXIT line's kind, or as unknown without one", () => {
  const crash = judge(
    cell({
      schedulerLog: 'EXIT: runtime error (kind 1024)\n',
      test: facts({ schedulerAlive: false, stateAtEnd: 'disabled' }),
    }),
  );
  assert.is(crash.status, 'fail');
  assert.is(crash.failure?.kind, 'check');
  assert.match(crash.failure!.message, /scheduler scx_ktstr crashed \(error exit, kind 1024 ERROR\): runtime error/);
  const clean = judge(
    cell({
      schedulerLog: 'EXIT: unregistered from user space (kind 64)\n',
      test: facts({ schedulerAlive: true, stateAtEnd: 'disabled' }),
    }),
  );
  assert.match(clean.failure!.message, /scheduler scx_ktstr exited cleanly \(kind 64 UNREG\)/);
  const gone = judge(
    cell({ schedulerLog: 'no exit line\n', test: facts({ schedulerAlive: false, stateAtEnd: 'enabled' }) }),
  );
  assert.match(
    gone.failure!.message,
    /scheduler scx_ktstr died for an unknown reason \(state enabled, process gone, no exit info\)/,
  );
  const missing = judge(cell({ test: facts({ schedulerAlive: undefined, stateAtEnd: undefined }) }));
  assert.is(missing.failure?.kind, 'check', 'absent liveness facts are not taken as alive');
  // the last EXIT line counts
  const last = judge(
    cell({
      schedulerLog: 'EXIT: a (kind 64)\nEXIT: b (kind 1026)\n',
      test: facts({ schedulerAlive: false, stateAtEnd: 'disabled' }),
    }),
  );
  assert.match(last.failure!.message, /crashed \(error exit, kind 1026 ERROR_STALL\): b/);
});

test('liveness: detached on purpose by the body is no failure', () => {
  const r = judge(
    cell({
      schedulerLog: 'EXIT: unregistered from user space (kind 64)\n',
      test: facts({ schedulerAlive: false, stateAtEnd: 'disabled', detachedOnPurpose: true }),
    }),
  );
  assert.is(r.status, 'pass', JSON.stringify(r.failure));
});

test('a long scheduler log keeps its last 8000 characters with a note of what was dropped', () => {
  const log = 'x'.repeat(10_000) + 'THE END';
  const r = judge(cell({ schedulerLog: log }));
  assert.is(r.schedulerLog, `[ktstr: ${log.length - 8000} bytes before]\n${log.slice(-8000)}`);
  assert.ok(r.schedulerLog.endsWith('THE END'));
  const short = judge(cell({ schedulerLog: 'y'.repeat(8000) }));
  assert.is(short.schedulerLog, 'y'.repeat(8000));
});

test('toOverrides: booleans become { enabled }, objects and top-level numbers pass as they are', () => {
  assert.is(toOverrides(null), undefined);
  assert.is(toOverrides(undefined), undefined);
  assert.equal(toOverrides({}), {});
  assert.equal(toOverrides({ gaps: false, benchmark: true, starvation: { minShare: 0.2 }, minPhaseMs: 100 } as never), {
    gaps: { enabled: false },
    benchmark: { enabled: true },
    starvation: { minShare: 0.2 },
    minPhaseMs: 100,
  });
});

test.run();
