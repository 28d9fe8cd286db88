// Collapse invariants on both engines: output lines come from the input, expanding gives
// back the normalised input, unique input passes through untouched, awkward input (CRLF,
// no final newline, empty, binary, 1 MB lines, non-UTF-8) is handled, output does not
// depend on how the input is chunked, and nested loops nest.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { collapse, collapseChunked, collapseText, ENGINES, SMALL_LIMITS, wasmBuilt } from '../helpers/engines.js';
import { fixture, fixtures } from '../helpers/fixtures.js';
import {
  assertInvariants,
  assertJsonMatchesText,
  blockDepth,
  countBlocks,
  parseBlocks,
} from '../helpers/invariants.js';
import { randomLog, Rng } from '../helpers/random-log.js';

const LIMITS = [
  ['default limits', undefined],
  ['small limits', SMALL_LIMITS],
] as const;

/** Unique lines: nothing repeats, so nothing may change. */
function uniqueLines(seed: number, n: number): string {
  const rng = new Rng(seed);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      rng.chance(0.5)
        ? `${i}: (b7) r${rng.int(0, 9)} = ${i * 7919}`.padEnd(38) + `; R1=${rng.int(0, 99)}`
        : `; stmt_${i}(); @ unique.c:${i}`,
    );
    if (rng.chance(0.2)) lines.push(`mark_precise: frame0: regs=r${rng.int(0, 9)} stack= before ${i}`);
  }
  return lines.join('\n') + '\n';
}

/** Synthetic nested loop: `outer` iterations, each with an inner loop of `inner` x 6 lines. */
function nestedLog(outer: number, inner: number): string {
  const lines = ['func#0 @0', '0: R1=ctx() R10=fp0'];
  for (let i = 0; i < outer; i++) {
    lines.push('; for (i = 0; i < N; i++) @ nest.c:10', `2: (b7) r8 = 0`.padEnd(38) + `; R7=${i} R8=0`);
    for (let j = 0; j < inner; j++) {
      lines.push('; acc += f(i, j); @ nest.c:12');
      lines.push(`3: (bf) r9 = r6`.padEnd(38) + `; R6=${i * inner + j}`);
      lines.push(`4: (85) call bpf_ktime_get_ns#5`.padEnd(38) + '; R0=scalar()');
      lines.push(`5: (07) r8 += 1`.padEnd(38) + `; R8=${j + 1}`);
      lines.push(`6: (15) if r8 == 0x${inner.toString(16)} goto pc+1`);
      lines.push(`mark_precise: frame0: last_idx 6 first_idx ${j} subseq_idx -1 `);
      lines.push('7: (05) goto pc-5');
    }
    lines.push('; acc ^= i; @ nest.c:13', `9: (07) r7 += 1`.padEnd(38) + `; R7=${i + 1}`);
  }
  lines.push(
    '10: (95) exit',
    'processed 99 insns (limit 1000000) max_states_per_insn 1 total_states 3 peak_states 3 mark_read 0',
  );
  return lines.join('\n') + '\n';
}

function requireEngine(engine: string): void {
  if (engine === 'wasm' && !wasmBuilt()) assert.unreachable('build/collapse.wasm is missing: run npm run build');
}

for (const engine of ENGINES) {
  const t = (name: string, fn: () => void): void =>
    test(`${engine}: ${name}`, () => {
      requireEngine(engine);
      fn();
    });

  // (a) + (b) on real and random logs, text and json
  t('real fixtures: lines come from input, expand gives normalised input, JSON matches text', () => {
    for (const fx of fixtures()) {
      for (const [what, limits] of LIMITS) {
        const out = collapse(engine, fx.bytes, { limits });
        assertInvariants(fx.bytes, out, `${fx.name} (${what})`);
        assertJsonMatchesText(fx.bytes, out, collapse(engine, fx.bytes, { limits, json: true }));
      }
    }
  });

  t('random logs: invariants hold with default and small limits', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const input = randomLog(seed, { longLines: true, binary: true });
      for (const [what, limits] of LIMITS) {
        const out = collapseText(engine, input, { limits });
        assertInvariants(input, out, `seed ${seed} (${what})`);
        assertJsonMatchesText(input, out, collapseText(engine, input, { limits, json: true }));
      }
    }
  });

  // (c) no repeats: byte-identical
  t('input without repeats passes through byte-identical', () => {
    for (const name of ['no_loop', 'bounded_loop_40_level1']) {
      const fx = fixture(name);
      for (const [, limits] of LIMITS) assert.ok(collapse(engine, fx.bytes, { limits }).equals(fx.bytes), name);
    }
    for (let seed = 100; seed < 105; seed++) {
      const input = Buffer.from(uniqueLines(seed, 3000), 'latin1');
      for (const [what, limits] of LIMITS) {
        assert.ok(collapse(engine, input, { limits }).equals(input), `unique lines seed ${seed} (${what})`);
      }
    }
  });

  // (d) awkward input
  t('CRLF input collapses like LF input, CRs kept', () => {
    const lf = fixture('bounded_loop_40').bytes.toString('latin1');
    const crlf = lf.replace(/\n/g, '\r\n');
    const outLf = collapseText(engine, lf);
    const outCrlf = collapseText(engine, crlf);
    assertInvariants(crlf, outCrlf, 'crlf');
    assert.equal(
      parseBlocks(outCrlf).map((b) => b.iterations),
      [39],
    );
    assert.is(
      outCrlf,
      outLf
        .split('\n')
        .map((l) => (l.startsWith('--- ') || l === '' ? l : l + '\r'))
        .join('\n'),
    );
  });

  t('no final newline: last line kept without one', () => {
    const text = fixture('bounded_loop_40').bytes.toString('latin1');
    const cut = text.slice(0, -1);
    const out = collapseText(engine, cut);
    assert.is(out, collapseText(engine, text).slice(0, -1));
    assertInvariants(cut, out, 'unterminated');
    // an unterminated line inside a repeat: the marker after it still starts on its own line
    const loopy = 'a\nb\nc\nd\ne\n'.repeat(4).slice(0, -1);
    const out2 = collapseText(engine, loopy);
    assertInvariants(loopy, out2, 'unterminated in repeat');
    assert.ok(out2.includes('\n--- end repeat ---'), out2);
  });

  t('empty input: empty output, JSON with no blocks', () => {
    assert.is(collapse(engine, new Uint8Array(0)).length, 0);
    const doc = JSON.parse(collapseText(engine, '', { json: true })) as { blocks: unknown[]; inputLines: number };
    assert.equal(doc.blocks, []);
    assert.is(doc.inputLines, 0);
    assert.is(collapseText(engine, '\n'), '\n');
  });

  t('binary junk: no throw, invariants hold', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 5; i++) {
      const junk = rng.bytes(rng.int(1, 200_000));
      for (const [what, limits] of LIMITS) {
        const out = collapse(engine, junk, { limits });
        assertInvariants(junk, out, `junk ${i} (${what})`);
        assertJsonMatchesText(junk, out, collapse(engine, junk, { limits, json: true }));
      }
    }
    // junk lines repeated: they are content lines like any other
    const block = Buffer.concat([rng.bytes(300), Buffer.from('\n')]);
    const body = Buffer.concat(Array.from({ length: 6 }, () => Buffer.concat([block, Buffer.from('x\ny\nz\nw\n')])));
    const rep = Buffer.concat([body, body, body, body]);
    assertInvariants(rep, collapse(engine, rep), 'repeated junk');
  });

  t('1 MB lines: kept whole, invariants hold (long-line path under small limits)', () => {
    const rng = new Rng(11);
    const big = (c: string): string => `; ${c.repeat(1 << 20)} @ big.c:1`;
    const parts = ['0: R1=ctx() R10=fp0', big('a'), '1: (b7) r1 = 0', big('b'), big('b'), big('c')];
    for (let i = 0; i < 5; i++) parts.push(`${i}: (07) r6 += 1`, 'x', 'y', 'z', 'w');
    parts.push(big(String.fromCharCode(rng.int(97, 122))));
    const input = parts.join('\n') + '\n';
    for (const [what, limits] of LIMITS) {
      const out = collapseText(engine, input, { limits });
      assertInvariants(input, out, `1MB lines (${what})`);
      for (const c of ['a', 'b', 'c']) assert.ok(out.includes('\n' + big(c) + '\n'), `${what}: 1 MB line ${c} intact`);
    }
    // a loop whose body carries a 1 MB line collapses with default limits
    const loop =
      Array.from({ length: 4 }, (_, i) => [big('q'), `1: (07) r6 += 1 ; R6=${i}`, 'p', 'q', 'r'].join('\n')).join(
        '\n',
      ) + '\n';
    const outLoop = collapseText(engine, loop);
    assert.is(parseBlocks(outLoop).length, 1);
    assert.ok(outLoop.length < loop.length / 1.5);
    assertInvariants(loop, outLoop, '1MB loop');
  });

  t('non-UTF-8 bytes: handled as bytes, loops still collapse', () => {
    const line = (i: number): Buffer =>
      Buffer.concat([
        Buffer.from(`${i}: (bf) r1 = r6 `),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80]),
        Buffer.from(` ; R1=${i}\n`),
      ]);
    const iter = (i: number): Buffer =>
      Buffer.concat([
        Buffer.from([0xe2, 0x82, 0x0a]),
        line(i),
        Buffer.from('; \xe9t\xe9 @ x.c:1\n', 'latin1'),
        Buffer.from('a\nb\n'),
      ]);
    const input = Buffer.concat(Array.from({ length: 10 }, (_, i) => iter(i)));
    const out = collapse(engine, input);
    assertInvariants(input, out, 'non-utf8');
    assert.equal(
      parseBlocks(out.toString('latin1')).map((b) => b.iterations),
      [10],
    );
    assert.ok(out.includes(Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80])), 'raw bytes kept');
  });

  // (e) chunking independence
  t('output does not depend on input chunking', () => {
    const random = Buffer.from(randomLog(5, { lines: 1500, longLines: true }), 'latin1');
    const inputs = [
      ['bounded_loop_40', fixture('bounded_loop_40').bytes],
      [
        'nested_loops crlf',
        Buffer.from(fixture('nested_loops').bytes.toString('latin1').replace(/\n/g, '\r\n'), 'latin1'),
      ],
      ['random', random],
    ] as const;
    for (const [name, input] of inputs) {
      for (const [what, limits] of LIMITS) {
        for (const json of [false, true]) {
          const whole = collapse(engine, input, { limits, json, chunkSize: input.length + 1 });
          for (const sizes of [[1], [7], [64 * 1024], [3, 1, 4096, 1, 5, 9]]) {
            const out = collapseChunked(engine, input, sizes, { limits, json });
            assert.ok(
              out.equals(whole),
              `${name} ${what} json=${json}: chunks of ${sizes.join(',')} differ from one chunk`,
            );
          }
        }
      }
    }
  });

  // (f) nested loops
  t('nested loops: a header inside a header, with the right counts', () => {
    const input = nestedLog(6, 5);
    const out = collapseText(engine, input);
    assertInvariants(input, out, 'nested');
    const blocks = parseBlocks(out);
    assert.is(blocks.length, 1);
    assert.is(blocks[0].iterations, 6);
    assert.is(blocks[0].linesPerIteration, 2 + 5 * 6 + 2);
    assert.equal(
      blocks[0].first.map((b) => [b.iterations, b.linesPerIteration]),
      [[5, 6]],
    );
    assert.equal(
      blocks[0].last.map((b) => [b.iterations, b.linesPerIteration]),
      [[5, 6]],
    );
    assert.is(blockDepth(blocks), 2);
    const lines = out.split('\n');
    const outer = lines.indexOf('--- 6x of the following 34 lines ---');
    const inner = lines.indexOf('--- 5x of the following 6 lines ---');
    assert.ok(outer >= 0 && inner > outer, 'inner header after outer header');
    assert.ok(lines.indexOf('--- end repeat ---') > inner, 'inner block closes inside the outer one');
    assert.ok(lines.length < input.split('\n').length / 3);
  });

  t('three levels of nesting collapse to depth 3', () => {
    const inner = (k: number): string[] =>
      Array.from({ length: 4 }, (_, j) => [
        `; inner @ n.c:3`,
        `3: (07) r8 += 1 ; R8=${k + j}`,
        '4: (bf) r1 = r8',
        '5: (15) if r1 == 0x4 goto pc+1',
        '6: (05) goto pc-4',
      ]).flat();
    const middle = (k: number): string[] =>
      Array.from({ length: 3 }, (_, m) => [
        '; middle @ n.c:2',
        `2: (b7) r8 = 0 ; R7=${k + m}`,
        ...inner(m),
        '7: (07) r7 += 1',
      ]).flat();
    const lines = Array.from({ length: 3 }, (_, o) => [
      '; outer @ n.c:1',
      `1: (b7) r7 = 0 ; R6=${o}`,
      ...middle(o),
      '8: (07) r6 += 1',
    ]).flat();
    const input = lines.join('\n') + '\n';
    const out = collapseText(engine, input);
    assertInvariants(input, out, 'depth 3');
    const blocks = parseBlocks(out);
    assert.is(blockDepth(blocks), 3);
    assert.is(countBlocks(blocks), 1 + 2 + 4);
  });
}

test.run();
