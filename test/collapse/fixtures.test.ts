// Real verifier logs against their checked-in collapsed outputs (read by eye when they
// were generated), on both engines, plus the facts a reader should see in them.

import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { collapse, ENGINES, wasmBuilt } from '../helpers/engines.js';
import { EXPECTED_DIR, expectedCollapsed, fixture, fixtures } from '../helpers/fixtures.js';
import { lineKey } from '../../src/collapse/line-key.js';
import { blockDepth, parseBlocks, type TextBlock } from '../helpers/invariants.js';

function lines(text: string): string[] {
  return text.split('\n').slice(0, -1);
}

/** Blocks of instructions (not of mark_precise backtracking), nested ones likewise. */
function loopBlocks(blocks: readonly TextBlock[]): TextBlock[] {
  return blocks
    .filter((b) => b.firstLine === undefined || lineKey(b.firstLine) !== null)
    .map((b) => ({ ...b, first: loopBlocks(b.first), last: loopBlocks(b.last) }));
}

/** Blocks of mark_precise backtracking (their first line is bookkeeping), nested ones included. */
function chainBlocks(blocks: readonly TextBlock[]): TextBlock[] {
  return blocks.flatMap((b) => [
    ...(b.firstLine !== undefined && lineKey(b.firstLine) === null ? [b] : []),
    ...chainBlocks(b.first),
    ...chainBlocks(b.last),
  ]);
}

/**
 * Lines in and out for every real fixture: the README's table. The collapse must not get
 * worse than this; the targets of issue 16 are asserted as ratios below.
 */
const BOUNDS: Record<string, [linesIn: number, maxLinesOut: number]> = {
  bounded_loop_400: [29886, 157],
  bounded_loop_40: [2820, 156],
  bounded_loop_40_fail: [2820, 155],
  bounded_loop_40_fail_level1: [572, 57],
  bounded_loop_40_level1: [1, 1],
  branching_loop_40: [9183, 650],
  branching_loop_40_store: [13077, 1291],
  nested_branch_loops: [8638, 1086],
  nested_loops: [2376, 761],
  may_goto_loop: [14731, 508],
  bpf_loop_callback: [359, 213],
  bpf_for_iter: [260, 140],
  subprog_calls: [808, 236],
  verify_loop: [94, 73],
  verify_loop_level1: [47, 26],
  no_loop: [28, 28],
};

test('every fixture collapses to at most its documented number of lines', () => {
  const all = fixtures();
  assert.equal(all.map((f) => f.name).sort(), Object.keys(BOUNDS).sort());
  for (const fx of all) {
    const [linesIn, maxOut] = BOUNDS[fx.name];
    assert.is(lines(fx.bytes.toString('latin1')).length, linesIn, `${fx.name}: lines in`);
    const out = lines(expected(fx.name)).length;
    assert.ok(out <= maxOut, `${fx.name}: ${out} lines out, documented ${maxOut}`);
  }
  const ratio = (name: string): number => BOUNDS[name][0] / lines(expected(name)).length;
  assert.ok(ratio('branching_loop_40') >= 10, 'branching loop >= 10x');
  assert.ok(ratio('branching_loop_40_store') >= 10, 'branching loop with a store >= 10x');
  assert.ok(ratio('nested_branch_loops') >= 4, 'nested loops with a branch >= 4x');
  assert.ok(ratio('bounded_loop_400') >= 25, 'long loop >= 25x');
});

test('branching_loop_40: the else-arm re-walks are references, the backtracking chains repeats', () => {
  const out = lines(expected('branching_loop_40'));
  const input = lines(fixture('branching_loop_40').bytes.toString('latin1'));
  // every re-walk still starts with its own pop line and register state
  const pops = (l: string[]): number => l.filter((x) => x.startsWith('from 13 to 4: ')).length;
  assert.ok(pops(out) > 0 && out.some((l) => /^--- same \d+ lines as output lines \d+-\d+/.test(l)));
  // the counter's precision backtracked through earlier iterations: blocks of mark_precise lines
  assert.ok(chainBlocks(parseBlocks(out.join('\n'))).length >= 3);
  assert.ok(
    input.filter((l) => l.startsWith('mark_precise:')).length >
      10 * out.filter((l) => l.startsWith('mark_precise:')).length,
  );
  assert.is(out[out.length - 1], input[input.length - 1]);
});

for (const engine of ENGINES) {
  test(`${engine}: every fixture collapses to its expected file`, () => {
    if (engine === 'wasm') assert.ok(wasmBuilt(), 'build/collapse.wasm is missing: run npm run build');
    const all = fixtures();
    assert.ok(all.length >= 16, `expected the 16 real fixtures, found ${all.length}`);
    for (const fx of all) {
      assert.ok(existsSync(`${EXPECTED_DIR}/${fx.name}.collapsed`), `missing expected output for ${fx.name}`);
      const out = collapse(engine, fx.bytes).toString('latin1');
      assert.fixture(out, expectedCollapsed(fx.name).toString('latin1'), `${fx.name}.collapsed`);
    }
  });
}

// The facts below are checked on the expected files (which both engines must reproduce).
const expected = (name: string): string => expectedCollapsed(name).toString('latin1');

test('bounded_loop_400: 400 walks of the loop become one 399x block plus the exit walk', () => {
  const out = lines(expected('bounded_loop_400'));
  const input = lines(fixture('bounded_loop_400').bytes.toString('latin1'));
  assert.is(input.length, 29886);
  assert.ok(out.length < 300, `${out.length} lines`);
  assert.ok(out.includes('--- 399x of the following 14 lines ---'));
  assert.ok(out.includes('--- 397 identical iterations omitted ---'));
  const blocks = loopBlocks(parseBlocks(out.join('\n')));
  assert.is(blocks.length, 1);
  // the block shows the first walk (R6=0 -> 1) and the 399th (R6=398 -> 399)
  assert.is(blocks[0].firstIteration.filter((l) => l.startsWith('8: (07) r6 += 1')).length, 1);
  assert.ok(blocks[0].firstIteration.some((l) => l.endsWith('; R6=1')));
  assert.ok(out.some((l) => l.startsWith('8: (07) r6 += 1') && l.endsWith('; R6=399')));
  // the 400th walk leaves the loop and is printed after the block, with the summary intact
  const end = out.indexOf('--- 397 identical iterations omitted ---');
  assert.ok(out.slice(end).some((l) => l.endsWith('; R6=400')));
  assert.ok(out.slice(end).includes('16: (95) exit'));
  // the precision backtracking through the earlier iterations is a block of its own
  assert.ok(chainBlocks(parseBlocks(out.join('\n'))).length >= 1);
  assert.is(
    out[out.length - 1],
    'processed 4804 insns (limit 1000000) max_states_per_insn 4 total_states 60 peak_states 60 mark_read 0',
  );
});

test('bounded_loop_40 and its failing twin: 39x block, the rejection stays visible', () => {
  for (const name of ['bounded_loop_40', 'bounded_loop_40_fail', 'bounded_loop_40_fail_level1']) {
    const out = expected(name);
    assert.equal(
      loopBlocks(parseBlocks(out)).map((b) => [b.iterations, b.linesPerIteration]),
      [[39, 14]],
      name,
    );
  }
  assert.ok(lines(expected('bounded_loop_40_fail')).includes("R2 invalid mem access 'scalar'"));
});

test('verify_loop: the 8 unrolled iterations collapse to one block of 8 x 4 lines', () => {
  // one unrolled iteration is 4 instruction lines: found as an 8-line block (the 5-line
  // minimum), it is shown in its shortest period, 8 iterations of 4 lines
  for (const name of ['verify_loop', 'verify_loop_level1']) {
    const out = lines(expected(name));
    const blocks = parseBlocks(out.join('\n'));
    assert.equal(
      blocks.map((b) => [b.iterations, b.linesPerIteration]),
      [[8, 4]],
      name,
    );
    assert.ok(out.includes('--- 6 identical iterations omitted ---'), name);
    const b = blocks[0];
    assert.ok(b.firstLine?.startsWith('3: (85) call bpf_ktime_get_ns#5'), `${name}: block starts at the first call`);
    assert.ok(b.lastLine?.startsWith('34: (63) *(u32 *)(r10 -4) = r1'), `${name}: block ends at the 8th store`);
    // the first iteration shows the call at 3, the last the call at 31; 7..27 are omitted
    const calls = out.filter((l) => /^\d+: \(85\) call bpf_ktime_get_ns#5/.test(l)).map((l) => Number(l.split(':')[0]));
    assert.equal(calls, [3, 31], name);
    const end = out.indexOf('--- end repeat ---');
    assert.ok(out.slice(end).includes('37: (63) *(u32 *)(r2 +0) = r1'), `${name}: the rejected store follows`);
    assert.ok(out.slice(end).includes("R2 invalid mem access 'scalar'"), `${name}: the error follows`);
  }
});

test('nested_loops: the outer loop block contains the inner loop blocks', () => {
  const out = expected('nested_loops');
  const blocks = loopBlocks(parseBlocks(out));
  assert.is(blockDepth(blocks), 2);
  // outer: 6 iterations = 5x block + the last outer iteration printed after it
  assert.equal(
    blocks.map((b) => [b.iterations, b.linesPerIteration]),
    [
      [5, 88],
      [4, 15],
    ],
  );
  assert.equal(
    blocks[0].first.map((b) => [b.iterations, b.linesPerIteration]),
    [[4, 15]],
  );
  assert.equal(
    blocks[0].last.map((b) => [b.iterations, b.linesPerIteration]),
    [[4, 15]],
  );
  const l = lines(out);
  const outer = l.indexOf('--- 5x of the following 88 lines ---');
  assert.ok(
    outer >= 0 && l[outer + 2] === '--- 4x of the following 15 lines ---',
    'inner header right inside the outer one',
  );
  assert.ok(l.length < 1000 && lines(fixture('nested_loops').bytes.toString('latin1')).length === 2376);
});

test('subprog_calls: the loop with the call into frame1 collapses (9x + exit walk)', () => {
  const out = expected('subprog_calls');
  assert.equal(
    loopBlocks(parseBlocks(out)).map((b) => [b.iterations, b.linesPerIteration]),
    [[9, 28]],
  );
  const l = lines(out);
  const end = l.indexOf('--- end repeat ---');
  assert.ok(l.slice(l.indexOf('--- 9x of the following 28 lines ---'), end).includes('to caller at 5:'));
});

test('no_loop and a one-line log pass through unchanged', () => {
  assert.ok(expectedCollapsed('no_loop').equals(fixture('no_loop').bytes));
  assert.ok(expectedCollapsed('bounded_loop_40_level1').equals(fixture('bounded_loop_40_level1').bytes));
});

test.run();
