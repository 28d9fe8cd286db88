// ELF core dumps (PT_LOAD segments, VMCOREINFO and QEMU CPU-state notes, bad files) and the
// KASLR derivation on a synthetic kernel: from memory alone, from CR3/CR4, and from
// VMCOREINFO, in 4- and 5-level paging, ending in a full struct_ops inspection.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ElfError,
  KaslrError,
  Vmcoreinfo,
  bytesSource,
  deriveLayout,
  inspectKernel,
  readCoreDump,
  type KernelImage,
} from '../../src/monitor/index.js';
import { SyntheticGuest, TEST_OFFSETS, START_KERNEL_MAP } from './synthetic-guest.js';

// ---- a synthetic ELF core ------------------------------------------------------------------
interface Seg {
  pa: number;
  data: Uint8Array;
}

function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name + '\0');
  const pad = (n: number): number => (n + 3) & ~3;
  const out = new Uint8Array(12 + pad(nameBytes.length) + pad(desc.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, nameBytes.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(desc, 12 + pad(nameBytes.length));
  return out;
}

function qemuCpuNote(cr0: bigint, cr3: bigint, cr4: bigint): Uint8Array {
  const desc = new Uint8Array(8 + 18 * 8 + 10 * 24 + 5 * 8 + 8);
  const v = new DataView(desc.buffer);
  v.setUint32(0, 1, true);
  v.setUint32(4, desc.length, true);
  const cr = 8 + 18 * 8 + 10 * 24;
  v.setBigUint64(cr, cr0, true);
  v.setBigUint64(cr + 24, cr3, true);
  v.setBigUint64(cr + 32, cr4, true);
  return note('QEMU', 0, desc);
}

function elfCore(segs: Seg[], notes: Uint8Array[], opts: { type?: number; machine?: number } = {}): Uint8Array {
  const notesLen = notes.reduce((s, n) => s + n.length, 0);
  const phnum = 1 + segs.length;
  let offset = 64 + 56 * phnum;
  const noteOff = offset;
  offset += notesLen;
  const segOffs = segs.map((s) => {
    const o = offset;
    offset += s.data.length;
    return o;
  });
  const out = new Uint8Array(offset);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, opts.type ?? 4, true);
  v.setUint16(18, opts.machine ?? 62, true);
  v.setBigUint64(32, 64n, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  v.setUint16(58, 64, true);
  const ph = (i: number, type: number, off: number, pa: number, size: number): void => {
    const o = 64 + i * 56;
    v.setUint32(o, type, true);
    v.setBigUint64(o + 8, BigInt(off), true);
    v.setBigUint64(o + 24, BigInt(pa), true);
    v.setBigUint64(o + 32, BigInt(size), true);
    v.setBigUint64(o + 40, BigInt(size), true);
  };
  ph(0, 4, noteOff, 0, notesLen);
  let at = noteOff;
  for (const n of notes) {
    out.set(n, at);
    at += n.length;
  }
  segs.forEach((s, i) => {
    ph(1 + i, 1, segOffs[i], s.pa, s.data.length);
    out.set(s.data, segOffs[i]);
  });
  return out;
}

test('core dumps: segments by physical address (contained duplicates dropped), VMCOREINFO and QEMU registers', () => {
  const info =
    'OSRELEASE=6.12.117\nKERNELOFFSET=1e00000\nNUMBER(phys_base)=-31457280\nNUMBER(pgtable_l5_enabled)=1\nSYMBOL(init_top_pgt)=ffffffff82e1c000\n';
  const core = elfCore(
    [
      { pa: 0x10_0000, data: new Uint8Array(0x2000).fill(7) },
      { pa: 0, data: new Uint8Array(0x1000).fill(1) },
      { pa: 0x10_1000, data: new Uint8Array(0x800) },
    ],
    [
      note('CORE', 1, new Uint8Array(336)),
      note('VMCOREINFO', 0, new TextEncoder().encode(info)),
      qemuCpuNote(0x8005_0033n, 0x1c0_2000n, 0x1000n | 0x20n),
    ],
  );
  const dump = readCoreDump(bytesSource(core));
  assert.equal(
    dump.segments.map((s) => [s.pa, s.size]),
    [
      [0, 0x1000],
      [0x10_0000, 0x2000],
    ],
  );
  assert.is(dump.totalBytes, 0x3000);
  assert.is(dump.vmcoreinfo!.osRelease, '6.12.117');
  assert.is(dump.vmcoreinfo!.kernelOffset, 0x1e0_0000n);
  assert.is(dump.vmcoreinfo!.number('phys_base'), BigInt.asUintN(64, -31457280n));
  assert.is(dump.vmcoreinfo!.symbol('init_top_pgt'), 0xffff_ffff_82e1_c000n);
  assert.equal(dump.cpus, [{ cr0: 0x8005_0033n, cr3: 0x1c0_2000n, cr4: 0x1020n }]);
});

test('core dumps: bad files get clear errors', () => {
  assert.throws(
    () => readCoreDump(bytesSource(new Uint8Array(10))),
    (e: unknown) => e instanceof ElfError && /too short/.test(String(e)),
  );
  assert.throws(() => readCoreDump(bytesSource(new Uint8Array(64))), /not an ELF file/);
  const good = elfCore([{ pa: 0, data: new Uint8Array(4096) }], []);
  const c32 = good.slice();
  c32[4] = 1;
  assert.throws(() => readCoreDump(bytesSource(c32)), /not a 64-bit/);
  assert.throws(
    () => readCoreDump(bytesSource(elfCore([{ pa: 0, data: new Uint8Array(16) }], [], { type: 2 }))),
    /not a core dump/,
  );
  assert.throws(
    () => readCoreDump(bytesSource(elfCore([{ pa: 0, data: new Uint8Array(16) }], [], { machine: 183 }))),
    /not x86-64/,
  );
  assert.throws(
    () => readCoreDump(bytesSource(good.subarray(0, good.length - 100))),
    /past the end of the file \(truncated/,
  );
  assert.throws(() => readCoreDump(bytesSource(elfCore([], []))), /no PT_LOAD/);
  const badNote = elfCore([{ pa: 0, data: new Uint8Array(16) }], [note('X', 0, new Uint8Array(8))]);
  new DataView(badNote.buffer).setUint32(64 + 56 * 2 + 4, 1 << 30, true); // descsz of the note
  assert.throws(() => readCoreDump(bytesSource(badNote)), /truncated note/);
  assert.throws(() => new Vmcoreinfo('KERNELOFFSET=xyz\n').kernelOffset, /not a hex number/);
});

// ---- a synthetic kernel in memory ------------------------------------------------------------
const TEXT = 0xffff_ffff_8100_0000n;
const SYM = {
  _text: TEXT,
  linux_banner: TEXT + 0x3000n,
  init_top_pgt: TEXT + 0x10_0000n,
  page_offset_base: TEXT + 0x4000n,
  phys_base: TEXT + 0x4008n,
  __pgtable_l5_enabled: TEXT + 0x4010n,
  nr_cpu_ids: TEXT + 0x4018n,
  __per_cpu_offset: TEXT + 0x5000n,
  prog_idr: TEXT + 0x6000n,
};
const BANNER = new TextEncoder().encode('Linux version 6.12.117-synthetic (test) #1 SMP');

function syntheticKernel(): KernelImage {
  return {
    symbols: new Map(Object.entries(SYM)),
    symbolSizes: new Map([['__per_cpu_offset', 64 * 8]]),
    btf: undefined as never,
    offsets: TEST_OFFSETS,
    banner: BANNER,
  };
}

/** The kernel image at physical 0 (cr3 = init_top_pgt = 1 MiB), text mapped at TEXT + kaslr. */
function bootedGuest(la57: boolean, kaslr: bigint) {
  const g = new SyntheticGuest({ la57, ramBytes: 64 << 20 });
  const at = (sym: bigint): number => Number(sym - TEXT); // physical address of a kernel variable
  assert.is(g.cr3, at(SYM.init_top_pgt), 'the builder put the top page table where init_top_pgt is');
  for (let i = 0n; i < 8n; i++) g.map(TEXT + kaslr + i * 0x20_0000n, Number(i) * 0x20_0000, 0x20_0000);
  g.bytes.set(BANNER, 4 * 1024 * 1024 + at(SYM.linux_banner));
  const physBase = BigInt.asUintN(64, 0n - (TEXT + kaslr - START_KERNEL_MAP));
  g.w64(at(SYM.page_offset_base), g.pageOffset);
  g.w64(at(SYM.phys_base), physBase);
  g.w32(at(SYM.__pgtable_l5_enabled), la57 ? 1 : 0);
  g.w32(at(SYM.nr_cpu_ids), 2);
  const pcpu = g.perCpu(2);
  for (let cpu = 0; cpu < 2; cpu++) g.w64(at(SYM.__per_cpu_offset) + cpu * 8, pcpu.offsets[cpu]);
  const statsBase = pcpu.areaPa[0] + 0x40;
  const prog = g.bpfProg({
    type: 27,
    id: 9,
    name: 'simple_init',
    verifiedInsns: 4321,
    usedMaps: [g.bpfMap('scx_simple.data')],
    stats: { perCpuBasePa: statsBase, values: [] },
  });
  g.writeStats(statsBase, pcpu.offsets[1], [5n, 50n, 0n]);
  g.w64(at(SYM.prog_idr) + TEST_OFFSETS.idrRt + TEST_OFFSETS.xaHead, g.xarray(new Map([[9, prog]])));
  return { g, physBase };
}

for (const la57 of [false, true]) {
  const kaslr = 0x1e00_0000n;
  test(`KASLR (${la57 ? 5 : 4}-level) from memory alone, from CR3/CR4 and from VMCOREINFO; then the programs`, () => {
    const { g, physBase } = bootedGuest(la57, kaslr);
    const kernel = syntheticKernel();
    const cr4 = la57 ? 1n << 12n : 0n;
    const info = new Vmcoreinfo(
      `KERNELOFFSET=${kaslr.toString(16)}\nNUMBER(phys_base)=${BigInt.asIntN(64, physBase)}\nNUMBER(pgtable_l5_enabled)=${la57 ? 1 : 0}\n`,
    );
    for (const [hints, source] of [
      [{}, 'memory'],
      [{ cr3: BigInt(g.cr3), cr4 }, 'registers'],
      [{ vmcoreinfo: info }, 'vmcoreinfo'],
    ] as const) {
      const intro = g.introspector();
      intro.setPaging(0n, false);
      intro.setKernel({ pageOffsetBase: 0n, physBase: 0n });
      const layout = deriveLayout(intro, kernel, hints);
      assert.is(layout.source, source);
      assert.is(layout.kaslrOffset, kaslr);
      assert.is(layout.physBase, physBase);
      assert.is(layout.la57, la57);
      assert.is(layout.pageOffsetBase, g.pageOffset);
      assert.ok(layout.checks.includes('phys_base matches the kernel variable'));
      const report = inspectKernel(intro, kernel, hints);
      assert.is(report.release, '6.12.117-synthetic');
      assert.is(report.nrCpuIds, 2);
      assert.equal(
        report.enumeration.programs.map((p) => [p.id, p.name, p.verifiedInsns, p.obj, p.stats?.cnt]),
        [[9, 'simple_init', 4321, 'scx_simple', 5n]],
      );
    }
  });
}

test('KASLR: a vmlinux whose banner is not in memory, and a wrong register CR3, give clear answers', () => {
  const { g } = bootedGuest(false, 0x20_0000n);
  const other = { ...syntheticKernel(), banner: new TextEncoder().encode('Linux version 9.9.9 (someone else) #1') };
  assert.throws(
    () => deriveLayout(g.introspector(), other),
    (e: unknown) => e instanceof KaslrError && /not found in guest memory/.test(String(e)),
  );
  // a bogus CR3 from "registers" falls back to init_top_pgt
  const layout = deriveLayout(g.introspector(), syntheticKernel(), { cr3: 0x3f0_0000n, cr4: 0n });
  assert.is(layout.source, 'memory');
  assert.is(layout.kaslrOffset, 0x20_0000n);
});

test.run();
