// struct_ops program enumeration in the core over synthetic prog_idr contents: type filter,
// names and verified_insns, per-CPU runtime sums (zero-offset tail guard, saturation), the
// active object name from used_maps, and the bounds (used_map_cnt, ids, idr_base).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { missRate, nsPerCall } from '../../src/monitor/index.js';
import { SyntheticGuest, TEST_OFFSETS } from './synthetic-guest.js';

const STRUCT_OPS = 27;
const TRACING = 26;

function scheduler(g: SyntheticGuest, cpus = 4) {
  const pcpu = g.perCpu(cpus, 8); // 8 slots, only `cpus` filled: the tail stays 0
  const statsBase = pcpu.areaPa[0] + 0x100;
  const bss = g.bpfMap('scx_simple.bss');
  const ops = g.bpfMap('simple_ops');
  const ro = g.bpfMap('simple.rodata'); // names fit BPF_OBJ_NAME_LEN (15 + NUL);
  const progs = new Map<number, bigint>();
  progs.set(3, g.bpfProg({ type: TRACING, id: 3, name: 'not_me', verifiedInsns: 9 }));
  progs.set(
    7,
    g.bpfProg({
      type: STRUCT_OPS,
      id: 7,
      name: 'simple_enqueue',
      verifiedInsns: 1234,
      usedMaps: [ops, bss],
      stats: { perCpuBasePa: statsBase, values: [] },
    }),
  );
  progs.set(
    8,
    g.bpfProg({ type: STRUCT_OPS, id: 8, name: 'simple_dispatch', verifiedInsns: 77, usedMaps: [ro], stats: null }),
  );
  progs.set(70, g.bpfProg({ type: STRUCT_OPS, id: 70, name: 'other_ops_prog', verifiedInsns: 5, usedMaps: [ops] }));
  for (let cpu = 0; cpu < cpus; cpu++)
    g.writeStats(statsBase, pcpu.offsets[cpu], [BigInt(10 * (cpu + 1)), BigInt(1000 * (cpu + 1)), BigInt(cpu)]);
  const idr = g.idr(progs);
  return { pcpu, idr, statsBase };
}

test('enumerates struct_ops programs with names, verified_insns, stats and the active object', () => {
  const g = new SyntheticGuest();
  const s = scheduler(g);
  const intro = g.introspector();
  intro.setPerCpu(s.pcpu.arrayKva, 8);
  const e = intro.structOpsPrograms(s.idr);
  assert.is(e.idrEntries, 4);
  assert.is(e.structOpsCount, 3);
  assert.equal(
    e.programs.map((p) => [p.id, p.name, p.verifiedInsns, p.obj]),
    [
      [7, 'simple_enqueue', 1234, 'scx_simple'],
      [8, 'simple_dispatch', 77, 'simple'],
      [70, 'other_ops_prog', 5, null],
    ],
  );
  const st = e.programs[0].stats!;
  // CPUs 0..3 summed; slots 4..7 hold offset 0 and are skipped (not CPU 0 counted again)
  assert.equal([st.cnt, st.nsecs, st.misses, st.cpus], [100n, 10_000n, 6n, 4]);
  assert.is(nsPerCall(st), 100);
  assert.is(missRate(st), 6 / 106);
  assert.is(e.programs[1].stats, null, 'no stats pointer');
  assert.is(e.activeObj, 'scx_simple');
});

test('the same image read with a different offset table finds nothing plausible, not garbage records', () => {
  const g = new SyntheticGuest();
  const s = scheduler(g);
  const intro = g.introspector();
  intro.setOffsets({ ...TEST_OFFSETS, progType: TEST_OFFSETS.progType + 4 });
  const e = intro.structOpsPrograms(s.idr);
  assert.is(e.structOpsCount, 0);
  assert.is(e.idrEntries, 4);
});

test('libbpf-truncated names: the longest obj prefix among the global-section maps wins', () => {
  const g = new SyntheticGuest();
  // what scx_simple really has: "scx_simp.rodata" (truncated to fit) next to "scx_simple.bss"
  const prog = g.bpfProg({
    type: STRUCT_OPS,
    id: 4,
    name: 'simple_init',
    verifiedInsns: 9,
    usedMaps: [
      g.bpfMap('scx_simp.rodata'),
      g.bpfMap('simple_ops'),
      g.bpfMap('scx_simple.bss'),
      g.bpfMap('scx_simple.data'),
    ],
  });
  const e = g.introspector().structOpsPrograms(g.idr(new Map([[4, prog]])));
  assert.is(e.programs[0].obj, 'scx_simple');
});

test('per-CPU sums saturate at u64 max instead of wrapping', () => {
  const g = new SyntheticGuest();
  const pcpu = g.perCpu(2);
  const base = pcpu.areaPa[0] + 0x40;
  const prog = g.bpfProg({
    type: STRUCT_OPS,
    id: 1,
    name: 'hot',
    verifiedInsns: 1,
    stats: { perCpuBasePa: base, values: [] },
  });
  g.writeStats(base, pcpu.offsets[0], [0xffff_ffff_ffff_fff0n, 1n, 2n]);
  g.writeStats(base, pcpu.offsets[1], [0x100n, 1n, 2n]);
  const intro = g.introspector();
  intro.setPerCpu(pcpu.arrayKva, 2);
  const st = intro.structOpsPrograms(g.idr(new Map([[1, prog]]))).programs[0].stats!;
  assert.is(st.cnt, 0xffff_ffff_ffff_ffffn);
  assert.ok(st.saturated);
  assert.is(st.nsecs, 2n);
});

test('used_map_cnt in the billions is capped at 64 maps; an obj map past 64 is not read', () => {
  const g = new SyntheticGuest();
  const maps = Array.from({ length: 70 }, (_, i) => g.bpfMap(i === 66 ? 'late.bss' : `m${i}`));
  const prog = g.bpfProg({
    type: STRUCT_OPS,
    id: 2,
    name: 'p',
    verifiedInsns: 3,
    usedMaps: maps,
    usedMapCnt: 3_000_000_000,
  });
  const intro = g.introspector();
  const e = intro.structOpsPrograms(g.idr(new Map([[2, prog]])));
  assert.is(e.programs[0].usedMapCount, 64);
  assert.is(e.programs[0].obj, null);
});

test('map names: .data and .rodata give the obj; a bare ".bss" or a 16-byte name without NUL does not', () => {
  const g = new SyntheticGuest();
  const mk = (id: number, name: string) =>
    g.bpfProg({ type: STRUCT_OPS, id, name: `p${id}`, verifiedInsns: id, usedMaps: [g.bpfMap(name)] });
  const idr = g.idr(
    new Map([
      [1, mk(1, '.bss')],
      [2, mk(2, 'abcdefghijklmnop')],
      [3, mk(3, 'qmap.data')],
      [4, mk(4, 'x.rodata')],
    ]),
  );
  const e = g.introspector().structOpsPrograms(idr);
  assert.equal(
    e.programs.map((p) => p.obj),
    [null, null, 'qmap', 'x'],
  );
  assert.is(e.activeObj, 'qmap');
});

test('idr_base shifts ids; an unreadable idr is an error; an empty one is empty', () => {
  const g = new SyntheticGuest();
  const prog = g.bpfProg({ type: STRUCT_OPS, id: 0, name: 'based', verifiedInsns: 1 });
  const intro = g.introspector();
  const e = intro.structOpsPrograms(g.idr(new Map([[4, prog]]), 100));
  assert.is(e.programs[0].id, 104, 'aux->id is 0 here, so the id is idr_base + index');
  assert.throws(() => intro.structOpsPrograms(g.kva(0x7_0000_0000)), /not readable/);
  assert.is(intro.structOpsPrograms(g.idr(new Map())).structOpsCount, 0);
});

test('a shared memory (the VMM case) works the same', () => {
  const g = new SyntheticGuest({ shared: true, la57: true });
  const s = scheduler(g);
  const intro = g.introspector();
  intro.setPerCpu(s.pcpu.arrayKva, 8);
  assert.equal(
    intro.structOpsPrograms(s.idr).programs.map((p) => p.name),
    ['simple_enqueue', 'simple_dispatch', 'other_ops_prog'],
  );
});

test.run();
