// The stall check and the monitor summary, on hand-made monitor timelines; the capture view's
// dotted paths and their errors.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mergeThresholds, stall } from '../../src/test/checks/index.js';
import { emptyTimeline, thinTimeline, type CpuTick, type MonitorTimeline } from '../../src/cell/monitor-session.js';
import { monitorLines, summarizeTimeline } from '../../src/cell/monitor-summary.js';
import { Snapshot, SnapshotPathError } from '../../src/test-api/snapshot.js';
import { StealHistory } from '../../src/monitor/steal-history.js';

const cpu = (c: number, o: Partial<CpuTick> = {}): CpuTick => ({
  cpu: c,
  nr: 1,
  cfs: 0,
  scx: 1,
  dsq: 0,
  clockMs: 1,
  pid: 10 + c,
  comm: 'w',
  policy: 7,
  runnable: 0,
  waitMs: null,
  waitPid: null,
  ...o,
});

function timeline(samples: { t: number; cpus: CpuTick[] }[]): MonitorTimeline {
  const tl = emptyTimeline(100, null);
  tl.samples = samples.map((s) => ({ t: s.t, scx: 'enabled', ops: 'ktstr', cpus: s.cpus }));
  return tl;
}

test('a task waiting past the bound fails stall once, with its pid, CPU and longest wait', () => {
  const tl = timeline([
    { t: 6100, cpus: [cpu(0), cpu(1), cpu(2, { nr: 2, runnable: 1, waitMs: 4670, waitPid: 83 })] },
    { t: 6300, cpus: [cpu(0), cpu(1), cpu(2, { nr: 2, runnable: 1, waitMs: 4870, waitPid: 83 })] },
    { t: 6400, cpus: [cpu(0, { runnable: 1, waitMs: 150, waitPid: 90 }), cpu(1), cpu(2)] },
  ]);
  const j = stall(tl, mergeThresholds());
  assert.is(j.verdict.passed, false);
  assert.equal(j.verdict.failures, [
    'stall: pid 83 runnable on cpu 2 for 4.87 s without running (max 2.00 s; host monitor, 6.3 s into the run)',
  ]);
  assert.is(j.verdict.figures.longestWaitMs, 4870);
  assert.is(
    stall(tl, mergeThresholds({ stall: { maxRunnableMs: 5000 } })).verdict.passed,
    true,
    'under a raised bound it passes',
  );
  const off = stall(tl, mergeThresholds({ stall: { enabled: false } }));
  assert.is(off.verdict.passed, true);
  assert.match(off.verdict.skipped ?? '', /off/);
});

test('steal is left out of a wait: counted from the last sample before it began, named in the line', () => {
  const h = new StealHistory();
  // jiffies at HZ 1000; steal in ns: 40 ms of steal by jiffy 1100, 700 ms by jiffy 2000
  h.record(0, 1000, 0);
  h.record(0, 1100, 40e6);
  h.record(0, 2000, 700e6);
  assert.is(h.stolenMsSince(0, 1150, 900e6), 860, 'from the sample at 1100, the last one before 1150');
  assert.is(h.stolenMsSince(0, 500, 900e6), 900, 'older than every sample: the oldest stands in');
  assert.is(h.stolenMsSince(1, 500, 900e6), 0, 'a CPU without samples: nothing left out');
  for (let i = 0; i < 700; i++) h.record(2, 10_000 + i, i * 1e6);
  assert.is(h.stolenMsSince(2, 0, 699e6), 599, 'bounded: only the last 600 samples are kept');

  const tl = timeline([
    { t: 9000, cpus: [cpu(0, { nr: 2, runnable: 1, waitMs: 2600, waitStolenMs: 1250, waitPid: 7 })] },
    { t: 9100, cpus: [cpu(1, { nr: 2, runnable: 1, waitMs: 1900, waitStolenMs: 3000, waitPid: 8 })] },
  ]);
  const j = stall(tl, mergeThresholds());
  assert.equal(j.verdict.failures, [
    'stall: pid 7 runnable on cpu 0 for 2.60 s without running (max 2.00 s; host monitor, 9.0 s into the run; 1.25 s more while the host did not run the vCPU, not counted)',
  ]);
});

test('samples taken while the scheduler is switched on or off are not judged', () => {
  const tl = timeline([
    { t: 5000, cpus: [cpu(0), cpu(3, { nr: 2, runnable: 1, waitMs: 2400, waitPid: 1 })] },
    { t: 5100, cpus: [cpu(0), cpu(3, { nr: 2, runnable: 1, waitMs: 2450, waitPid: 1 })] },
    { t: 5200, cpus: [cpu(0, { runnable: 1, waitMs: 120, waitPid: 40 }), cpu(3)] },
  ]);
  tl.samples[0].scx = 'disabling';
  tl.samples[1].scx = 'enabling';
  const j = stall(tl, mergeThresholds());
  assert.is(j.verdict.passed, true, JSON.stringify(j.verdict.failures));
  assert.is(j.verdict.figures.longestWaitMs, 120);
  tl.samples[1].scx = 'enabled';
  assert.is(stall(tl, mergeThresholds()).verdict.passed, false, 'the same wait while enabled fails');
});

test('no sched_ext tasks, no samples, no monitor: skipped with the reason', () => {
  const eevdf = timeline([{ t: 0, cpus: [cpu(0, { scx: 0 }), cpu(1, { scx: 0 })] }]);
  assert.match(stall(eevdf, mergeThresholds()).verdict.skipped ?? '', /no sched_ext tasks/);
  assert.match(stall(undefined, mergeThresholds()).verdict.skipped ?? '', /no host monitor samples/);
  assert.match(
    stall(emptyTimeline(100, 'monitor not started: x'), mergeThresholds()).verdict.skipped ?? '',
    /monitor not started/,
  );
});

test('the summary: imbalance, DSQ depth, longest wait, exit info and topology lines', () => {
  const tl = timeline([
    { t: 0, cpus: [cpu(0, { nr: 4, dsq: 7 }), cpu(1, { nr: 1, runnable: 2, waitMs: 300, waitPid: 5 })] },
  ]);
  tl.exit = {
    kind: 1025,
    kindName: 'ERROR_BPF',
    exitCode: 0,
    reason: 'scx_bpf_error',
    message: 'dispatch: invalid DSQ 0x42',
    dump: 'line one\nline two',
    backtrace: ['scx_bpf_error_bstr+0x5a', 'ktstr_dispatch+0x4c [bpf]', 'bpf__sched_ext_ops_dispatch+0x4b'],
  };
  tl.topology = { ok: false, problems: ['cpu 0: no sched domain spans its LLC 0-1'] };
  const m = summarizeTimeline(tl);
  assert.is(m.maxImbalance, 4);
  assert.is(m.maxLocalDsqDepth, 7);
  assert.equal(m.longestWait, { pid: 5, cpu: 1, ms: 300 });
  const lines = monitorLines(m).join('\n');
  assert.match(lines, /max_imbalance=4\.0 max_dsq_depth=7 longest_runnable_wait=0\.30s \(pid 5, cpu 1\)/);
  assert.match(lines, /kind 1025 ERROR_BPF, code 0: scx_bpf_error — dispatch: invalid DSQ 0x42/);
  assert.match(lines, /sched_ext dump \(head\):\n {2}line one\n {2}line two/);
  assert.match(lines, /topology: cpu 0: no sched domain spans its LLC 0-1/);
  const stalled = monitorLines({ ...m, exit: { ...m.exit!, kind: 1026, kindName: 'ERROR_STALL' } }).join('\n');
  assert.not.match(stalled, /failing callback/, "a stall's backtrace names no culprit");
  assert.match(stalled, /exit backtrace: scx_bpf_error_bstr/);
  assert.match(
    lines,
    /failing callback: ktstr_dispatch \(from the exit's backtrace: scx_bpf_error_bstr\+0x5a <- ktstr_dispatch\+0x4c \[bpf\] <- bpf__sched_ext_ops_dispatch\+0x4b\)/,
  );
});

test('a capture view: globals and maps by dotted path; a missing component is named with what exists', () => {
  const snap = new Snapshot({
    label: 'x',
    atMs: 5,
    pauseMs: 0.4,
    cpus: [],
    scx: { state: 'enabled', ops: 'ktstr' },
    notes: [],
    globals: { nr_cpus: 4, stats: { dispatched: 10, per_llc: [1, 2] } },
    maps: [
      {
        name: 'task_ctx',
        type: 'hash',
        entries: [
          { key: 7, value: { tid: 7, weight: 100 } },
          { key: 9, value: { tid: 9, weight: 400 } },
        ],
      },
    ],
  });
  assert.is(snap.var('nr_cpus'), 4);
  assert.is(snap.var('stats.per_llc.1'), 2);
  assert.is(
    snap
      .map('task_ctx')
      .find((e) => e.get('tid') === 9)
      ?.get('weight'),
    400,
  );
  assert.is(snap.map('task_ctx').size, 2);
  assert.throws(
    () => snap.var('stats.dispatchd'),
    (e: Error) =>
      e instanceof SnapshotPathError &&
      /globals\.stats has no field "dispatchd" \(fields: dispatched, per_llc\)/.test(e.message),
  );
  assert.throws(() => snap.var('nr_cpus.x'), /globals\.nr_cpus is number, not a struct/);
  assert.throws(() => snap.var('stats.per_llc.5'), /has no element "5"/);
  assert.throws(() => snap.map('nope'), /no map "nope" in the capture \(maps: task_ctx\)/);
});

test("a passed cell's timeline thinned evenly: first and last kept, the rest counted as dropped", () => {
  const tl = timeline(Array.from({ length: 1000 }, (_, i) => ({ t: i * 100, cpus: [cpu(0)] })));
  const thin = thinTimeline(tl, 120);
  assert.is(thin.samples.length, 120);
  assert.is(thin.samples[0].t, 0);
  assert.is(thin.samples.at(-1)!.t, 99_900);
  assert.is(thin.dropped, 880);
  assert.ok(
    thin.samples.every((s, i) => i === 0 || s.t > thin.samples[i - 1].t),
    'in order',
  );
  assert.is(thinTimeline(thin, 120), thin, 'a short timeline stays as it is');
});

test.run();
