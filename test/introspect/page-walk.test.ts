// The core's x86-64 page walk and KVA translation on synthetic page tables: 4- and 5-level
// paging, 4 KiB / 2 MiB / 1 GiB pages, non-present and out-of-RAM entries, non-canonical
// addresses; and the same answers from the plain-TypeScript walker.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DataViewWalker } from '../../src/monitor/index.js';
import { IMAGE_BASE, START_KERNEL_MAP, SyntheticGuest, rng } from './synthetic-guest.js';

for (const la57 of [false, true]) {
  const mode = la57 ? '5-level' : '4-level';

  test(`${mode}: 4 KiB, 2 MiB and 1 GiB pages translate; holes do not`, () => {
    const g = new SyntheticGuest({ la57, ramBytes: 64 << 20 });
    const intro = g.introspector();
    const va4k = la57 ? 0xff7f_1234_5678_9000n : 0xffff_c900_1234_5000n;
    const va2m = la57 ? 0xff3f_0000_0040_0000n : 0xffff_ea00_0040_0000n;
    const va1g = la57 ? 0x00ff_0000_4000_0000n : 0x0000_7f00_4000_0000n;
    const pa2m = 0x40_0000; // 2 MiB aligned
    g.map(va4k, 0x7000);
    g.map(va2m, pa2m, 0x20_0000);
    g.map(va1g, 0, 0x4000_0000);
    assert.is(intro.walk(va4k), 0x7000n);
    assert.is(intro.walk(va4k + 0xabcn), 0x7abcn);
    assert.is(intro.walk(va4k + 0x1000n), null, 'the next 4 KiB page is not mapped');
    assert.is(intro.walk(va2m + 0x1_2345n), BigInt(pa2m + 0x1_2345));
    assert.is(intro.walk(va1g + 0x12_3456n), 0x12_3456n);
    // a 1 GiB page's physical range beyond RAM still translates (the walk does not read it)
    assert.is(intro.walk(va1g + 0x3fff_f000n), 0x3fff_f000n);
    const other = la57 ? 0x0001_0000_0000_0000n : 0x0000_0100_0000_0000n;
    assert.is(intro.walk(other), null, 'an empty top-level slot');
  });

  test(`${mode}: PAT bit of a huge page is not part of the address`, () => {
    const g = new SyntheticGuest({ la57 });
    const intro = g.introspector();
    const va = 0xffff_ea00_0000_0000n & (la57 ? 0xffff_ffff_ffff_ffffn : 0xffff_ffff_ffff_ffffn);
    g.map(va, 0x60_0000, 0x20_0000);
    // set bit 12 (PAT for 2 MiB pages) in the leaf entry
    let table = g.cr3;
    for (let level = la57 ? 5 : 4; level > 2; level--) {
      const idx = Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
      table = Number(g.r64(table + idx * 8) & 0x000f_ffff_ffff_f000n);
    }
    const leaf = table + Number((va >> 21n) & 511n) * 8;
    g.w64(leaf, g.r64(leaf) | 0x1000n);
    assert.is(intro.walk(va + 0x10n), 0x60_0010n);
  });

  test(`${mode}: non-canonical addresses and tables outside RAM are not mapped`, () => {
    const g = new SyntheticGuest({ la57 });
    const intro = g.introspector();
    assert.is(intro.walk(la57 ? 0x0100_0000_0000_0000n : 0x0000_8000_0000_0000n), null);
    assert.is(intro.walk(0x8000_0000_0000_0000n), null);
    // a top-level entry pointing far outside guest RAM
    g.w64(g.cr3 + 5 * 8, 0x7_0000_0000_0000n | 0x63n);
    const va = BigInt(5) << BigInt(la57 ? 48 : 39);
    assert.is(intro.walk(va), null);
    intro.setPaging(0xdead_0000_0000n, la57); // CR3 itself outside RAM
    assert.is(intro.walk(0x1000n), null);
  });

  test(`${mode}: the TypeScript walker agrees with the core on random addresses`, () => {
    const g = new SyntheticGuest({ la57, ramBytes: 32 << 20 });
    const intro = g.introspector();
    const rand = rng(la57 ? 7 : 3);
    const base = la57 ? 0xff7f_0000_0000_0000n : 0xffff_c900_0000_0000n;
    for (let i = 0; i < 200; i++) g.map(base + BigInt(rand() % 4096) * 0x1000n, (rand() % 4096) * 4096);
    g.map(base + 0x4000_0000n, 0x20_0000, 0x20_0000);
    const ts = new DataViewWalker(g.view, intro.regions);
    ts.setPaging(BigInt(g.cr3), la57);
    for (let i = 0; i < 2000; i++) {
      const va =
        i % 3 === 0
          ? base + 0x4000_0000n + BigInt(rand() % 0x20_0000)
          : base + BigInt(rand() % 4096) * 0x1000n + BigInt(rand() % 4096);
      assert.is(ts.walk(va), intro.walk(va), `va 0x${va.toString(16)}`);
    }
  });
}

test('kvaToPa: direct map and kernel text map arithmetically, vmalloc by the walk', () => {
  const g = new SyntheticGuest();
  const intro = g.introspector();
  intro.setKernel({ pageOffsetBase: g.pageOffset, physBase: 0x20_0000n });
  assert.is(intro.kvaToPa(g.pageOffset + 0x12345n), 0x12345n);
  assert.is(intro.kvaToPa(START_KERNEL_MAP + 0x100_0000n), 0x120_0000n);
  const area = g.vmalloc(8192);
  assert.is(intro.kvaToPa(area.kva + 0x1008n), BigInt(area.pages[1] + 8));
  assert.is(intro.kvaToPa(area.kva + 0x2000n), null, 'the guard page');
  // past the end of RAM in the direct map: walked, and not mapped
  assert.is(intro.kvaToPa(g.pageOffset + 0x10_0000_0000n), null);
});

test('reads: kernel-virtual u64 across a page boundary and faults', () => {
  const g = new SyntheticGuest();
  const intro = g.introspector();
  const area = g.vmalloc(8192);
  g.w32(area.pages[0] + 4092, 0x4433_2211);
  g.w32(area.pages[1], 0x8877_6655);
  assert.is(intro.readKva64(area.kva + 4092n), 0x8877_6655_4433_2211n);
  assert.is(intro.readKva64(area.kva + 8190n), null, 'runs into the guard page');
  assert.is(intro.readKva32(area.kva + 0x3000n), null);
  assert.equal([...intro.readKvaBytes(area.kva + 8188n, 8)].length, 4, 'bytes up to the fault');
});

test('regions: offsets below the core data, overlaps and ranges past the memory are refused', () => {
  const g = new SyntheticGuest({ ramBytes: 4 << 20 });
  const intro = g.introspector();
  assert.throws(() => intro.addRegion(0x1000_0000, 4096, 16), /own data/);
  assert.throws(() => intro.addRegion(0x80000, 4096, IMAGE_BASE + 0x1000), /overlaps another region/);
  assert.throws(() => intro.addRegion(0x1000_0000, 1 << 30, IMAGE_BASE), /leaves the memory/);
  assert.ok(intro.dataEnd <= IMAGE_BASE, `core data ends at ${intro.dataEnd}, below the 4 MiB guest base`);
  assert.ok(
    intro.dataEnd <= 4 * 65536,
    `core data (${intro.dataEnd}) fits the 4 pages the module declares as its minimum memory`,
  );
});

test.run();
