// xa_load and bounded IDR iteration in the core over synthetic xarrays of several heights,
// with sibling, retry and value entries, and corrupt trees (cycles, wrong shifts, pointers
// out of RAM) that must give "absent" instead of a hang or a trap.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DataViewWalker } from '../../src/monitor/index.js';
import { SyntheticGuest, rng } from './synthetic-guest.js';

const NOT_FOUND = 0xffff_ffff_ffff_ffffn;

function entriesFor(indexes: number[], g: SyntheticGuest): Map<number, bigint> {
  return new Map(indexes.map((i) => [i, g.kva(0x100_0000 + i * 64)]));
}

/** All (index, entry) pairs the core's xaFind reports, in order. */
function findAll(g: SyntheticGuest, head: bigint, max: bigint): [number, bigint][] {
  const intro = g.introspector();
  const out: [number, bigint][] = [];
  let index = 0n;
  for (let n = 0; n < 100_000; n++) {
    const found = BigInt.asUintN(64, intro.core.xaFind(head, index, max));
    if (found === NOT_FOUND) break;
    out.push([Number(found), BigInt.asUintN(64, intro.core.foundEntry())]);
    index = found + 1n;
  }
  return out;
}

for (const [label, indexes] of [
  ['single entry at 0 (head is the entry)', [0]],
  ['height 1', [0, 1, 5, 63]],
  ['height 2', [0, 64, 100, 4095]],
  ['height 3', [1, 4096, 70_000, 262_143]],
  ['sparse height 3', [200_000]],
] as [string, number[]][]) {
  test(`xa_load and xaFind: ${label}`, () => {
    const g = new SyntheticGuest();
    const entries = entriesFor(indexes, g);
    const head = g.xarray(entries);
    const intro = g.introspector();
    for (const [i, e] of entries) assert.is(intro.xaLoad(head, BigInt(i)), e, `index ${i}`);
    for (const i of [2, 65, 4094, 4097, 262_144, 1 << 30]) {
      if (!entries.has(i)) assert.is(intro.xaLoad(head, BigInt(i)), 0n, `absent index ${i}`);
    }
    assert.equal(
      findAll(g, head, 1n << 40n),
      [...entries].sort((a, b) => a[0] - b[0]),
    );
    const ts = new DataViewWalker(g.view, intro.regions);
    ts.setKernel(g.pageOffset, 0n);
    ts.setXarrayOffsets(g.offsets.xaNodeShift, g.offsets.xaNodeSlots);
    for (const i of [...indexes, 2, 65, 4097])
      assert.is(ts.xaLoad(head, i), intro.xaLoad(head, BigInt(i)), `TS walker at ${i}`);
  });
}

test('sibling entries resolve to their canonical slot; retry/zero/value entries', () => {
  const g = new SyntheticGuest();
  const head = g.xarray(entriesFor([0, 8, 9], g));
  const node = g.nodePa(head);
  const slot = (i: number): number => node + g.offsets.xaNodeSlots + i * 8;
  g.w64(slot(10), (8n << 2n) | 2n); // sibling of slot 8
  g.w64(slot(11), 0x402n); // XA_RETRY_ENTRY
  g.w64(slot(12), 0x406n); // XA_ZERO_ENTRY
  g.w64(slot(13), (77n << 1n) | 1n); // a value entry
  const intro = g.introspector();
  assert.is(intro.xaLoad(head, 10n), g.kva(0x100_0000 + 8 * 64));
  assert.is(intro.xaLoad(head, 11n), 0n);
  assert.is(intro.xaLoad(head, 12n), 0n);
  assert.is(intro.xaLoad(head, 13n), 155n);
  assert.equal(
    findAll(g, head, 100n).map(([i]) => i),
    [0, 8, 9, 13],
    'xaFind skips siblings and internal entries',
  );
});

test('corrupt trees: a node pointing at itself, wrong child shift, pointers out of RAM', () => {
  const g = new SyntheticGuest();
  const head = g.xarray(entriesFor([0, 100, 4000], g));
  const root = g.nodePa(head);
  const slot = (node: number, i: number): number => node + g.offsets.xaNodeSlots + i * 8;
  const intro = g.introspector();
  // cycle: slot 3 of the root points back at the root (same shift: must be refused)
  g.w64(slot(root, 3), head);
  assert.is(intro.xaLoad(head, 3n * 64n + 1n), 0n);
  // pointer far outside RAM
  g.w64(slot(root, 4), g.kva(0x7_0000_0000) | 2n);
  assert.is(intro.xaLoad(head, 4n * 64n), 0n);
  // a leaf slot pointing at a node (shift 0 cannot have children)
  const child = g.nodePa(g.r64(slot(root, 1)));
  g.w64(slot(child, 5), head);
  assert.is(intro.xaLoad(head, 64n + 5n), 0n);
  // good entries still load, and xaFind walks past the damage
  assert.is(intro.xaLoad(head, 100n), g.kva(0x100_0000 + 100 * 64));
  assert.equal(
    findAll(g, head, 1n << 20n).map(([i]) => i),
    [0, 100, 4000],
  );
  // the root's own shift is impossible
  g.w8(root + g.offsets.xaNodeShift, 7);
  assert.is(intro.xaLoad(head, 100n), 0n);
  assert.equal(findAll(g, head, 1000n), []);
});

test('random trees: xa_load finds exactly the stored entries (core and TS walker)', () => {
  const rand = rng(11);
  for (let round = 0; round < 10; round++) {
    const g = new SyntheticGuest();
    const spread = [64, 4096, 262_144][round % 3];
    const n = 1 + (rand() % Math.min(200, spread));
    const idx = new Set<number>();
    while (idx.size < n) idx.add(rand() % spread);
    const entries = entriesFor([...idx], g);
    const head = g.xarray(entries);
    const intro = g.introspector();
    const ts = new DataViewWalker(g.view, intro.regions);
    ts.setKernel(g.pageOffset, 0n);
    ts.setXarrayOffsets(g.offsets.xaNodeShift, g.offsets.xaNodeSlots);
    for (let k = 0; k < 500; k++) {
      const i = rand() % spread;
      const want = entries.get(i) ?? 0n;
      assert.is(intro.xaLoad(head, BigInt(i)), want);
      assert.is(ts.xaLoad(head, i), want);
    }
    assert.equal(
      findAll(g, head, BigInt(spread)).map(([i]) => i),
      [...idx].sort((a, b) => a - b),
    );
  }
});

test.run();
