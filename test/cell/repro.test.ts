// The auto-repro's report from a repro cell's monitor timeline: a BPF error names the
// innermost BPF frame of the exit backtrace; a watchdog stall names the scheduler's dispatch
// callback (known from the program list even when BPF stats were off); which cells get one.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emptyTimeline, type CpuTick } from '../../src/cell/monitor-session.js';
import { reproLines, reproReport, reproSpec, wantsRepro } from '../../src/cell/repro.js';
import type { CellResult } from '../../src/cell/result.js';
import type { CellSpec } from '../../src/cell/run-cell.js';

const tick = (cpu: number, waitMs: number | null): CpuTick => ({
  cpu,
  nr: 1,
  cfs: 0,
  scx: 1,
  dsq: 0,
  clockMs: 1,
  pid: 9,
  comm: 'w',
  policy: 7,
  runnable: waitMs === null ? 0 : 1,
  waitMs,
  waitPid: waitMs === null ? null : 83,
});

function cell(kind: number, kindName: string, backtrace: string[], states: string[]): CellResult {
  const m = emptyTimeline(20, null);
  m.programs = ['ktstr_select_cpu', 'ktstr_enqueue', 'ktstr_dispatch', 'ktstr_tick'];
  m.samples = states.map((scx, i) => ({ t: i * 20, scx, ops: 'ktstr', cpus: [tick(0, 4000 + i * 20), tick(1, null)] }));
  m.exit = {
    kind,
    kindName,
    exitCode: 0,
    reason: kind === 1026 ? 'runnable task stall' : 'scx_bpf_error',
    message: null,
    dump: null,
    backtrace,
  };
  return {
    id: 'sweep/x (repro)',
    scheduler: 'x',
    kernel: 'k',
    topology: 't',
    passed: false,
    failure: { kind: 'crash', message: 'EXIT: ... (kind 1025)' },
    schedulerStatus: '',
    programs: [],
    guestPrograms: [],
    schedulerLog: '',
    workers: [],
    consoleTail: '',
    phases: {},
    wallMs: 21_000,
    hostRssBytes: null,
    monitor: m,
  };
}

test('a BPF error: the innermost BPF frame of the saved backtrace', () => {
  const r = reproReport(
    cell(
      1025,
      'ERROR_BPF',
      ['scx_bpf_error_bstr+0x66', 'ktstr_enqueue+0x4c [bpf]', 'enqueue_task_scx+0x1a'],
      ['enabled', 'enabled', 'disabling'],
    ),
  );
  assert.is(r.reproduced, true);
  assert.is(r.failingCallback, 'ktstr_enqueue');
  assert.match(r.how, /innermost BPF program/);
  assert.is(r.sequence.length, 3);
  assert.match(reproLines(r).join('\n'), /: reproduced\nfailing callback: ktstr_enqueue — /);
});

test('a stall: the dispatch callback, although no sample had run counts, not a bystander frame', () => {
  const r = reproReport(
    cell(
      1026,
      'ERROR_STALL',
      ['scx_tick+0x85', 'ktstr_tick+0x10 [bpf]'],
      ['enabled', 'enabled', 'enabled', 'disabled'],
    ),
  );
  assert.is(r.failingCallback, 'ktstr_dispatch');
  assert.match(
    r.how,
    /^it ran 0 times in the 0\.06s before the watchdog while pid 83 waited 4\.06s on cpu 0 and never dispatched it$/,
  );
});

test("a stall whose exit info no sample caught: the EXIT line's kind says stall", () => {
  const c = cell(1026, 'ERROR_STALL', [], ['enabled', 'enabled', 'enabled', 'disabled']);
  c.monitor!.exit = null;
  c.exitMessage = 'EXIT: runnable task stall: watchdog failed to check in for 5.004s (kind 1026)';
  assert.is(reproReport(c).failingCallback, 'ktstr_dispatch');
  c.exitMessage = 'EXIT: scx_bpf_error: boom (kind 1025)';
  assert.is(reproReport(c).failingCallback, null, 'another error without its exit info names nothing');
});

test('which cells get a repro, and the repro cell', () => {
  assert.is(wantsRepro(cell(1025, 'ERROR_BPF', [], ['enabled'])), true);
  const clean = cell(64, 'UNREG', [], ['enabled']);
  clean.failure = { kind: 'dispatch', message: 'no progress' };
  assert.is(wantsRepro(clean), false, 'a clean exit is no crash');
  assert.is(wantsRepro({ ...cell(1025, 'ERROR_BPF', [], []), passed: true }), false);
  const spec = { id: 'sweep/a', bundleDir: '/tmp/out', monitorIntervalMs: 100 } as unknown as CellSpec;
  const again = reproSpec(spec);
  assert.is(again.id, 'sweep/a (repro)');
  assert.is(again.monitorIntervalMs, 20);
  assert.is(again.monitorProgramEvery, 1);
  assert.is(again.bundleDir, undefined, 'no bundle of its own');
});

test.run();
