// The test API as a test file sees it, on the host: the cgroup builder and its validation,
// CPU lists, work types, operations and durations, option checks, the topology view on a
// 2-node, 2-LLC-per-node, 2-core, 2-thread machine, ctx (run, skip), the registry, and the
// canned scenarios' shapes with a fake guest runtime that captures what each asks to run.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cgroup, CgroupDef, toCpuList } from '../../src/test-api/cgroup.js';
import {
  makeContext,
  SkipTest,
  type GuestRuntime,
  type RunSpec,
  type TestContext,
} from '../../src/test-api/context.js';
import { toMs } from '../../src/test-api/duration.js';
import { at, cpuRanges, describeOp, type OpSpec } from '../../src/test-api/ops.js';
import { checkOptions, topologyOf } from '../../src/test-api/options.js';
import { ktstrTest, openRegistry } from '../../src/test-api/registry.js';
import { scenarios } from '../../src/test-api/scenarios.js';
import { TopologyView } from '../../src/test-api/topology.js';
import { work } from '../../src/test-api/work.js';
import type { RunRecord } from '../../src/test-api/record.js';
import { Topology } from '../../src/vmm/topology/index.js';

const view = (spec: string): TopologyView => new TopologyView(new Topology(spec).cpus);
const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** A guest runtime that records every RunSpec and log line and answers with an empty record. */
class FakeRuntime implements GuestRuntime {
  specs: RunSpec[] = [];
  logs: string[] = [];
  run(spec: RunSpec): Promise<RunRecord> {
    this.specs.push(spec);
    return Promise.resolve({
      label: spec.label,
      durationMs: spec.durationMs,
      cpus: [],
      phases: [],
      cgroups: [],
      workers: [],
      spawnMs: 0,
      cpuStat: null,
    } as unknown as RunRecord);
  }
  log(line: string): void {
    this.logs.push(line);
  }
}

const ctxOn = (
  spec: string,
  o: { scheduler?: string | null; durationMs?: number } = {},
): { ctx: TestContext; rt: FakeRuntime } => {
  const rt = new FakeRuntime();
  const ctx = makeContext({
    name: 't',
    topo: view(spec),
    scheduler: o.scheduler === undefined ? 'scx_ktstr' : o.scheduler,
    durationMs: o.durationMs ?? 3000,
    runtime: rt,
  });
  return { ctx, rt };
};

// ---- cgroup() ----

test('cgroup: names are validated; a bad one is quoted in the message', () => {
  for (const ok of ['a', 'cg_0', 'A.b-c', '_x', 'x'.repeat(64)]) assert.is(cgroup(ok).name, ok);
  for (const bad of ['', '-a', '.a', 'a/b', 'a b', 'x'.repeat(65), 'ä']) {
    assert.throws(
      () => cgroup(bad),
      (e: Error) => e instanceof TypeError && e.message.includes(`"${bad}"`),
      bad,
    );
  }
});

test('cgroup: workers/cpuset/weight/max/affinity/nice/policy out of range are rejected naming the cgroup', () => {
  const cases: [string, (c: CgroupDef) => unknown, string][] = [
    ['workers -1', (c) => c.workers(-1), 'workers(-1)'],
    ['workers 1.5', (c) => c.workers(1.5), 'workers(1.5)'],
    ['workers 4097', (c) => c.workers(4097), 'workers(4097)'],
    ['cpuset empty', (c) => c.cpuset([]), 'empty cpuset'],
    ['cpuset bad', (c) => c.cpuset('0-x'), 'cpuset'],
    ['weight 0', (c) => c.weight(0), 'weight 0'],
    ['weight 10001', (c) => c.weight(10001), 'weight 10001'],
    ['max quota small', (c) => c.max(999), 'max(999, 100000)'],
    ['max period big', (c) => c.max(5000, 1_000_001), 'max(5000, 1000001)'],
    ['affinity empty', (c) => c.affinity(''), 'empty affinity'],
    ['nice -21', (c) => c.nice(-21), 'nice -21'],
    ['nice 20', (c) => c.nice(20), 'nice 20'],
    ['policy', (c) => c.policy('fifo' as never), 'policy "fifo"'],
  ];
  for (const [what, f, needle] of cases) {
    assert.throws(
      () => f(cgroup('grp')),
      (e: Error) => e instanceof TypeError && e.message.startsWith('cgroup grp') && e.message.includes(needle),
      what,
    );
  }
  // the limits themselves are accepted
  const spec = cgroup('grp')
    .workers(0)
    .workers(4096)
    .weight(1)
    .weight(10000)
    .max(1000, 1000)
    .nice(-20)
    .nice(19)
    .policy('idle')
    .toSpecs()[0];
  assert.is(spec.weight, 10000);
  assert.equal(spec.max, { quotaUs: 1000, periodUs: 1000 });
  assert.is(spec.nice, 19);
  assert.is(spec.policy, 'idle');
  assert.equal(
    spec.workers.map((w) => w.count),
    [0, 4096],
  );
});

test('cgroup: toSpecs records every control and flattens nested children to parent/child paths, parents first', () => {
  const def = cgroup('p')
    .weight(50)
    .cpuset('2-3,0')
    .children(
      cgroup('c0')
        .workers(2, work.sleepy({ runUs: 10 }))
        .children(cgroup('g').workers(1)),
      cgroup('c1').max(20_000).affinity([3, 1, 1]).nice(5).policy('batch'),
    );
  const specs = def.toSpecs();
  assert.equal(
    specs.map((s) => s.name),
    ['p', 'p/c0', 'p/c0/g', 'p/c1'],
  );
  assert.equal(specs[0].cpuset, [0, 2, 3]);
  assert.is(specs[0].weight, 50);
  assert.equal(specs[0].workers, []);
  assert.equal(specs[1].workers, [{ count: 2, work: { kind: 'sleepy', params: { run_us: 10, sleep_us: 1500 } } }]);
  assert.equal(specs[2].workers, [{ count: 1, work: work.spin() }]);
  assert.equal(specs[3].max, { quotaUs: 20_000, periodUs: 100_000 });
  assert.equal(specs[3].affinity, [1, 3]);
  assert.is(specs[3].nice, 5);
  assert.is(specs[3].policy, 'batch');
  assert.is(specs[1].weight, null, 'a child does not inherit the parent controls');
  // the specs are copies: changing one does not change the builder
  specs[1].workers[0].count = 99;
  assert.is(def.toSpecs()[1].workers[0].count, 2);
});

// ---- CPU lists, work, ops, durations ----

test('toCpuList: list strings, arrays (sorted, deduplicated), and bad input named', () => {
  assert.equal(toCpuList('0-3,6', 'x'), [0, 1, 2, 3, 6]);
  assert.equal(toCpuList(' 6 , 0-1,1 ', 'x'), [0, 1, 6]);
  assert.equal(toCpuList('', 'x'), []);
  assert.equal(toCpuList([5, 1, 5, 0], 'x'), [0, 1, 5]);
  assert.equal(toCpuList('4095', 'x'), [4095]);
  for (const bad of ['a', '1-', '-1', '3-1', '0-4096', '1;2', '0x1']) {
    assert.throws(
      () => toCpuList(bad, 'what'),
      (e: Error) => e instanceof TypeError && e.message.startsWith('what: '),
      bad,
    );
  }
  for (const bad of [[-1], [1.5], [4096], [NaN]]) {
    assert.throws(
      () => toCpuList(bad, 'what'),
      (e: Error) => e.message === `what: bad CPU number ${String(bad[0])}`,
      String(bad),
    );
  }
});

test('work: kinds, default and given parameters, non-positive or fractional parameters rejected by name', () => {
  assert.equal(work.spin(), { kind: 'spin', params: {} });
  assert.is(work.yieldHeavy().kind, 'yield');
  assert.is(work.pipePingPong().kind, 'pingpong');
  assert.is(work.forkExec().kind, 'forkexec');
  assert.is(work.futexWake().kind, 'futex');
  assert.is(work.mixed().kind, 'mixed');
  assert.equal(work.sleepy(), { kind: 'sleepy', params: { run_us: 500, sleep_us: 1500 } });
  assert.equal(work.sleepy({ runUs: 7, sleepUs: 9 }).params, { run_us: 7, sleep_us: 9 });
  assert.equal(work.burst(), { kind: 'burst', params: { burst_ms: 50, idle_ms: 100 } });
  assert.equal(work.burst({ burstMs: 3 }).params, { burst_ms: 3, idle_ms: 100 });
  for (const [f, name] of [
    [() => work.sleepy({ runUs: 0 }), 'runUs'],
    [() => work.sleepy({ sleepUs: -5 }), 'sleepUs'],
    [() => work.burst({ burstMs: 1.5 }), 'burstMs'],
    [() => work.burst({ idleMs: NaN }), 'idleMs'],
  ] as [() => unknown, string][]) {
    assert.throws(
      f,
      (e: Error) => e instanceof TypeError && e.message.startsWith(`work: ${name} must be a positive integer`),
      name,
    );
  }
});

test('toMs: numbers of ms and strings with units; negative, malformed and too long rejected', () => {
  assert.is(toMs(250, 'x'), 250);
  assert.is(toMs('500ms', 'x'), 500);
  assert.is(toMs('2s', 'x'), 2000);
  assert.is(toMs('1.5s', 'x'), 1500);
  assert.is(toMs(' 1m ', 'x'), 60_000);
  assert.is(toMs(0, 'x'), 0);
});

test('toMs: bad durations name the caller', () => {
  for (const bad of [-1, NaN, Infinity])
    assert.throws(
      () => toMs(bad, 'sleep'),
      (e: Error) => e.message === `sleep: bad duration ${String(bad)}`,
      String(bad),
    );
  for (const bad of ['2', '2h', 's', '-1s', '1,5s', ''])
    assert.throws(
      () => toMs(bad, 'at()'),
      (e: Error) => e.message.startsWith(`at(): bad duration "${bad}"`),
      bad,
    );
  assert.throws(() => toMs('1441m', 'timeout'), /timeout: duration "1441m" too long/);
  assert.is(toMs('1440m', 'timeout'), 24 * 3_600_000);
});

test('at(): each operation as data, with its time and a one-line description', () => {
  const ops: [OpSpec, string][] = [
    [at('1s').resize('a', '0-3,6'), 'resize a to 0-3,6'],
    [at(1500).add(cgroup('c').children(cgroup('d'))), 'add c, c/d'],
    [at('2s').remove('b'), 'remove b'],
    [at('2s').moveWorkers('a', 'p/c', 2), 'move 2 workers a -> p/c'],
    [at('2s').affinity('a', [3, 1, 2]), 'affinity of a to 1-3'],
    [at('2s').affinity('a', null), 'affinity of a to all'],
    [at('2s').weight('a', 300), 'weight of a to 300'],
    [at('2s').replaceScheduler('scx_simple', ['-v']), 'replace scheduler with scx_simple'],
    [at('2s').detachScheduler(), 'detach scheduler (EEVDF)'],
    [at('2s').attachScheduler('scx_ktstr'), 'attach scx_ktstr'],
  ];
  for (const [op, text] of ops) assert.is(describeOp(op), text);
  assert.equal(ops[0][0], { atMs: 1000, op: 'resize', cgroup: 'a', cpus: [0, 1, 2, 3, 6] });
  assert.is(ops[1][0].atMs, 1500);
  assert.equal(ops[7][0], { atMs: 2000, op: 'replaceScheduler', scheduler: 'scx_simple', args: ['-v'] });
  assert.equal(ops[9][0], { atMs: 2000, op: 'attachScheduler', scheduler: 'scx_ktstr', args: [] });
  assert.throws(() => at('2s').moveWorkers('a', 'b', 0), /moveWorkers: count 0 must be ≥ 1/);
  assert.throws(() => at('2s').weight('a', 0), /weight a: 0 outside 1..10000/);
  assert.throws(() => at('2s').resize('a', 'x'), /resize a: bad CPU list/);
  assert.throws(() => at('soon'), /at\(\): bad duration "soon"/);
});

test('cpuRanges: runs collapsed, order and duplicates ignored', () => {
  assert.is(cpuRanges([]), '');
  assert.is(cpuRanges([0]), '0');
  assert.is(cpuRanges([6, 0, 1, 2, 3, 3]), '0-3,6');
  assert.is(cpuRanges([1, 3, 5]), '1,3,5');
  assert.is(cpuRanges([9, 8, 10, 1]), '1,8-10');
  // round trip with toCpuList
  for (const s of ['0-3,6', '1,3,5', '0-15', '2,4-5,7-9']) assert.is(cpuRanges(toCpuList(s, 'x')), s);
});

// ---- options ----

test('checkOptions: accepts the documented options and returns them', () => {
  const o = {
    numa: 2,
    llcs: 4,
    cores: 2,
    threads: 2,
    memory: 512,
    scheduler: 'scx_ktstr',
    args: ['-v'],
    duration: '2s',
    timeout: 60_000,
    kernels: ['6.12'],
    payload: { cmd: ['rt-app', 'x.json'] },
    checks: { gaps: false },
  };
  assert.is(checkOptions('t', o), o);
  assert.equal(checkOptions('t', {}), {});
});

test('checkOptions: unknown keys and wrong types name the test and the key', () => {
  assert.throws(
    () => checkOptions('my test', { schedular: 'x' }),
    (e: Error) =>
      e instanceof TypeError &&
      e.message.startsWith('ktstrTest("my test"): unknown option "schedular"') &&
      e.message.includes('scheduler'),
  );
  for (const bad of [null, [], 'x', 3])
    assert.throws(() => checkOptions('t', bad), /ktstrTest\("t"\): options must be an object/, String(bad));
  for (const k of ['numa', 'llcs', 'cores', 'threads', 'memory']) {
    for (const v of [0, -1, 1.5, '2'])
      assert.throws(
        () => checkOptions('t', { [k]: v }),
        new RegExp(`ktstrTest\\("t"\\): ${k} must be a positive integer`),
        `${k}=${String(v)}`,
      );
  }
  for (const k of ['preset', 'topology', 'scheduler'])
    assert.throws(() => checkOptions('t', { [k]: 1 }), new RegExp(`${k} must be a string`), k);
  for (const k of ['args', 'kernels']) {
    assert.throws(() => checkOptions('t', { [k]: 'x' }), new RegExp(`${k} must be an array of strings`), k);
    assert.throws(() => checkOptions('t', { [k]: ['a', 1] }), new RegExp(`${k} must be an array of strings`), k);
  }
});

test('checkOptions: preset/topology with numa/llcs/cores/threads conflict; payload.cmd must be non-empty strings', () => {
  for (const a of ['preset', 'topology']) {
    for (const b of ['numa', 'llcs', 'cores', 'threads']) {
      assert.throws(
        () => checkOptions('t', { [a]: 'x', [b]: 2 }),
        /give either preset\/topology or numa\/llcs\/cores\/threads, not both/,
        `${a}+${b}`,
      );
    }
  }
  assert.ok(checkOptions('t', { preset: 'x', memory: 256 }));
  for (const p of [null, {}, { cmd: [] }, { cmd: 'rt-app' }, { cmd: ['rt-app', 3] }]) {
    assert.throws(
      () => checkOptions('t', { payload: p }),
      /payload\.cmd must be a non-empty array of strings/,
      JSON.stringify(p),
    );
  }
});

test('topologyOf: preset, spec, or the spec built from numa/llcs/cores/threads with defaults', () => {
  assert.equal(topologyOf({ preset: 'tiny' }), { preset: 'tiny' });
  assert.equal(topologyOf({ topology: '1n2l4c1t' }), { spec: '1n2l4c1t' });
  assert.equal(topologyOf({}), { spec: '1n1l2c1t' });
  assert.equal(topologyOf({ numa: 2, llcs: 4, threads: 2 }), { spec: '2n4l2c2t' });
  // each default is a spec the VMM accepts
  const t = new Topology((topologyOf({ cores: 3 }) as { spec: string }).spec);
  assert.is(t.numCpus, 3);
});

// ---- topology view ----

test('TopologyView on 2n4l2c2t: counts and llc/numa/core/smt selections', () => {
  const t = new Topology('2n4l2c2t');
  const v = new TopologyView(t.cpus);
  assert.is(v.cpus, 16);
  assert.is(v.numaNodes, 2);
  assert.is(v.llcs, 4);
  assert.is(v.cores, 8);
  assert.is(v.threadsPerCore, 2);
  assert.equal(v.all(), range(0, 15));
  for (let l = 0; l < 4; l++) assert.equal(v.llc(l), t.llcCpus(l), `llc ${l}`);
  assert.equal(v.llc(1), [4, 5, 6, 7]);
  for (let n = 0; n < 2; n++) assert.equal(v.numa(n), t.nodeCpus(n), `node ${n}`);
  assert.equal(v.numa(1), range(8, 15));
  for (let c = 0; c < 8; c++) {
    const cpus = v.core(c);
    assert.equal(cpus, t.threadSiblings(cpus[0]), `core ${c}`);
    assert.equal(cpus, [2 * c, 2 * c + 1], `core ${c}`);
  }
  assert.equal(v.smt(0), [0, 2, 4, 6, 8, 10, 12, 14]);
  assert.equal(v.smt(1), [1, 3, 5, 7, 9, 11, 13, 15]);
});

test('TopologyView: an index out of range names the selection and the valid range', () => {
  const v = view('2n4l2c2t');
  const cases: [() => unknown, string][] = [
    [() => v.llc(4), 'topo.llc(4): this VM has 4 (0..3)'],
    [() => v.numa(2), 'topo.numa(2): this VM has 2 (0..1)'],
    [() => v.core(8), 'topo.core(8): this VM has 8 (0..7)'],
    [() => v.smt(2), 'topo.smt(2): this VM has 2 (0..1)'],
    [() => v.llc(-1), 'topo.llc(-1): this VM has 4 (0..3)'],
    [() => v.numa(0.5), 'topo.numa(0.5): this VM has 2 (0..1)'],
  ];
  for (const [f, msg] of cases) assert.throws(f, (e: Error) => e instanceof RangeError && e.message === msg, msg);
  const one = view('1n1l1c1t');
  assert.is(one.threadsPerCore, 1);
  assert.throws(() => one.smt(1), /topo\.smt\(1\): this VM has 1 \(0\.\.0\)/);
});

// ---- ctx ----

test('ctx.run: hands the runtime flattened cgroups, its label and duration, and the ops sorted by time', async () => {
  const { ctx, rt } = ctxOn('1n1l4c1t', { durationMs: 3000 });
  await ctx.run([cgroup('a').workers(2), cgroup('p').children(cgroup('c').workers(1))], {
    ops: [at('2s').remove('a'), at('500ms').resize('p/c', [0]), at(1000).weight('p', 10)],
    checks: { gaps: false },
  });
  await ctx.run([cgroup('b')], { duration: '1s', label: 'second' });
  assert.is(rt.specs.length, 2);
  const [s1, s2] = rt.specs;
  assert.is(s1.label, 'run 1');
  assert.is(s1.durationMs, 3000);
  assert.equal(
    s1.cgroups.map((c) => c.name),
    ['a', 'p', 'p/c'],
  );
  assert.equal(
    s1.ops.map((o) => [o.atMs, o.op]),
    [
      [500, 'resize'],
      [1000, 'weight'],
      [2000, 'remove'],
    ],
  );
  assert.equal(s1.checks, { gaps: false });
  assert.is(s2.label, 'second');
  assert.is(s2.durationMs, 1000);
  assert.equal(s2.ops, []);
  assert.is(s2.checks, null);
});

test('ctx.run: an op at or past the end, a cgroup declared twice, or a bad duration is refused before the runtime sees it', () => {
  const { ctx, rt } = ctxOn('1n1l4c1t', { durationMs: 3000 });
  assert.throws(
    () => ctx.run([cgroup('a')], { ops: [at('3s').remove('a')] }),
    (e: Error) =>
      e instanceof RangeError && e.message === "run: an operation at 3000 ms is past the run's end (3000 ms)",
  );
  assert.throws(
    () => ctx.run([cgroup('a')], { duration: '1s', ops: [at('1500ms').remove('a')] }),
    /operation at 1500 ms is past the run's end \(1000 ms\)/,
  );
  assert.throws(() => ctx.run([cgroup('a'), cgroup('a')]), /run: cgroup "a" declared twice/);
  assert.throws(
    () => ctx.run([cgroup('p').children(cgroup('c')), cgroup('p').children(cgroup('c'))]),
    /cgroup "p" declared twice/,
  );
  assert.throws(() => ctx.run([cgroup('a')], { duration: 'forever' }), /run duration: bad duration "forever"/);
  assert.is(rt.specs.length, 0);
  // nested names that only look alike are different paths
  assert.not.throws(() => ctx.run([cgroup('p').children(cgroup('c')), cgroup('q').children(cgroup('c'))]));
  assert.is(rt.specs.length, 1);
});

test('ctx.skip throws SkipTest carrying the reason; ctx.log joins its parts; ctx.sleep waits', async () => {
  const { ctx, rt } = ctxOn('1n1l2c1t');
  let caught: unknown;
  try {
    ctx.skip('needs 2 LLCs');
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SkipTest);
  assert.is((caught as SkipTest).reason, 'needs 2 LLCs');
  assert.is((caught as SkipTest).message, 'skip: needs 2 LLCs');
  ctx.log('x', 3, { a: [1] }, 'y');
  assert.equal(rt.logs, ['x 3 {"a":[1]} y']);
  const t0 = Date.now();
  await ctx.sleep('30ms');
  assert.ok(Date.now() - t0 >= 25);
  assert.is(ctx.name, 't');
  assert.is(ctx.topo.cpus, 2);
});

// ---- registry ----

const REGISTRY = Symbol.for('ktstr-wasm.test-registry');

test('ktstrTest: declares into the open registry, options checked, nothing run', () => {
  const reg = openRegistry();
  let ran = false;
  ktstrTest('one', { llcs: 2 }, () => {
    ran = true;
  });
  ktstrTest('two', {}, async () => {});
  assert.equal(
    reg.map((t) => t.name),
    ['one', 'two'],
  );
  assert.equal(reg[0].options, { llcs: 2 });
  assert.is(ran, false);
  // a fresh registry for the next file
  const next = openRegistry();
  assert.is(next.length, 0);
  assert.is(reg.length, 2);
});

test('ktstrTest: duplicate names, bad names, bad bodies, bad options and no registry are errors naming the test', () => {
  openRegistry();
  ktstrTest('dup', {}, () => {});
  assert.throws(
    () => ktstrTest('dup', {}, () => {}),
    /ktstrTest\("dup"\): a test of that name is already declared in this file/,
  );
  for (const bad of ['', '   ', 'x'.repeat(201), 3 as unknown as string]) {
    assert.throws(
      () => ktstrTest(bad, {}, () => {}),
      /the name must be a non-empty string of at most 200 characters/,
      String(bad),
    );
  }
  assert.throws(() => ktstrTest('b', {}, 'body' as never), /ktstrTest\("b"\): the body must be a function/);
  assert.throws(() => ktstrTest('o', { llc: 2 } as never, () => {}), /ktstrTest\("o"\): unknown option "llc"/);
  const g = globalThis as Record<symbol, unknown>;
  const saved = g[REGISTRY];
  delete g[REGISTRY];
  try {
    assert.throws(
      () => ktstrTest('alone', {}, () => {}),
      (e: Error) => e.message === 'ktstrTest("alone"): test files run under `ktstr-wasm test`, not directly',
    );
  } finally {
    g[REGISTRY] = saved;
  }
});

// ---- scenarios ----

const allScenarios = Object.keys(scenarios) as (keyof typeof scenarios)[];

test('scenarios: each one runs once on 2n4l2c2t with unique cgroups, ops sorted within the run, workers declared', async () => {
  for (const name of allScenarios) {
    const { ctx, rt } = ctxOn('2n4l2c2t', { durationMs: 3000 });
    await scenarios[name](ctx);
    assert.is(rt.specs.length, 1, name);
    const s = rt.specs[0];
    assert.is(s.durationMs, 3000, name);
    const names = s.cgroups.map((c) => c.name);
    assert.is(new Set(names).size, names.length, name);
    assert.ok(s.cgroups.reduce((n, c) => n + c.workers.reduce((a, w) => a + w.count, 0), 0) > 0, name);
    for (let i = 1; i < s.ops.length; i++) assert.ok(s.ops[i - 1].atMs <= s.ops[i].atMs, name);
    for (const op of s.ops) {
      assert.ok(op.atMs > 0 && op.atMs < 3000, `${name}: ${describeOp(op)} at ${op.atMs}`);
      if ('cgroup' in op) assert.ok(names.includes(op.cgroup), `${name}: ${describeOp(op)} names a cgroup of the run`);
    }
  }
});

test('scenarios: deterministic (the same RunSpecs on every call)', async () => {
  for (const name of allScenarios) {
    const a = ctxOn('2n4l2c2t');
    const b = ctxOn('2n4l2c2t');
    await scenarios[name](a.ctx);
    await scenarios[name](b.ctx);
    assert.equal(a.rt.specs, b.rt.specs, name);
  }
});

test('scenarios: one CPU skips those that need two, naming the scenario and the count', async () => {
  for (const name of ['cpusetApply', 'cpusetClear', 'cpusetResize', 'affinityChange', 'affinityPinned'] as const) {
    const { ctx, rt } = ctxOn('1n1l1c1t');
    let caught: unknown;
    try {
      await scenarios[name](ctx);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof SkipTest, name);
    assert.is((caught as SkipTest).reason, `${name} needs at least 2 CPUs (this VM has 1)`);
    assert.is(rt.specs.length, 0);
  }
});

test('scenarios.steadyLlc: skips on one LLC; otherwise one cgroup per LLC confined to it, 2 workers per CPU', async () => {
  const one = ctxOn('1n1l4c1t');
  assert.throws(
    () => scenarios.steadyLlc(one.ctx),
    (e: Error) => e instanceof SkipTest && e.reason === 'steadyLlc needs at least 2 LLCs (this VM has 1)',
  );
  const { ctx, rt } = ctxOn('2n4l2c2t');
  await scenarios.steadyLlc(ctx);
  const cg = rt.specs[0].cgroups;
  assert.equal(
    cg.map((c) => c.name),
    ['llc_0', 'llc_1', 'llc_2', 'llc_3'],
  );
  cg.forEach((c, i) => {
    assert.equal(c.cpuset, ctx.topo.llc(i));
    assert.equal(c.workers, [{ count: 8, work: work.spin() }]);
  });
  const custom = ctxOn('1n2l2c1t');
  await scenarios.steadyLlc(custom.ctx, { workers: 3, work: work.yieldHeavy() });
  assert.equal(
    custom.rt.specs[0].cgroups.map((c) => c.workers),
    [[{ count: 3, work: work.yieldHeavy() }], [{ count: 3, work: work.yieldHeavy() }]],
  );
});

test('scenarios.schedulerSwap: skips under EEVDF; otherwise replaces with itself at 1/3 and detaches at 2/3', async () => {
  const eevdf = ctxOn('1n1l2c1t', { scheduler: null });
  assert.throws(
    () => scenarios.schedulerSwap(eevdf.ctx),
    (e: Error) => e instanceof SkipTest && /under EEVDF/.test(e.reason),
  );
  assert.is(eevdf.rt.specs.length, 0);
  const { ctx, rt } = ctxOn('1n1l2c1t', { scheduler: 'scx_ktstr', durationMs: 3000 });
  await scenarios.schedulerSwap(ctx);
  assert.equal(rt.specs[0].ops, [
    { atMs: 1000, op: 'replaceScheduler', scheduler: 'scx_ktstr', args: [] },
    { atMs: 2000, op: 'detachScheduler' },
  ]);
});

test('scenarios.cpusetResize: a shrinks to half at 1/3 and grows back to all at 2/3 of the duration', async () => {
  for (const [durationMs, opt] of [
    [3000, undefined],
    [10_000, undefined],
    [3000, 9000],
  ] as [number, number | undefined][]) {
    const { ctx, rt } = ctxOn('1n2l2c1t', { durationMs });
    await scenarios.cpusetResize(ctx, opt === undefined ? {} : { duration: opt });
    const d = opt ?? durationMs;
    const s = rt.specs[0];
    assert.is(s.durationMs, d);
    assert.equal(
      s.ops,
      [
        { atMs: Math.floor(d / 3), op: 'resize', cgroup: 'a', cpus: [0, 1] },
        { atMs: Math.floor((2 * d) / 3), op: 'resize', cgroup: 'a', cpus: [0, 1, 2, 3] },
      ],
      `duration ${d}`,
    );
    assert.equal(
      s.cgroups.map((c) => [c.name, c.workers[0].count, c.cpuset]),
      [
        ['a', 4, null],
        ['b', 4, null],
      ],
    );
  }
});

test('scenarios.cpusetApply and cpusetClear: the two halves, applied at 1/3, or cleared at 1/2', async () => {
  const a = ctxOn('1n1l3c1t', { durationMs: 3000 });
  await scenarios.cpusetApply(a.ctx);
  assert.equal(
    a.rt.specs[0].ops.map((o) => [o.atMs, describeOp(o)]),
    [
      [1000, 'resize a to 0-1'],
      [1000, 'resize b to 2'],
    ],
  );
  const c = ctxOn('1n1l4c1t', { durationMs: 3000 });
  await scenarios.cpusetClear(c.ctx);
  const s = c.rt.specs[0];
  assert.equal(
    s.cgroups.map((g) => g.cpuset),
    [
      [0, 1],
      [2, 3],
    ],
  );
  assert.equal(
    s.ops.map((o) => [o.atMs, describeOp(o)]),
    [
      [1500, 'resize a to 0-3'],
      [1500, 'resize b to 0-3'],
    ],
  );
});

test('scenarios.weights: three cgroups at cpu.weight 100, 200, 400 with a worker per CPU each', async () => {
  const { ctx, rt } = ctxOn('2n4l2c2t');
  await scenarios.weights(ctx);
  assert.equal(
    rt.specs[0].cgroups.map((c) => [c.name, c.weight, c.workers[0].count]),
    [
      ['w100', 100, 16],
      ['w200', 200, 16],
      ['w400', 400, 16],
    ],
  );
});

test('scenarios.wakeupStorm: an even number of ping-pong workers (pairs), from the CPU count or workers', async () => {
  for (const [spec, workers, expect] of [
    ['2n4l2c2t', undefined, 32],
    ['1n1l3c1t', undefined, 6],
    ['1n1l2c1t', 3, 6],
  ] as [string, number | undefined, number][]) {
    const { ctx, rt } = ctxOn(spec);
    await scenarios.wakeupStorm(ctx, workers === undefined ? {} : { workers });
    const w = rt.specs[0].cgroups[0].workers;
    assert.is(w.length, 1);
    assert.is(w[0].count, expect);
    assert.is(w[0].count % 2, 0);
    assert.is(w[0].work.kind, 'pingpong');
  }
});

test('scenarios.affinityChange: 8 affinity ops (a and b at 1/5..4/5), each a non-empty subset of the CPUs', async () => {
  const { ctx, rt } = ctxOn('2n4l2c2t', { durationMs: 5000 });
  await scenarios.affinityChange(ctx);
  const ops = rt.specs[0].ops;
  assert.is(ops.length, 8);
  const all = ctx.topo.all();
  ops.forEach((o, i) => {
    assert.is(o.op, 'affinity');
    if (o.op !== 'affinity') return;
    assert.is(o.atMs, 1000 * (Math.floor(i / 2) + 1));
    assert.is(o.cgroup, i % 2 === 0 ? 'a' : 'b');
    assert.ok(o.cpus !== null && o.cpus.length > 0, describeOp(o));
    assert.ok(o.cpus!.every((c) => all.includes(c)));
  });
  // not all the same set: the sets are drawn, not fixed
  assert.ok(new Set(ops.map((o) => describeOp(o).replace(/^affinity of \w+ /, ''))).size > 1);
});

test('scenarios: nestedSteady and nestedTaskMove use parent/child paths; mixedWorkloads, hostContention, idleMostly kinds', async () => {
  const n = ctxOn('1n1l4c1t', { durationMs: 3000 });
  await scenarios.nestedSteady(n.ctx);
  assert.equal(
    n.rt.specs[0].cgroups.map((c) => [c.name, c.workers.reduce((a, w) => a + w.count, 0)]),
    [
      ['p0', 0],
      ['p0/c0', 2],
      ['p0/c1', 2],
      ['p1', 0],
      ['p1/c0', 2],
      ['p1/c1', 2],
    ],
  );
  const m = ctxOn('1n1l4c1t', { durationMs: 3000 });
  await scenarios.nestedTaskMove(m.ctx);
  assert.equal(m.rt.specs[0].ops, [
    { atMs: 1000, op: 'move', from: 'p0/c0', to: 'p0/c1', count: 2 },
    { atMs: 2000, op: 'move', from: 'p0/c1', to: 'p1/c0', count: 1 },
  ]);
  const mw = ctxOn('1n1l2c1t');
  await scenarios.mixedWorkloads(mw.ctx);
  assert.equal(
    mw.rt.specs[0].cgroups.map((c) => [c.name, c.workers[0].work.kind]),
    [
      ['heavy', 'spin'],
      ['bursty', 'burst'],
      ['io', 'sleepy'],
    ],
  );
  const h = ctxOn('1n1l2c1t');
  await scenarios.hostContention(h.ctx);
  assert.equal(
    h.rt.specs[0].cgroups.map((c) => [c.name, c.policy]),
    [
      ['a', null],
      ['host', 'normal'],
    ],
  );
  const i = ctxOn('1n1l2c1t');
  await scenarios.idleMostly(i.ctx);
  assert.equal(i.rt.specs[0].cgroups[0].workers, [{ count: 4, work: work.sleepy({ runUs: 100, sleepUs: 10_000 }) }]);
});

test("scenarios: the caller's ops and options are kept alongside the scenario's own", async () => {
  const { ctx, rt } = ctxOn('1n1l2c1t', { durationMs: 3000 });
  await scenarios.cgroupRemove(ctx, {
    ops: [at('200ms').weight('a', 50)],
    label: 'mine',
    checks: { fairness: false },
    workers: 1,
  });
  const s = rt.specs[0];
  assert.is(s.label, 'mine');
  assert.equal(s.checks, { fairness: false });
  assert.equal(s.ops.map(describeOp), ['weight of a to 50', 'remove b']);
  assert.equal(
    s.cgroups.map((c) => c.workers[0].count),
    [1, 1],
  );
});

test.run();
