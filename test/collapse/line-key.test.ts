// lineKey on real lines from the fixtures: what is content (and how it is normalised) and
// what is verifier bookkeeping (null). Each line is first checked to occur in the fixture,
// so the test breaks if a fixture is regenerated with different text.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chainKey, lineKey, normaliseLog, splitLogLines } from '../../src/collapse/line-key.js';
import { expandCollapsed, ExpandError } from '../../src/collapse/expand.js';
import { parseMarker, referenceMarker } from '../../src/collapse/markers.js';
import { fixture } from '../helpers/fixtures.js';

const cache = new Map<string, Set<string>>();

/** Asserts `line` is a line of fixture `name`, then returns it. */
function realLine(name: string, line: string): string {
  let lines = cache.get(name);
  if (lines === undefined) {
    lines = new Set(splitLogLines(fixture(name).bytes.toString('latin1')));
    cache.set(name, lines);
  }
  assert.ok(lines.has(line), `fixture ${name} has no line ${JSON.stringify(line)}`);
  return line;
}

test('instruction with state: address and state stripped', () => {
  const line = realLine('bounded_loop_40', '8: (07) r6 += 1                       ; R6=1');
  assert.is(lineKey(line), 'I(07) r6 += 1');
  const long = realLine(
    'verify_loop',
    '8: (61) r1 = *(u32 *)(r10 -4)         ; R1=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)) R10=fp0 fp-8=mmmm????',
  );
  assert.is(lineKey(long), 'I(61) r1 = *(u32 *)(r10 -4)');
});

test('the same instruction in different iterations has the same key', () => {
  const a = realLine('bounded_loop_40', '3: (bf) r1 = r6                       ; R1=1 R6=1');
  const b = realLine('bounded_loop_40', '3: (bf) r1 = r6                       ; R1=2 R6=2');
  assert.is(lineKey(a), lineKey(b));
  const frame1 = realLine('subprog_calls', '16: (bf) r6 = r2                      ; frame1: R2=0 R6=0');
  assert.is(lineKey(frame1), 'I(bf) r6 = r2');
});

test('instruction without state keeps its text, address dropped', () => {
  const line = realLine('bounded_loop_40', '12: (15) if r1 == 0x28 goto pc+1');
  assert.is(lineKey(line), 'I(15) if r1 == 0x28 goto pc+1');
  assert.is(lineKey('13: (05) goto pc-12'), lineKey('99: (05) goto pc-12'));
});

test('source anchor is kept whole', () => {
  const line = realLine('bounded_loop_40', '; acc += (__u32)bpf_ktime_get_ns() ^ i; @ bounded_loop_40.c:27');
  assert.is(lineKey(line), 'S' + line);
  const tab = realLine(
    'verify_loop',
    '; *nullp = acc;\t/* rejected here, after the unrolled loop */ @ verify_loop.c:28',
  );
  assert.is(lineKey(tab), 'S' + tab);
  // anchors at different source lines differ
  assert.is.not(lineKey('; x @ a.c:1'), lineKey('; x @ a.c:2'));
});

test('state dumps are bookkeeping', () => {
  assert.is(lineKey(realLine('bounded_loop_40', '12: R1=1')), null);
  assert.is(lineKey(realLine('bounded_loop_40', '2: R6=0 R10=fp0 fp-8=0000????')), null);
  assert.is(lineKey(realLine('bounded_loop_40', '0: R1=ctx() R10=fp0')), null);
  assert.is(lineKey(realLine('subprog_calls', ' R6=0 R10=fp0 fp-8=0000????')), null);
  assert.is(lineKey(realLine('subprog_calls', ' frame1: R1=0 R2=0 R10=fp0')), null);
  assert.is(lineKey(realLine('subprog_calls', '16: frame1: R1=0 R2=0 R10=fp0')), null);
});

test('mark_precise backtracking is bookkeeping', () => {
  assert.is(lineKey(realLine('bounded_loop_40', 'mark_precise: frame0: last_idx 12 first_idx 0 subseq_idx -1 ')), null);
  assert.is(
    lineKey(realLine('bounded_loop_40', 'mark_precise: frame0: regs=r1 stack= before 11: (77) r1 >>= 32')),
    null,
  );
  assert.is(
    lineKey(
      realLine('subprog_calls', 'mark_precise: frame0: parent state regs=r6 stack=:  R6=P0 R10=fp0 fp-8=0000????'),
    ),
    null,
  );
});

test('SCC and (0) liveness notes are bookkeeping', () => {
  assert.is(lineKey(realLine('bounded_loop_40', 'SCC enter (1)')), null);
  assert.is(lineKey(realLine('subprog_calls', 'SCC exit (1)')), null);
  assert.is(lineKey(realLine('subprog_calls', '(0) frame 0 insn 2 +live -8 ')), null);
  assert.is(lineKey(realLine('subprog_calls', '(0) live stack update done in 2 iterations')), null);
});

test('blank lines are bookkeeping', () => {
  assert.is(lineKey(realLine('subprog_calls', '')), null);
  assert.is(lineKey('   \t '), null);
});

test('branch pop: "from N to M:" keeps only what follows the addresses, state stripped', () => {
  const real = realLine('subprog_calls', 'from 21 to 5: R0=scalar() R6=0 R10=fp0 fp-8=0000????');
  assert.is(lineKey(real), 'F');
  assert.is(lineKey('from 12 to 14: R0=scalar() R1=3 R10=fp0'), 'F');
  assert.is(lineKey('from 12 to 14: R0=scalar() R1=3'), lineKey('from 40 to 42: R1=9'));
  assert.is(lineKey('from 12 to 14 (speculative execution): R1=0'), 'F (speculative execution)');
});

test('call return: "to caller at N:" drops the address', () => {
  const real = realLine('subprog_calls', 'to caller at 5:');
  assert.is(lineKey(real), 'C:');
  assert.is(lineKey('to caller at 17:'), lineKey(real));
});

test('error line is content, not state', () => {
  const line = realLine('verify_loop', "R2 invalid mem access 'scalar'");
  assert.is(lineKey(line), "VR2 invalid mem access 'scalar'");
  assert.is.not(lineKey(line), null);
});

test('other verifier text is content, kept whole', () => {
  assert.is(lineKey(realLine('subprog_calls', 'caller:')), 'Vcaller:');
  assert.is(lineKey(realLine('subprog_calls', 'returning from callee:')), 'Vreturning from callee:');
  assert.is(
    lineKey(
      realLine(
        'verify_loop',
        'processed 38 insns (limit 1000000) max_states_per_insn 0 total_states 4 peak_states 4 mark_read 0',
      ),
    ),
    'Vprocessed 38 insns (limit 1000000) max_states_per_insn 0 total_states 4 peak_states 4 mark_read 0',
  );
  // liveness listing lines start with spaces: kept whole, address included
  const live = realLine('verify_loop', '      3: .......... (85) call bpf_ktime_get_ns#5');
  assert.is(lineKey(live), 'V' + live);
});

test('normaliseLog drops bookkeeping and trailing CR', () => {
  const text = '1: (07) r6 += 1    ; R6=1\r\nmark_precise: frame0: x\n12: R1=1\n; a @ b.c:1\n';
  assert.equal(normaliseLog(text), ['I(07) r6 += 1', 'S; a @ b.c:1']);
  assert.equal(normaliseLog(''), []);
});

test('every key of the bounded loop repeats with the iteration count', () => {
  const keys = normaliseLog(fixture('bounded_loop_40').bytes.toString('latin1'));
  const count = keys.filter((k) => k === 'I(07) r6 += 1').length;
  assert.is(count, 40);
});

test('chain keys: a backtracking step keeps its instruction, drops its address', () => {
  const a = realLine('branching_loop_40', 'mark_precise: frame0: regs=r2 stack= before 16: (05) goto pc-13');
  assert.is(chainKey(a), 'Bmark_precise: frame0: regs=r2 stack= before : (05) goto pc-13');
  // the same step of another iteration, and a different register, a different instruction
  assert.is(chainKey('mark_precise: frame0: regs=r2 stack= before 99: (05) goto pc-13'), chainKey(a));
  assert.is.not(chainKey('mark_precise: frame0: regs=r3 stack= before 16: (05) goto pc-13'), chainKey(a));
  assert.is.not(chainKey('mark_precise: frame0: regs=r2 stack= before 16: (05) goto pc-12'), chainKey(a));
});

test('chain keys: standalone numbers become #, state dumps are cut, blank lines have none', () => {
  const idx = realLine('branching_loop_40', 'mark_precise: frame0: last_idx 9 first_idx 4 subseq_idx -1 ');
  assert.is(chainKey(idx), 'Bmark_precise: frame0: last_idx # first_idx # subseq_idx -1');
  const parent = realLine(
    'branching_loop_40',
    'mark_precise: frame0: parent state regs= stack=:  R0=scalar(id=39) R1=scalar(id=39) R2=P3 R3=1 R10=fp0',
  );
  assert.is(chainKey(parent), 'Bmark_precise: frame0: parent state regs= stack=:');
  assert.is(chainKey(realLine('branching_loop_40', '9: R3=0')), 'B#:');
  assert.is(chainKey('   '), null);
});

test('reference markers: parsed with every range; expand replays earlier output lines', () => {
  const marker = referenceMarker(7, [
    [2, 3],
    [5, 5],
  ]);
  assert.is(marker, '--- same 7 lines as output lines 2-3, 5-5 ---');
  assert.equal(parseMarker(marker), {
    kind: 'reference',
    lines: 7,
    ranges: [
      [2, 3],
      [5, 5],
    ],
  });
  const text = ['a', 'b', 'c', 'd', 'e', marker, 'f'].join('\n') + '\n';
  assert.is(expandCollapsed(text), ['a', 'b', 'c', 'd', 'e', 'b', 'c', 'e', 'f'].join('\n') + '\n');
  // a reference expands what it names, markers included; one that does not point back is an error
  const nested =
    [
      '--- 3x of the following 1 line ---',
      'x',
      '--- 2 identical iterations omitted ---',
      '--- end repeat ---',
      referenceMarker(3, [[1, 4]]),
    ].join('\n') + '\n';
  assert.is(expandCollapsed(nested), 'x\nx\nx\nx\nx\nx\n');
  assert.throws(
    () => expandCollapsed(['a', referenceMarker(1, [[2, 2]])].join('\n')),
    (e: unknown) => e instanceof ExpandError,
  );
});

test('an omission marker counting iterations - 1: the last iteration is the first again', () => {
  const text =
    ['--- 4x of the following 1 line ---', 'x', '--- 3 identical iterations omitted ---', '--- end repeat ---'].join(
      '\n',
    ) + '\n';
  assert.is(expandCollapsed(text), 'x\nx\nx\nx\n');
  assert.throws(
    () =>
      expandCollapsed(
        [
          '--- 4x of the following 1 line ---',
          'x',
          '--- 3 identical iterations omitted ---',
          'y',
          '--- end repeat ---',
        ].join('\n'),
      ),
    (e: unknown) => e instanceof ExpandError,
  );
});

test.run();
