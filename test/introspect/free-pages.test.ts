// The buddy allocator's free lists as the snapshot save reads them (src/monitor/free-pages.ts),
// over a fake kernel memory with a made-up layout: the blocks found become merged physical
// ranges, and every inconsistency a paused or hostile guest could show (a held zone lock,
// lists that disagree with nr_free, a cycle, a page that is not a buddy head, a misaligned or
// out-of-RAM block, overlapping blocks, unreadable memory) gives a reason and no ranges.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { bytesSource, loadKernelImage } from '../../src/monitor/index.js';
import { symbol } from '../../src/monitor/kernel-image.js';
import { buddyLayout, freePageRanges, type BuddyLayout, type KernelReader } from '../../src/monitor/free-pages.js';
import { sharedVmlinux } from '../helpers/test-kernel.js';

const PAGE = 4096;
const NODE_DATA = 0xffff_ffff_8300_0000n;
const VMEMMAP_BASE_VAR = 0xffff_ffff_8200_0000n;
const VMEMMAP = 0xffff_ea00_0000_0000n;
const PGDAT = 0xffff_8880_0100_0000n;

const LAYOUT: BuddyLayout = {
  nodeDataKva: NODE_DATA,
  nodeSlots: 4,
  zonesOffset: 0x40,
  zoneCount: 2,
  zoneSize: 0x300,
  zoneLockOffset: 0x2f0,
  freeAreaOffset: 0x80,
  freeAreaSize: 0x28, // two list heads and nr_free
  orders: 3,
  listsPerOrder: 2,
  nrFreeOffset: 0x20,
  pageSize: 0x40,
  buddyListOffset: 0x8,
  pageTypeOffset: 0x30,
  pgtyBuddy: 0xf0,
  vmemmapBaseKva: VMEMMAP_BASE_VAR,
  poisoningKeyKva: null,
};
const RAM = [{ start: 0, size: 2 * 2 ** 20 }];

class FakeKernel implements KernelReader {
  readonly words = new Map<bigint, bigint>();
  read64(kva: bigint): bigint | null {
    return this.words.get(kva) ?? null;
  }
  read32(kva: bigint): number | null {
    const w = this.words.get(kva);
    return w === undefined ? null : Number(w & 0xffff_ffffn);
  }
  set(kva: bigint, v: bigint): void {
    this.words.set(kva, v);
  }
}

const zoneKva = (z: number): bigint => PGDAT + BigInt(LAYOUT.zonesOffset + z * LAYOUT.zoneSize);
const areaKva = (z: number, order: number): bigint =>
  zoneKva(z) + BigInt(LAYOUT.freeAreaOffset + order * LAYOUT.freeAreaSize);
const pageKva = (pfn: number): bigint => VMEMMAP + BigInt(pfn * LAYOUT.pageSize);
const linkOf = (pfn: number): bigint => pageKva(pfn) + BigInt(LAYOUT.buddyListOffset);

/** A guest with node 0 only; zone z's free blocks by order and list: blocks[z][order][list] = pfns. */
function guest(blocks: number[][][][]): FakeKernel {
  const k = new FakeKernel();
  k.set(VMEMMAP_BASE_VAR, VMEMMAP);
  for (let n = 0; n < LAYOUT.nodeSlots; n++) k.set(NODE_DATA + BigInt(n * 8), n === 0 ? PGDAT : 0n);
  for (let z = 0; z < LAYOUT.zoneCount; z++) {
    k.set(zoneKva(z) + BigInt(LAYOUT.zoneLockOffset), 0n);
    for (let order = 0; order < LAYOUT.orders; order++) {
      const lists = blocks[z]?.[order] ?? [];
      let count = 0;
      for (let t = 0; t < LAYOUT.listsPerOrder; t++) {
        const head = areaKva(z, order) + BigInt(t * 16);
        const pfns = lists[t] ?? [];
        const ring = [head, ...pfns.map(linkOf)];
        ring.forEach((node, i) => k.set(node, ring[(i + 1) % ring.length]));
        for (const pfn of pfns) k.set(pageKva(pfn) + BigInt(LAYOUT.pageTypeOffset), 0xf000_0000n);
        count += pfns.length;
      }
      k.set(areaKva(z, order) + BigInt(LAYOUT.nrFreeOffset), BigInt(count));
    }
  }
  return k;
}

// zone 0: pfn 5 (order 0), pfns 6..7 (order 1: merges with 5? no, 5 then 6-7 are adjacent), 8..11 (order 2); zone 1: 0x100 (order 0, second list), 0x104 (order 2)
const HEALTHY = [
  [[[5]], [[6]], [[8]]],
  [[[], [0x100]], [], [[0x104]]],
];

test('healthy lists: every block found, adjacent ones merged', () => {
  const r = freePageRanges(guest(HEALTHY), LAYOUT, RAM);
  assert.ok(!('reason' in r), 'reason' in r ? r.reason : '');
  if ('reason' in r) return;
  assert.equal(r.ranges, [
    [5 * PAGE, 7 * PAGE],
    [0x100 * PAGE, PAGE],
    [0x104 * PAGE, 4 * PAGE],
  ]);
  assert.is(r.bytes, 12 * PAGE);
});

test('a zone whose lists were never initialised (zero links, nr_free 0) is empty', () => {
  const k = guest(HEALTHY);
  for (let order = 0; order < LAYOUT.orders; order++)
    for (let t = 0; t < LAYOUT.listsPerOrder; t++) k.set(areaKva(1, order) + BigInt(t * 16), 0n);
  for (let order = 0; order < LAYOUT.orders; order++) k.set(areaKva(1, order) + BigInt(LAYOUT.nrFreeOffset), 0n);
  const r = freePageRanges(k, LAYOUT, RAM);
  assert.ok(!('reason' in r));
  if (!('reason' in r)) assert.is(r.bytes, 7 * PAGE);
});

const broken: [string, (k: FakeKernel) => void, RegExp][] = [
  ['a held zone lock', (k) => k.set(zoneKva(1) + BigInt(LAYOUT.zoneLockOffset), 1n), /zone 1's lock is held/],
  [
    'nr_free above the lists',
    (k) => k.set(areaKva(0, 2) + BigInt(LAYOUT.nrFreeOffset), 2n),
    /hold 1 blocks, nr_free says 2/,
  ],
  ['nr_free below the lists', (k) => k.set(areaKva(0, 0) + BigInt(LAYOUT.nrFreeOffset), 0n), /more than nr_free 0/],
  ['a cycle that never returns to the head', (k) => k.set(linkOf(8), linkOf(8)), /more than nr_free/],
  ['nr_free beyond RAM', (k) => k.set(areaKva(0, 0) + BigInt(LAYOUT.nrFreeOffset), 1n << 40n), /exceeds RAM/],
  [
    'a page that is not a buddy head',
    (k) => k.set(pageKva(6) + BigInt(LAYOUT.pageTypeOffset), 0xffff_ffffn),
    /not a buddy page/,
  ],
  ['an unreadable link', (k) => k.words.delete(linkOf(5)), /link is unreadable/],
  ['a link into the middle of a struct page', (k) => k.set(areaKva(0, 0), linkOf(5) + 8n), /not a struct page/],
  ['unreadable vmemmap_base', (k) => k.words.delete(VMEMMAP_BASE_VAR), /vmemmap_base is unreadable/],
];
for (const [what, damage, reason] of broken) {
  test(`${what}: no ranges, the reason`, () => {
    const k = guest(HEALTHY);
    damage(k);
    const r = freePageRanges(k, LAYOUT, RAM);
    assert.ok('reason' in r, 'gave ranges');
    if ('reason' in r) assert.match(r.reason, reason);
  });
}

test('misaligned, out-of-RAM and overlapping blocks give reasons', () => {
  const misaligned = freePageRanges(guest([[[], [[7]]]]), LAYOUT, RAM);
  assert.ok('reason' in misaligned && /not aligned/.test(misaligned.reason));
  const outside = freePageRanges(guest([[[[0x300]]]]), LAYOUT, RAM);
  assert.ok('reason' in outside && /outside guest RAM/.test(outside.reason));
  const overlap = freePageRanges(guest([[[[9]], [], [[8]]]]), LAYOUT, RAM);
  assert.ok('reason' in overlap && /overlaps/.test(overlap.reason));
});

test('page poisoning on: no ranges', () => {
  const k = guest(HEALTHY);
  const key = 0xffff_ffff_8310_0000n;
  k.set(key, 1n);
  const r = freePageRanges(k, { ...LAYOUT, poisoningKeyKva: key }, RAM);
  assert.ok('reason' in r && /poisoning/.test(r.reason));
  k.set(key, 0n);
  assert.ok(!('reason' in freePageRanges(k, { ...LAYOUT, poisoningKeyKva: key }, RAM)));
});

test('the layout of the shared sched_ext kernel, from its BTF and symbols', () => {
  const vmlinux = sharedVmlinux();
  if (vmlinux === undefined) {
    console.log('  skipped: the shared sched_ext vmlinux is missing');
    return;
  }
  const kernel = loadKernelImage(bytesSource(readFileSync(vmlinux)));
  const l = buddyLayout({
    kernel,
    hasSymbol: (name) => kernel.symbols.has(name),
    symbolKva: (name) => symbol(kernel, name),
  });
  assert.ok(!('reason' in l), 'reason' in l ? l.reason : '');
  if ('reason' in l) return;
  assert.is(l.nodeDataKva, kernel.symbols.get('node_data'));
  assert.is(l.nodeSlots, 64, 'CONFIG_NODES_SHIFT=6');
  assert.is(l.pageSize, 64);
  assert.is(l.orders, 11, 'orders 0..MAX_PAGE_ORDER 10');
  assert.ok(l.listsPerOrder >= 3, 'unmovable, movable, reclaimable at least');
  assert.is(l.freeAreaSize, l.listsPerOrder * 16 + 8, 'the lists, then nr_free');
  assert.is(l.nrFreeOffset, l.listsPerOrder * 16);
  assert.is(l.zoneSize, kernel.btf.sizeOf(kernel.btf.struct('zone').id));
  assert.ok(l.freeAreaOffset + l.orders * l.freeAreaSize <= l.zoneSize);
  assert.ok(l.zoneLockOffset < l.zoneSize && l.zoneLockOffset % 4 === 0);
  assert.is(l.pgtyBuddy, 0xf0);
  assert.is(l.poisoningKeyKva, null, 'built without page poisoning');
});

test.run();
