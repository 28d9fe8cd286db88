// The verifier summary scanner (--stats) on the real fixtures, on concatenated logs, and
// under any chunking.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatStats, formatStatsJson, parseStats, StatsScanner, type ProgramStats } from '../../src/collapse/stats.js';
import { fixture, fixtures } from '../helpers/fixtures.js';

type Summary = Omit<ProgramStats, 'index' | 'line'>;

// values copied from the last lines of each log
const EXPECTED: Record<string, Summary> = {
  verify_loop: {
    processedInsns: 38,
    insnLimit: 1000000,
    maxStatesPerInsn: 0,
    totalStates: 4,
    peakStates: 4,
    markRead: 0,
    stackDepth: [16],
    verificationTimeUsec: 224,
  },
  no_loop: {
    processedInsns: 8,
    insnLimit: 1000000,
    maxStatesPerInsn: 0,
    totalStates: 0,
    peakStates: 0,
    markRead: 0,
    stackDepth: [0],
    verificationTimeUsec: 53,
  },
  bounded_loop_40: {
    processedInsns: 484,
    insnLimit: 1000000,
    maxStatesPerInsn: 4,
    totalStates: 9,
    peakStates: 9,
    markRead: 0,
    stackDepth: [8],
    verificationTimeUsec: 1846,
  },
  bounded_loop_40_fail: {
    processedInsns: 485,
    insnLimit: 1000000,
    maxStatesPerInsn: 4,
    totalStates: 9,
    peakStates: 9,
    markRead: 0,
    stackDepth: [16],
    verificationTimeUsec: 3179,
  },
  bounded_loop_400: {
    processedInsns: 4804,
    insnLimit: 1000000,
    maxStatesPerInsn: 4,
    totalStates: 60,
    peakStates: 60,
    markRead: 0,
    stackDepth: [8],
    verificationTimeUsec: 20096,
  },
  nested_loops: {
    processedInsns: 455,
    insnLimit: 1000000,
    maxStatesPerInsn: 2,
    totalStates: 10,
    peakStates: 10,
    markRead: 0,
    stackDepth: [8],
    verificationTimeUsec: 1591,
  },
  subprog_calls: {
    processedInsns: 165,
    insnLimit: 1000000,
    maxStatesPerInsn: 3,
    totalStates: 8,
    peakStates: 8,
    markRead: 0,
    stackDepth: [8, 0],
    verificationTimeUsec: 676,
  },
  bpf_for_iter: {
    processedInsns: 110,
    insnLimit: 1000000,
    maxStatesPerInsn: 2,
    totalStates: 10,
    peakStates: 15,
    markRead: 0,
    stackDepth: [8],
    verificationTimeUsec: 416,
  },
  bpf_loop_callback: {
    processedInsns: 69,
    insnLimit: 1000000,
    maxStatesPerInsn: 1,
    totalStates: 5,
    peakStates: 8,
    markRead: 0,
    stackDepth: [40, 0],
    verificationTimeUsec: 630,
  },
  branching_loop_40: {
    processedInsns: 1349,
    insnLimit: 1000000,
    maxStatesPerInsn: 13,
    totalStates: 40,
    peakStates: 20,
    markRead: 0,
    stackDepth: [0],
    verificationTimeUsec: 14331,
  },
  branching_loop_40_store: {
    processedInsns: 1978,
    insnLimit: 1000000,
    maxStatesPerInsn: 12,
    totalStates: 45,
    peakStates: 22,
    markRead: 0,
    stackDepth: [8],
    verificationTimeUsec: 21380,
  },
  may_goto_loop: {
    processedInsns: 3404,
    insnLimit: 1000000,
    maxStatesPerInsn: 65,
    totalStates: 265,
    peakStates: 104,
    markRead: 0,
    stackDepth: [16],
    verificationTimeUsec: 37451,
  },
  nested_branch_loops: {
    processedInsns: 1361,
    insnLimit: 1000000,
    maxStatesPerInsn: 10,
    totalStates: 44,
    peakStates: 24,
    markRead: 0,
    stackDepth: [8],
    verificationTimeUsec: 13264,
  },
  // level-1 logs have no "verification time" / "stack depth" lines
  verify_loop_level1: {
    processedInsns: 38,
    insnLimit: 1000000,
    maxStatesPerInsn: 0,
    totalStates: 4,
    peakStates: 4,
    markRead: 0,
    stackDepth: null,
    verificationTimeUsec: null,
  },
  bounded_loop_40_level1: {
    processedInsns: 484,
    insnLimit: 1000000,
    maxStatesPerInsn: 4,
    totalStates: 9,
    peakStates: 9,
    markRead: 0,
    stackDepth: null,
    verificationTimeUsec: null,
  },
  bounded_loop_40_fail_level1: {
    processedInsns: 485,
    insnLimit: 1000000,
    maxStatesPerInsn: 4,
    totalStates: 9,
    peakStates: 9,
    markRead: 0,
    stackDepth: null,
    verificationTimeUsec: null,
  },
};

function summary(p: ProgramStats): Summary {
  const { index: _i, line: _l, ...rest } = p;
  return rest;
}

test('every fixture: one summary with the values of its last lines', () => {
  const all = fixtures();
  assert.equal(all.map((f) => f.name).sort(), Object.keys(EXPECTED).sort());
  for (const fx of all) {
    const programs = parseStats(fx.bytes);
    assert.is(programs.length, 1, fx.name);
    assert.equal(summary(programs[0]), EXPECTED[fx.name], fx.name);
    assert.is(programs[0].index, 1);
    // the summary is the last line of every fixture
    assert.is(
      programs[0].line,
      fx.bytes
        .toString('latin1')
        .split('\n')
        .filter((_, i, a) => i < a.length - 1 || a[i] !== '').length,
      fx.name,
    );
  }
});

test('concatenated logs: one summary per program, in order, fields not leaking', () => {
  const names = ['bounded_loop_40', 'verify_loop_level1', 'subprog_calls', 'no_loop', 'bounded_loop_400'];
  const parts = names.map((n) => fixture(n).bytes);
  const programs = parseStats(Buffer.concat(parts));
  assert.equal(
    programs.map(summary),
    names.map((n) => EXPECTED[n]),
  );
  assert.equal(
    programs.map((p) => p.index),
    [1, 2, 3, 4, 5],
  );
  // line numbers are absolute in the concatenation
  let total = 0;
  const ends = parts.map((p) => (total += p.toString('latin1').split('\n').length - 1));
  assert.equal(
    programs.map((p) => p.line),
    ends,
  );
  // verify_loop_level1 follows a level-7 log: it must not inherit that log's time/stack
  assert.is(programs[1].verificationTimeUsec, null);
  assert.is(programs[1].stackDepth, null);
});

test('chunking: 1-byte and odd-sized chunks give the same result', () => {
  const input = Buffer.concat(fixtures().map((f) => f.bytes));
  const whole = parseStats(input);
  assert.is(whole.length, 16);
  for (const size of [1, 3, 4096]) {
    const scanner = new StatsScanner();
    for (let at = 0; at < input.length; at += size) scanner.feed(input.subarray(at, at + size));
    assert.equal(scanner.finish(), whole, `chunks of ${size}`);
  }
});

test('CRLF, unterminated last line, indentation, older kernels, no summary', () => {
  const crlf =
    'verification time 7 usec\r\nstack depth 0+16+8\r\nprocessed 12 insns (limit 131072) max_states_per_insn 1 total_states 2 peak_states 2 mark_read 1';
  assert.equal(summary(parseStats(crlf)[0]), {
    processedInsns: 12,
    insnLimit: 131072,
    maxStatesPerInsn: 1,
    totalStates: 2,
    peakStates: 2,
    markRead: 1,
    stackDepth: [0, 16, 8],
    verificationTimeUsec: 7,
  });
  // an old kernel's format: fields it does not print are null
  const old = parseStats('  processed 42 insns (limit 131072), stack depth 8\n')[0];
  assert.is(old.processedInsns, 42);
  assert.is(old.insnLimit, 131072);
  assert.is(old.totalStates, null);
  assert.equal(old.stackDepth, [8]);
  assert.equal(parseStats('processed 9 insns (limit 131072), stack depth 8+32\n')[0].stackDepth, [8, 32]);
  assert.equal(parseStats('no summary here\nR1 invalid mem access\n'), []);
  assert.equal(parseStats(''), []);
  // a summary-looking fragment inside a longer line does not count
  assert.equal(parseStats('; // processed 5 insns @ x.c:1\n'), []);
});

test('over-long lines are skipped without being held, the next summary still parses', () => {
  const scanner = new StatsScanner();
  scanner.feed(Buffer.from('processed 1 insns ' + 'x'.repeat(10_000) + '\n'));
  scanner.feed(Buffer.from('processed 2 insns (limit 9)\n'));
  const programs = scanner.finish();
  assert.equal(
    programs.map((p) => [p.processedInsns, p.line]),
    [[2, 2]],
  );
});

test('text and JSON formatting', () => {
  const programs = parseStats(Buffer.concat([fixture('subprog_calls').bytes, fixture('verify_loop_level1').bytes]));
  const text = formatStats(programs);
  assert.match(text, /^program 1 \(summary at line 808\)\n/);
  assert.match(text, /\n {2}processed insns {6}165\n/);
  assert.match(text, /\n {2}stack depth {10}8\+0\n/);
  assert.match(text, /\n {2}verification time {4}676 usec\n/);
  assert.match(text, /\nprogram 2 \(summary at line 855\)\n/);
  assert.match(text, /\n {2}verification time {4}-\n$/);
  const doc = JSON.parse(formatStatsJson(programs)) as { programs: ProgramStats[] };
  assert.equal(doc.programs, programs);
  assert.ok(formatStatsJson([]).startsWith('{"programs":[]}'));
});

test.run();
