// Differential test: the WASM core and the TypeScript oracle must print identical bytes,
// in text and JSON mode, with default and with small limits (segment carry, period caps,
// candidate caps and long lines), on seeded random logs and on every real fixture.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CollapseLimits } from '../../src/collapse/index.js';
import { collapse, SMALL_LIMITS, wasmBuilt } from '../helpers/engines.js';
import { fixtures } from '../helpers/fixtures.js';
import { randomLog } from '../helpers/random-log.js';

const RANDOM_CASES = 240;

const CONFIGS: ReadonlyArray<[string, Partial<CollapseLimits> | undefined]> = [
  ['default', undefined],
  ['small', SMALL_LIMITS],
  ['tiny periods', { maxPeriodItems: 3, candidatesPerStart: 1, minPeriodLines: 1, minRepetitions: 3 }],
];

/** Where two outputs first differ, for a readable failure. */
function firstDifference(a: Buffer, b: Buffer): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const line = a.subarray(0, i).toString('latin1').split('\n').length;
  const show = (x: Buffer): string => JSON.stringify(x.subarray(Math.max(0, i - 40), i + 40).toString('latin1'));
  return (
    `outputs differ at byte ${i} (output line ${line}; wasm ${a.length} bytes, ts ${b.length}):\n` +
    `  wasm: ${show(a)}\n  ts:   ${show(b)}`
  );
}

function assertSame(input: Uint8Array, label: string): void {
  for (const [what, limits] of CONFIGS) {
    for (const json of [false, true]) {
      const wasm = collapse('wasm', input, { limits, json });
      const ts = collapse('ts', input, { limits, json });
      if (!wasm.equals(ts))
        assert.unreachable(`${label}, ${what} limits, ${json ? 'json' : 'text'}: ${firstDifference(wasm, ts)}`);
    }
  }
}

test('build/collapse.wasm exists', () => {
  assert.ok(wasmBuilt(), 'build/collapse.wasm is missing: run npm run build');
});

test('real fixtures: wasm === ts', () => {
  assert.ok(wasmBuilt(), 'build/collapse.wasm is missing');
  const all = fixtures();
  assert.ok(all.length >= 10, `expected the 10 real fixtures, found ${all.length}`);
  for (const fx of all) assertSame(fx.bytes, fx.name);
  // concatenated and CRLF versions of the real logs
  const joined = Buffer.concat(all.map((f) => f.bytes));
  assertSame(joined, 'all fixtures concatenated');
  assertSame(Buffer.from(joined.toString('latin1').replace(/\n/g, '\r\n'), 'latin1'), 'all fixtures, CRLF');
});

test(`${RANDOM_CASES} random logs: wasm === ts`, () => {
  assert.ok(wasmBuilt(), 'build/collapse.wasm is missing');
  for (let seed = 1; seed <= RANDOM_CASES; seed++) {
    const input = Buffer.from(randomLog(seed * 7919, { longLines: seed % 4 === 0, binary: seed % 5 === 0 }), 'latin1');
    assertSame(input, `random seed ${seed * 7919}`);
  }
});

test('large random logs (several segments under small limits): wasm === ts', () => {
  assert.ok(wasmBuilt(), 'build/collapse.wasm is missing');
  for (const seed of [424242, 1337]) {
    const input = Buffer.from(randomLog(seed, { lines: 20_000, longLines: true, binary: true }), 'latin1');
    assert.ok(input.length > 8 * (SMALL_LIMITS.segmentBytes ?? 0), 'input spans many small segments');
    assertSame(input, `large random seed ${seed}`);
  }
});

test.run();
