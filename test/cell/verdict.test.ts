// The verdict rules for one cell, on plain facts: each failure kind, and a pass.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitMessage, judgeCell, loadLog, verifierMessage, verifierSummary } from '../../src/cell/verdict.js';
import type { AgentFacts } from '../../src/guest/plan.js';

const healthy = (): AgentFacts => ({
  schedExt: true,
  setupError: null,
  verifyMs: 300,
  attachMs: 500,
  stateAtAttach: 'enabled',
  ops: 'ktstr',
  endedBeforeAttach: null,
  probe: {
    workers: [0, 1, 2, 3].map((cpu) => ({ cpu, iterations: 100, cpuTimeNs: 1e8, policy: 7 })),
    ms: 2000,
    stateAfter: 'enabled',
    schedulerAlive: true,
  },
  stop: { end: { code: 0, signal: null }, timedOut: false, stateAfter: 'disabled', ms: 100 },
  guestPrograms: [],
  output: 'EXIT: unregistered from user space (kind 64)\n',
  outputDropped: 0,
  test: null,
});
const obs = (facts: AgentFacts | null, reason = 'exit') => ({
  facts,
  vmEnd: { reason, detail: 'd' },
  agentError: null,
  consoleLine: null,
});

const LOG = `libbpf: prog 'ktstr_dispatch': BPF program load failed: Permission denied
-- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
; *p = (int)acc; @ main.bpf.c:464
192: (63) *(u32 *)(r1 +0) = r2
R1 invalid mem access 'scalar'
processed 186 insns (limit 1000000) max_states_per_insn 0 total_states 7 peak_states 7 mark_read 0
-- END PROG LOAD LOG --
`;

test('a healthy cell passes', () => {
  const v = judgeCell(obs(healthy()));
  assert.ok(v.passed, JSON.stringify(v));
  assert.match(v.schedulerStatus, /ops ktstr/);
});

test('verify: the load log between the markers gives message and stats', () => {
  const f = healthy();
  Object.assign(f, {
    attachMs: null,
    verifyMs: null,
    stateAtAttach: 'disabled',
    probe: null,
    stop: null,
    endedBeforeAttach: { code: 1, signal: null },
    output: LOG,
  });
  const v = judgeCell(obs(f));
  assert.equal(v.failure, { kind: 'verify', message: "R1 invalid mem access 'scalar'" });
  assert.match(v.schedulerStatus, /NOT ATTACHED/);
  assert.equal(verifierSummary(loadLog(LOG)!), {
    processedInsns: 186,
    insnLimit: 1000000,
    maxStatesPerInsn: 0,
    totalStates: 7,
    peakStates: 7,
    markRead: 0,
  });
  assert.is(verifierMessage('0: (b7) r0 = 0\n'), 'the verifier rejected the program (no message in the log)');
});

test('attach: ended without a log, or never enabled', () => {
  const f = healthy();
  Object.assign(f, {
    attachMs: null,
    stateAtAttach: 'disabled',
    probe: null,
    stop: null,
    endedBeforeAttach: { code: 2, signal: null },
    output: 'usage\n',
  });
  assert.is(judgeCell(obs(f)).failure?.kind, 'attach');
  Object.assign(f, { endedBeforeAttach: null, stateAtAttach: 'enabling' });
  assert.match(judgeCell(obs(f)).failure!.message, /stayed "enabling"/);
});

test('dispatch: a stall ended by the watchdog, or a CPU without progress', () => {
  const f = healthy();
  f.probe!.stateAfter = 'disabled';
  f.probe!.schedulerAlive = false;
  f.output = 'EXIT: runnable task stall (watchdog failed to check in for 5001ms)\n';
  assert.equal(judgeCell(obs(f)).failure, {
    kind: 'dispatch',
    message: 'EXIT: runnable task stall (watchdog failed to check in for 5001ms)',
  });
  // the watchdog fired before the agent (starved too) ever read "enabled"
  const early = healthy();
  Object.assign(early, {
    attachMs: null,
    stateAtAttach: 'disabled',
    probe: null,
    stop: null,
    endedBeforeAttach: { code: 1, signal: null },
    output:
      'scx_ktstr: attached --stall\nEXIT: runnable task stall: watchdog failed to check in for 5.004s (kind 1026)\n',
  });
  assert.is(judgeCell(obs(early)).failure?.kind, 'dispatch');
  const g = healthy();
  g.probe!.workers[2].iterations = 0;
  assert.equal(judgeCell(obs(g)).failure, { kind: 'dispatch', message: 'no forward progress on CPU 2 in 2000 ms' });
});

test('crash: scx_bpf_error during the probe; not unregistered after stop', () => {
  const f = healthy();
  f.probe!.stateAfter = 'disabled';
  f.probe!.schedulerAlive = false;
  f.output = 'EXIT: scx_bpf_error (--crash-after 1 s reached) (kind 1024)\n';
  assert.equal(judgeCell(obs(f)).failure?.kind, 'crash');
  assert.match(judgeCell(obs(f)).failure!.message, /crash-after/);
  // attached (enable_seq moved) and crashed before the agent saw "enabled"
  const quick = healthy();
  Object.assign(quick, {
    stateAtAttach: 'disabled',
    probe: null,
    stop: null,
    endedBeforeAttach: { code: 1, signal: null },
    output: 'EXIT: scx_bpf_error: scx-ktstr: --crash-after 1 s reached (kind 1025)\n',
  });
  assert.equal(judgeCell(obs(quick)).failure, {
    kind: 'crash',
    message: 'EXIT: scx_bpf_error: scx-ktstr: --crash-after 1 s reached (kind 1025)',
  });
  const g = healthy();
  g.stop!.stateAfter = 'enabled';
  assert.is(judgeCell(obs(g)).failure?.kind, 'crash');
  assert.is(exitMessage('a\nEXIT: one\nEXIT: two\n'), 'EXIT: two');
});

test('guest and setup', () => {
  const v = judgeCell({
    facts: null,
    vmEnd: { reason: 'panic', detail: 'x' },
    agentError: null,
    consoleLine: 'Kernel panic - not syncing: sysrq triggered crash',
  });
  assert.equal(v.failure, {
    kind: 'guest',
    message: 'guest kernel panic: Kernel panic - not syncing: sysrq triggered crash',
  });
  assert.is(judgeCell(obs(null, 'timeout')).failure?.kind, 'guest');
  const f = healthy();
  f.setupError = 'kernel has no sched_ext (/sys/kernel/sched_ext is missing)';
  assert.equal(judgeCell(obs(f)).failure, { kind: 'setup', message: f.setupError });
});

test.run();
