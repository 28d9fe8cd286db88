// ktstr-worker (native/worker/), run natively on this host: the spec file and its errors, the
// stdin/stdout protocol (ready, start, phase, stop, kill, EOF), the reports' shape and the
// measurement rules (CPU time bounded by wall × CPUs, phases, affinity, latency percentiles),
// a failed cgroup join that spares the other workers, no process left behind, and the time to
// get 256 workers parked (printed). docs/worker-protocol.md is the contract tested here.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WorkerReport } from '../../src/test-api/record.js';
import { repoPath } from '../helpers/repo.js';

/** What the binary writes: WorkerReport without the agent's fields. */
type Report = Omit<WorkerReport, 'cgroup' | 'allowed' | 'startPhase' | 'stopPhase'>;

const BIN = repoPath('native', 'worker', 'build', 'ktstr-worker');
const ONLINE_CPUS = cpus().length;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let tmp = '';
test.before(() => {
  const make = spawnSync('make', ['-s', '-C', repoPath('native', 'worker')], { encoding: 'utf8' });
  assert.is(make.status, 0, `make -C native/worker failed:\n${make.stdout}${make.stderr}`);
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-worker-'));
});
test.after(() => {
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

let runs = 0;

/** A launcher on a spec of `workers` lines (the dir line is added), talked to line by line. */
class Launcher {
  readonly dir: string;
  readonly spec: string;
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  stderr = '';
  private lines: string[] = [];
  private waiters: (() => void)[] = [];

  constructor(workers: string[]) {
    this.dir = join(tmp, `run${++runs}`);
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    this.spec = join(this.dir, 'spec');
    writeFileSync(this.spec, [`dir ${this.dir}`, ...workers, ''].join('\n'));
    this.child = spawn(BIN, [this.spec]);
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => {
      this.stderr += s;
    });
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** The next stdout line starting with `word`, within `ms`. */
  async line(word: string, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.lines.findIndex((l) => l.split(' ')[0] === word);
      if (i >= 0) return this.lines.splice(0, i + 1)[i]!;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no '${word}' line within ${ms} ms (stdout: ${this.lines.join(' | ')}; stderr: ${this.stderr})`,
        );
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(Math.min(left, 100))]);
    }
  }

  send(command: string): void {
    this.child.stdin.write(`${command}\n`);
  }

  /** `ready <spawn_ns> <pid>...` parsed. */
  async ready(): Promise<{ spawnNs: number; pids: number[] }> {
    const [, ns, ...pids] = (await this.line('ready')).split(' ');
    return { spawnNs: Number(ns), pids: pids.map(Number) };
  }

  reports(): Report[] {
    return readdirSync(this.dir)
      .filter((f) => /^\d+\.json$/.test(f))
      .map((f) => JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as Report)
      .sort((a, b) => a.index - b.index);
  }
}

/** ready, start, run `ms` (with `phase N` commands at the given offsets), stop: the reports. */
async function runFor(
  workers: string[],
  ms: number,
  phases: [atMs: number, phase: number][] = [],
): Promise<{ reports: Report[]; pids: number[] }> {
  const l = new Launcher(workers);
  const { pids } = await l.ready();
  l.send('start');
  const started = await l.line('started');
  assert.match(started, /^started \d+$/);
  let elapsed = 0;
  for (const [at, n] of phases) {
    await sleep(at - elapsed);
    elapsed = at;
    l.send(`phase ${n}`);
    assert.is(await l.line('phase'), `phase ${n}`);
  }
  await sleep(ms - elapsed);
  l.send('stop');
  await l.line('stopped');
  assert.is(await l.exited, 0, l.stderr);
  assertGone(pids);
  return { reports: l.reports(), pids };
}

function assertGone(pids: number[]): void {
  for (const pid of pids) assert.not.ok(existsSync(`/proc/${pid}`), `worker pid ${pid} still exists`);
}

const isInt = (x: unknown): boolean => Number.isSafeInteger(x);

/** Every field of a report, with the types and invariants the protocol promises. */
function checkShape(r: Report): void {
  const keys = [
    'index',
    'pid',
    'work',
    'policy',
    'nice',
    'iterations',
    'cpuTimeNs',
    'wallNs',
    'voluntarySwitches',
    'involuntarySwitches',
    'migrations',
    'cpus',
    'phases',
    'maxGapNs',
    'maxGapAtNs',
    'maxGapCpu',
    'wakeups',
    'wakeLatencyNs',
    'error',
  ];
  assert.equal(Object.keys(r).sort(), [...keys].sort(), `report ${r.index}: its fields`);
  for (const k of [
    'index',
    'pid',
    'policy',
    'nice',
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
  ] as const) {
    assert.ok(isInt(r[k]), `report ${r.index}: ${k} is an integer (${String(r[k])})`);
  }
  const sortedCpus = (list: { cpu: number; ns: number }[], what: string): void => {
    for (const c of list) assert.ok(isInt(c.cpu) && isInt(c.ns) && c.ns > 0, `${what}: ${JSON.stringify(c)}`);
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1]!.cpu < list[i]!.cpu, `${what}: sorted by cpu`);
  };
  sortedCpus(r.cpus, `report ${r.index} cpus`);
  for (const p of r.phases) sortedCpus(p.cpus, `report ${r.index} phase ${p.phase}`);
  assert.is(
    r.phases.reduce((n, p) => n + p.iterations, 0),
    r.iterations,
    `report ${r.index}: phase iterations add up`,
  );
  const lat = r.wakeLatencyNs;
  if (lat !== null) {
    assert.ok(
      lat.samples <= r.wakeups && lat.samples <= 16384,
      `report ${r.index}: samples ${lat.samples} of ${r.wakeups} wakeups`,
    );
    assert.ok(
      lat.p50 <= lat.p99 && lat.p99 <= lat.max,
      `report ${r.index}: p50 ${lat.p50} <= p99 ${lat.p99} <= max ${lat.max}`,
    );
  }
  assert.ok(r.error === null || typeof r.error === 'string');
}

/** The fenced blocks of docs/worker-protocol.md, in order. */
function docBlocks(): string[] {
  const doc = readFileSync(repoPath('docs', 'worker-protocol.md'), 'utf8');
  return [...doc.matchAll(/```\w*\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test('the examples of docs/worker-protocol.md: its spec runs, its report has the shape of a real one', async () => {
  const spec = docBlocks().find((b) => b.startsWith('dir '))!;
  // its dir is replaced; its cgroup does not exist here, and policy=ext needs a sched_ext kernel
  const workers = spec.split('\n').filter((l) => l.startsWith('worker '));
  const { reports } = await runFor(workers, 200);
  assert.equal(
    reports.map((r) => r.index),
    [0, 1, 2, 3, 4, 5],
  );
  for (const r of reports) checkShape(r);
  assert.ok(
    reports[0]!.error !== null && reports[0]!.iterations === 0,
    'worker 0 could not join /sys/fs/cgroup/ktstr/a (or set ext)',
  );
  for (const r of reports.slice(1)) assert.is(r.error, null, `worker ${r.index}`);
  const example = JSON.parse(docBlocks().find((b) => b.startsWith('{"index"'))!) as Report;
  checkShape(example);
  assert.is(example.work, 'sleepy');
});

test('4 spinners: a report each, CPU time > 0 and at most wall × online CPUs', async () => {
  const { reports, pids } = await runFor(
    [0, 1, 2, 3].map((i) => `worker index=${i} cgroup=- work=spin`),
    300,
  );
  assert.is(reports.length, 4);
  assert.equal(
    reports.map((r) => r.pid),
    pids,
    'pids of the ready line, by index',
  );
  let cpuSum = 0;
  for (const r of reports) {
    checkShape(r);
    assert.is(r.work, 'spin');
    assert.is(r.error, null);
    assert.is(r.policy, 0);
    assert.ok(r.cpuTimeNs > 0 && r.iterations > 0, `worker ${r.index}: ${r.cpuTimeNs} ns, ${r.iterations} iterations`);
    assert.ok(r.wallNs >= 250e6 && r.wallNs < 5e9, `worker ${r.index}: wall ${r.wallNs}`);
    assert.is(r.wakeLatencyNs, null);
    assert.is(r.wakeups, 0);
    cpuSum += r.cpuTimeNs;
  }
  const wall = Math.max(...reports.map((r) => r.wallNs));
  assert.ok(cpuSum <= wall * ONLINE_CPUS * 1.1, `CPU ${cpuSum} ns <= wall ${wall} ns × ${ONLINE_CPUS} CPUs × 1.1`);
});

test('phase 2 after 150 ms: both phases have iterations', async () => {
  const { reports } = await runFor(['worker index=0 work=spin', 'worker index=1 work=yield'], 400, [[150, 2]]);
  for (const r of reports) {
    checkShape(r);
    assert.equal(
      r.phases.map((p) => p.phase),
      [1, 2],
      `worker ${r.index}: ${JSON.stringify(r.phases)}`,
    );
    for (const p of r.phases)
      assert.ok(
        p.iterations > 0 && p.cpus.length > 0,
        `worker ${r.index} phase ${p.phase}: ${p.iterations} iterations`,
      );
  }
});

test('affinity=0: every CPU a worker ran on is CPU 0', async () => {
  if (ONLINE_CPUS < 2) {
    console.log('  (1 online CPU: affinity cannot be told from no affinity; skipped)');
    return;
  }
  const { reports } = await runFor(
    ['worker index=0 work=spin affinity=0', 'worker index=1 work=yield affinity=0'],
    200,
  );
  for (const r of reports) {
    checkShape(r);
    assert.ok(r.cpus.length > 0);
    assert.equal(
      r.cpus.map((c) => c.cpu),
      [0],
      `worker ${r.index}: ${JSON.stringify(r.cpus)}`,
    );
    assert.is(r.migrations, 0);
  }
});

test('sleepy, pingpong, futex, burst and mixed measure wakeup latencies; forkexec iterates', async () => {
  const { reports } = await runFor(
    [
      'worker index=0 work=sleepy run_us=100 sleep_us=900 policy=normal',
      'worker index=1 work=pingpong pair=0',
      'worker index=2 work=pingpong pair=0',
      'worker index=3 work=futex fanout=5 role=waker',
      'worker index=4 work=futex fanout=5 role=waiter',
      'worker index=5 work=futex fanout=5 role=waiter',
      'worker index=6 work=forkexec',
      'worker index=7 work=burst burst_ms=5 idle_ms=5',
      'worker index=8 work=mixed',
    ],
    400,
  );
  assert.is(reports.length, 9);
  for (const r of reports) {
    checkShape(r);
    assert.is(r.error, null, `worker ${r.index}: ${r.error}`);
    assert.ok(r.iterations > 0, `worker ${r.index} (${r.work}) iterated`);
    if (r.index === 3 || r.index === 6) {
      assert.is(r.wakeLatencyNs, null, `worker ${r.index} (${r.work}) measures no wakeups`);
      continue;
    }
    const lat = r.wakeLatencyNs!;
    assert.ok(lat !== null && lat.samples > 0, `worker ${r.index} (${r.work}) latency ${JSON.stringify(lat)}`);
    assert.ok(r.maxGapNs >= lat.max || r.maxGapNs > 0, `worker ${r.index}: a gap recorded`);
  }
  // pingpong: an iteration is one receive, so the two sides are within one token of each other
  assert.ok(Math.abs(reports[1]!.iterations - reports[2]!.iterations) <= 1, 'pingpong sides alternate');
  // a waiter's iteration is one wake: at most the waker's rounds
  for (const i of [4, 5])
    assert.ok(reports[i]!.iterations <= reports[3]!.iterations + 1, `waiter ${i} <= waker's rounds`);
});

test('a cgroup that does not exist: that worker has an error and no work, the others run', async () => {
  const { reports } = await runFor(
    [
      'worker index=0 work=spin',
      `worker index=1 work=spin cgroup=${join(tmp, 'no-such-cgroup')}`,
      'worker index=2 work=sleepy',
    ],
    200,
  );
  assert.is(reports.length, 3);
  for (const r of reports) checkShape(r);
  assert.match(reports[1]!.error ?? '', /no-such-cgroup/);
  assert.is(reports[1]!.iterations, 0);
  for (const i of [0, 2]) {
    assert.is(reports[i]!.error, null);
    assert.ok(reports[i]!.iterations > 0);
  }
});

test('malformed specs: exit 2 before anything starts, the message names the line', async () => {
  const cases: [string[], RegExp][] = [
    [['worker index=0 work=spin', 'worker index=1 work=crunch'], /:3: unknown work kind 'crunch'/],
    [['worker index=0 work=spin affinity=0-x'], /:2: affinity='0-x'/],
    [['worker index=0 work=spin affinity=3-1'], /:2: affinity='3-1'/],
    [['worker index=0 work=spin speed=9'], /:2: unknown key 'speed'/],
    [['worker index=0 work=spin nice=20'], /:2: nice='20'/],
    [['worker index=0 work=pingpong pair=1'], /:2: pingpong pair=1 needs exactly two workers/],
  ];
  for (const [workers, message] of cases) {
    const l = new Launcher(workers);
    assert.is(await l.exited, 2, `exit 2 for ${workers.join(' / ')}`);
    assert.match(l.stderr, message);
    assert.not.ok(existsSync(join(l.dir, 'control')), 'nothing started: no control file');
  }
});

async function endWith(how: 'kill' | 'eof'): Promise<void> {
  const l = new Launcher([0, 1, 2, 3, 4, 5].map((i) => `worker index=${i} work=${i % 2 ? 'sleepy' : 'spin'}`));
  const { pids } = await l.ready();
  l.send('start');
  await l.line('started');
  await sleep(100);
  if (how === 'kill') l.send('kill');
  else l.child.stdin.end();
  await l.line('stopped');
  assert.is(await l.exited, 0, l.stderr);
  assertGone(pids);
  const left = spawnSync('pgrep', ['-f', l.spec], { encoding: 'utf8' });
  assert.is(left.status, 1, `no process left running on ${l.spec}: ${left.stdout}`);
  assert.is(
    l.reports().length,
    how === 'kill' ? 0 : 6,
    how === 'kill' ? 'killed: no reports' : 'EOF is stop: every report',
  );
}

test('kill ends every worker at once (no reports)', () => endWith('kill'));
test('EOF on stdin is stop: every worker reports and ends', () => endWith('eof'));

test('256 workers reach ready (spawn time printed)', async () => {
  const l = new Launcher(
    Array.from({ length: 256 }, (_, i) => `worker index=${i} work=${i % 4 === 3 ? 'sleepy' : 'spin'}`),
  );
  const { spawnNs, pids } = await l.ready();
  console.log(`  256 workers ready in ${(spawnNs / 1e6).toFixed(1)} ms (${ONLINE_CPUS} online CPUs)`);
  assert.is(pids.length, 256);
  assert.is(new Set(pids).size, 256);
  // natively a few hundred ms on a loaded 2-CPU VM; the bound leaves room for a busy host
  assert.ok(spawnNs < 3e9, `spawn ${spawnNs} ns`);
  l.send('start');
  await l.line('started');
  await sleep(100);
  l.send('stop');
  await l.line('stopped', 30_000);
  assert.is(await l.exited, 0, l.stderr);
  assertGone(pids);
  assert.is(l.reports().length, 256);
});

test.run();
