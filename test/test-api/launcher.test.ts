// The guest agent's launcher (src/guest/agent/workload/launcher.ts) and its report reader
// (report.ts), run natively on this host with the real ktstr-worker binary: ready with the
// workers' pids, start, phases, stop with readable reports; start in a later phase; the
// transition bit (iterations count to the phase, CPU time does not); a binary that does not
// exist; kill leaving no process; and toWorkerReport on a missing, a damaged and a good report.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Launcher, LauncherError } from '../../src/guest/agent/workload/launcher.js';
import { toWorkerReport, type KnownFacts } from '../../src/guest/agent/workload/report.js';
import type { WorkerReport } from '../../src/test-api/record.js';
import { repoPath } from '../helpers/repo.js';

const BIN = repoPath('native', 'worker', 'build', 'ktstr-worker');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const SPIN2 = ['worker index=0 cgroup=- work=spin policy=normal', 'worker index=1 cgroup=- work=spin policy=normal'];

let tmp = '';
let dirs = 0;
const dir = (): string => join(tmp, `l${++dirs}`);
test.before(() => {
  if (!existsSync(BIN)) {
    const make = spawnSync('make', ['-s', '-C', repoPath('native', 'worker')], { encoding: 'utf8' });
    assert.is(make.status, 0, `make -C native/worker failed:\n${make.stdout}${make.stderr}`);
  }
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-launcher-'));
});
test.after(() => {
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

const known = (index: number, pid: number, o: Partial<KnownFacts> = {}): KnownFacts => ({
  index,
  pid,
  cgroup: 'a',
  work: 'spin',
  nice: 0,
  allowed: [{ phase: 1, cpus: [0, 1] }],
  startPhase: 1,
  stopPhase: null,
  missing: `worker ${index} wrote no report`,
  ...o,
});

/** A process is gone (or a zombie about to be reaped). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^\d+ \(.*\) Z /.test(stat);
  } catch {
    return true;
  }
}

const launcherPid = (l: Launcher): number => (l as unknown as { child: { pid: number } }).child.pid;

test('two spin workers: ready gives their pids, start, phase 2, stop; the reports read as WorkerReports of both phases', async () => {
  const d = dir();
  const l = new Launcher(d, SPIN2, BIN);
  await l.ready(10_000);
  assert.is(l.pids.length, 2);
  for (const pid of l.pids) {
    assert.ok(pid > 0);
    assert.ok(existsSync(`/proc/${pid}`), `worker ${pid} runs`);
  }
  assert.ok(l.spawnNs > 0);
  assert.equal(readFileSync(join(d, 'spec'), 'utf8').split('\n').slice(0, 3), [`dir ${d}`, ...SPIN2]);
  await l.start(5000);
  await sleep(150);
  l.phase(2);
  await sleep(150);
  assert.equal(await l.stop(10_000), { killed: false });
  for (let i = 0; i < 2; i++) {
    const raw = l.report(i);
    assert.ok(raw !== null, `report ${i}`);
    const r = toWorkerReport(raw, known(i, l.pids[i], { work: 'spin' }));
    assert.is(r.error, null, String(r.error));
    assert.is(r.index, i);
    assert.is(r.pid, l.pids[i]);
    assert.is(r.cgroup, 'a');
    assert.is(r.policy, 0, 'SCHED_NORMAL');
    assert.ok(r.iterations > 0);
    assert.equal(
      r.phases.map((p) => p.phase),
      [1, 2],
    );
    for (const p of r.phases) assert.ok(p.iterations > 0, `phase ${p.phase} did work`);
    assert.is(
      r.phases.reduce((s, p) => s + p.iterations, 0),
      r.iterations,
    );
    assert.ok(r.wallNs >= 250e6, `wall ${r.wallNs}`);
    assert.ok(r.cpuTimeNs > 0 && r.cpuTimeNs <= r.wallNs + 50e6, `cpu ${r.cpuTimeNs} wall ${r.wallNs}`);
    assert.is(r.wakeLatencyNs, null, 'spin measures no wakeups');
  }
  for (const pid of [...l.pids, launcherPid(l)]) assert.ok(gone(pid), `${pid} ended`);
});

test('start(ms, N): workers added mid-run start in phase N', async () => {
  const l = new Launcher(dir(), SPIN2, BIN);
  await l.ready(10_000);
  await l.start(5000, 3);
  await sleep(120);
  l.phase(4);
  await sleep(120);
  assert.equal(await l.stop(10_000), { killed: false });
  for (let i = 0; i < 2; i++) {
    const r = toWorkerReport(l.report(i), known(i, l.pids[i], { startPhase: 3 }));
    assert.is(r.error, null);
    assert.equal(
      r.phases.map((p) => p.phase),
      [3, 4],
    );
    assert.is(r.startPhase, 3);
  }
});

test('the transition bit: iterations in the transition count to the phase, its CPU time to nothing', async () => {
  const l = new Launcher(dir(), SPIN2, BIN);
  await l.ready(10_000);
  await l.start(5000);
  await sleep(150);
  l.phase((0x80000000 | 2) >>> 0);
  await sleep(600);
  l.phase(2);
  await sleep(150);
  assert.equal(await l.stop(10_000), { killed: false });
  for (let i = 0; i < 2; i++) {
    const r: WorkerReport = toWorkerReport(l.report(i), known(i, l.pids[i]));
    assert.is(r.error, null);
    assert.equal(
      r.phases.map((p) => p.phase),
      [1, 2],
      'no phase of its own for the transition',
    );
    assert.is(
      r.phases.reduce((s, p) => s + p.iterations, 0),
      r.iterations,
      'every iteration counted to a phase',
    );
    const ns = (p: number): number => r.phases.find((x) => x.phase === p)!.cpus.reduce((s, c) => s + c.ns, 0);
    const rate = (p: number): number => r.phases.find((x) => x.phase === p)!.iterations / ns(p);
    // phase 2 holds the transition's 600 ms of iterations but only its own 150 ms of CPU time:
    // iterations per ns of phase-2 CPU time are several times phase 1's (about 5x)
    assert.ok(rate(2) > 2 * rate(1), `iterations/ns: phase 1 ${rate(1)}, phase 2 ${rate(2)}`);
    // the per-CPU totals are the phases' (the transition is in neither) and fall short of the CPU time
    assert.is(
      r.cpus.reduce((s, c) => s + c.ns, 0),
      ns(1) + ns(2),
    );
    assert.ok(ns(1) + ns(2) < r.cpuTimeNs, `per-CPU ${ns(1) + ns(2)} < cpu time ${r.cpuTimeNs}`);
  }
});

test('a binary that does not exist: ready rejects with a LauncherError naming it', async () => {
  const missing = join(tmp, 'no-such-ktstr-worker');
  const l = new Launcher(dir(), SPIN2, missing);
  let err: unknown;
  try {
    await l.ready(5000);
  } catch (e) {
    err = e;
  }
  assert.instance(err, LauncherError);
  assert.match(
    (err as Error).message,
    /^ktstr-worker ended before "ready": cannot start .*no-such-ktstr-worker: .*ENOENT/,
  );
  await l.done;
  // the other commands do not throw once it is gone
  assert.not.throws(() => l.phase(2));
});

test("a bad spec: ready rejects with the launcher's own message (file and line)", async () => {
  const l = new Launcher(dir(), ['worker index=0 work=crunch'], BIN);
  let err: unknown;
  try {
    await l.ready(5000);
  } catch (e) {
    err = e;
  }
  assert.instance(err, LauncherError);
  assert.match((err as Error).message, /ended before "ready": .*spec:2: .*crunch/);
  assert.match(l.messages, /crunch/);
});

test('kill(): every worker and the launcher gone, no reports', async () => {
  const l = new Launcher(dir(), SPIN2, BIN);
  await l.ready(10_000);
  await l.start(5000);
  await sleep(100);
  const pids = [...l.pids, launcherPid(l)];
  await l.kill();
  await sleep(50);
  for (const pid of pids) assert.ok(gone(pid), `${pid} left behind`);
  assert.is(l.report(0), null);
  assert.is(l.report(1), null);
});

test('kill() before start also ends the parked workers', async () => {
  const l = new Launcher(dir(), SPIN2, BIN);
  await l.ready(10_000);
  const pids = [...l.pids, launcherPid(l)];
  await l.kill();
  await sleep(50);
  for (const pid of pids) assert.ok(gone(pid), `${pid} left behind`);
});

test('Launcher.report: a missing, unparsable or non-object file is null', () => {
  const d = dir();
  const l = new Launcher(d, ['worker index=0 work=nope'], BIN);
  assert.is(l.report(0), null);
  writeFileSync(join(d, '0.json'), '{"index":0,');
  assert.is(l.report(0), null);
  writeFileSync(join(d, '0.json'), '[1,2]');
  assert.is(l.report(0), null);
  writeFileSync(join(d, '0.json'), '{"index":0}');
  assert.equal(l.report(0), { index: 0 });
  return l.done;
});

// ---- toWorkerReport ----

const goodRaw = (): Record<string, unknown> => ({
  index: 3,
  pid: 4242,
  work: 'sleepy',
  policy: 7,
  nice: 0,
  iterations: 284,
  cpuTimeNs: 32_197_992,
  wallNs: 315_899_322,
  voluntarySwitches: 285,
  involuntarySwitches: 4,
  migrations: 1,
  cpus: [{ cpu: 1, ns: 29_592_452 }],
  phases: [
    { phase: 1, iterations: 143, cpus: [{ cpu: 1, ns: 14_786_219 }] },
    { phase: 2, iterations: 141, cpus: [{ cpu: 1, ns: 14_806_233 }] },
  ],
  maxGapNs: 2_723_600,
  maxGapAtNs: 160_383_929,
  maxGapCpu: 1,
  wakeups: 284,
  wakeLatencyNs: { samples: 284, p50: 87_098, p99: 749_644, max: 2_723_600 },
  error: null,
});

test('toWorkerReport(null): the known facts and the missing-report error, nothing measured', () => {
  const k = known(3, 99, { cgroup: 'p/c', work: 'burst', nice: 5, startPhase: 2, stopPhase: 4 });
  const r = toWorkerReport(null, k);
  assert.is(r.error, 'worker 3 wrote no report');
  assert.equal([r.index, r.pid, r.cgroup, r.work, r.nice, r.startPhase, r.stopPhase], [3, 99, 'p/c', 'burst', 5, 2, 4]);
  assert.equal(r.allowed, k.allowed);
  assert.equal([r.policy, r.iterations, r.cpuTimeNs, r.maxGapCpu, r.wakeups], [-1, 0, 0, -1, 0]);
  assert.equal(r.cpus, []);
  assert.equal(r.phases, []);
  assert.is(r.wakeLatencyNs, null);
});

test("toWorkerReport: a good report is taken, the agent's facts added", () => {
  const raw = goodRaw();
  const k = known(3, 4000, { cgroup: 'io', work: 'sleepy', stopPhase: null });
  const r = toWorkerReport(raw, k);
  assert.is(r.error, null);
  assert.is(r.pid, 4242, 'the pid the worker reports');
  for (const f of [
    'iterations',
    'cpuTimeNs',
    'wallNs',
    'voluntarySwitches',
    'involuntarySwitches',
    'migrations',
    'maxGapNs',
    'maxGapAtNs',
    'maxGapCpu',
    'wakeups',
    'policy',
  ] as const) {
    assert.is(r[f], raw[f], f);
  }
  assert.equal(r.cpus, raw.cpus);
  assert.equal(r.phases, raw.phases);
  assert.equal(r.wakeLatencyNs, raw.wakeLatencyNs);
  assert.is(r.cgroup, 'io');
  assert.equal(r.allowed, k.allowed);
  assert.is(r.stopPhase, null);
  // a worker's own error is kept (bounded); a non-string one is replaced
  assert.is(toWorkerReport({ ...raw, error: 'cgroup /x: No such file' }, k).error, 'cgroup /x: No such file');
  assert.is(toWorkerReport({ ...raw, error: 'e'.repeat(600) }, k).error, 'e'.repeat(500));
  assert.is(toWorkerReport({ ...raw, error: { code: 1 } }, k).error, 'the worker reported an error');
  // a bad pid in the report keeps the known one
  assert.is(toWorkerReport({ ...raw, pid: -5 }, k).pid, 4000);
  assert.is(toWorkerReport({ ...raw, wakeLatencyNs: null }, k).wakeLatencyNs, null);
  assert.is(toWorkerReport({ ...raw, maxGapCpu: -1 }, k).maxGapCpu, -1);
});

test('toWorkerReport: each garbage field is named in the error; nothing of the report is kept', () => {
  const k = known(3, 4000);
  const cases: [string, unknown][] = [
    ['iterations', -1],
    ['iterations', 1.5],
    ['iterations', '284'],
    ['cpuTimeNs', NaN],
    ['wallNs', null],
    ['voluntarySwitches', 2 ** 53],
    ['involuntarySwitches', undefined],
    ['migrations', -2],
    ['maxGapNs', Infinity],
    ['maxGapAtNs', {}],
    ['wakeups', []],
    ['index', 4],
    ['index', '3'],
    ['policy', 0.5],
    ['policy', '7'],
    ['maxGapCpu', -2],
    ['maxGapCpu', 4096],
    ['cpus', [{ cpu: -1, ns: 1 }]],
    ['cpus', [{ cpu: 4096, ns: 1 }]],
    ['cpus', 'all'],
    ['cpus', Array.from({ length: 4097 }, () => ({ cpu: 0, ns: 0 }))],
    ['phases', [{ phase: 1, iterations: -1, cpus: [] }]],
    ['phases', [{ phase: 1, iterations: 1 }]],
    ['phases', [null]],
    ['phases', Array.from({ length: 1025 }, () => ({ phase: 1, iterations: 0, cpus: [] }))],
    ['wakeLatencyNs', { samples: 1, p50: 1, p99: -1, max: 1 }],
    ['wakeLatencyNs', 'fast'],
    ['wakeLatencyNs', undefined],
  ];
  for (const [field, value] of cases) {
    const raw = { ...goodRaw(), [field]: value };
    if (value === undefined) delete raw[field];
    const r = toWorkerReport(raw, k);
    assert.is(r.error, `worker 3's report has a bad ${field}`, `${field}=${JSON.stringify(value)}`);
    assert.is(r.iterations, 0, field);
    assert.equal(r.phases, [], field);
    assert.is(r.pid, 4000, field);
  }
});

test.run();
