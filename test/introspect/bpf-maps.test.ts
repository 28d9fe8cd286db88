// BPF maps from the host over a synthetic guest whose kernel BTF has unusual offsets:
// map_idr enumeration (names, shuffled type enum, sizes, flags), ARRAY / PERCPU_ARRAY / HASH /
// LRU_HASH / PERCPU_HASH values, .rodata/.bss decoded through the map's own BTF (structs,
// arrays, enums, bitfields, char arrays), writes and their refusals, path errors, torn
// structures (cycles, wrong nulls markers, bad BTF) and random garbage: bounded, no trap.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BpfMapError,
  BtfError,
  BtfRenderer,
  Btf,
  fieldLocation,
  mapsJson,
  openMaps,
  type BpfMaps,
} from '../../src/monitor/index.js';
import { BtfWriter } from './btf-writer.js';
import { MapsGuest, MAP_TYPE, K, cat, le, progBtf } from './synthetic-maps.js';
import { IMAGE_BASE, rng } from './synthetic-guest.js';

const RODATA = cat(
  le(4, 4),
  new TextEncoder().encode('hello'),
  new Uint8Array(15),
  le(5_000_000n, 8),
  le(7, 4),
  le(0b10101_110, 4),
  le(11, 4),
  le(13, 4),
); // flag=6 (3 bits), shift=21 (5 bits)
const BSS = cat(le(99n, 8), le(1, 4), le(2, 4), le(3, 4), le(4, 4), le(1, 1), new Uint8Array(3), le(-2, 4));

function scheduler(): {
  mg: MapsGuest;
  maps: BpfMaps;
  hashElems: number[];
  hashBuckets: number;
  counts: { pa: number; elemSize: number };
} {
  const mg = new MapsGuest(3);
  const pb = progBtf();
  const btf = mg.btfObject(pb.bytes);
  assert.is(RODATA.length, 48);
  assert.is(BSS.length, 32);
  mg.array(
    {
      id: 1,
      name: 'sched.rodata',
      type: 'array',
      keySize: 4,
      valueSize: 48,
      maxEntries: 1,
      flags: 0x480,
      frozen: true,
      btf: { kva: btf, valueTid: pb.rodata },
    },
    [RODATA],
  );
  mg.array(
    {
      id: 2,
      name: 'sched.bss',
      type: 'array',
      keySize: 4,
      valueSize: 32,
      maxEntries: 1,
      flags: 0x400,
      btf: { kva: btf, valueTid: pb.bss },
    },
    [BSS],
  );
  const counts = mg.array({ id: 3, name: 'counts', type: 'array', keySize: 4, valueSize: 12, maxEntries: 5 }, [
    le(1, 12),
    le(2, 12),
    le(3, 12),
    le(4, 12),
    le(5, 12),
  ]);
  mg.percpuArray(
    {
      id: 4,
      name: 'stats',
      type: 'percpu_array',
      keySize: 4,
      valueSize: 16,
      maxEntries: 2,
      btf: { kva: btf, valueTid: pb.stats },
    },
    [[0, 1, 2].map((c) => cat(le(10 + c, 8), le(100 * c, 8))), [0, 1, 2].map((c) => cat(le(20 + c, 8), le(0, 8)))],
  );
  const h = mg.hash({ id: 5, name: 'tasks', type: 'hash', keySize: 12, valueSize: 8, maxEntries: 10 }, 16, [
    [3, le(0xaaa, 12), le(1, 8)],
    [3, le(0xbbb, 12), le(2, 8)],
    [3, le(0xccc, 12), le(3, 8)],
    [0, le(7, 12), le(4, 8)],
    [15, le(1n << 90n, 12), le(5, 8)],
  ]);
  mg.hash({ id: 6, name: 'lru', type: 'lru_hash', keySize: 4, valueSize: 4, maxEntries: 4 }, 4, [
    [1, le(9, 4), le(0x99, 4)],
  ]);
  mg.hash({ id: 7, name: 'pch', type: 'percpu_hash', keySize: 4, valueSize: 8, maxEntries: 4 }, 4, [
    [2, le(5, 4), [le(50, 8), le(51, 8), le(52, 8)]],
  ]);
  mg.plain({ id: 9, name: 'arena', type: 'arena', keySize: 0, valueSize: 0, maxEntries: 10 });
  mg.plain({ id: 10, name: 'q', type: 'queue', keySize: 0, valueSize: 4, maxEntries: 64 });
  mg.entries.set(12, 0x1234_5671n); // a misaligned garbage entry
  const maps = openMaps(mg.open());
  return { mg, maps, hashElems: h.elems, hashBuckets: h.bucketsPa, counts };
}

test('map_idr: every map with its name, type (from the BTF enum), sizes, flags and BTF ids', () => {
  const { maps } = scheduler();
  assert.equal(
    maps.maps().map((m) => [m.id, m.name, m.type, m.info.keySize, m.info.valueSize, m.info.maxEntries]),
    [
      [1, 'sched.rodata', 'array', 4, 48, 1],
      [2, 'sched.bss', 'array', 4, 32, 1],
      [3, 'counts', 'array', 4, 12, 5],
      [4, 'stats', 'percpu_array', 4, 16, 2],
      [5, 'tasks', 'hash', 12, 8, 10],
      [6, 'lru', 'lru_hash', 4, 4, 4],
      [7, 'pch', 'percpu_hash', 4, 8, 4],
      [9, 'arena', 'arena', 0, 0, 10],
      [10, 'q', 'queue', 0, 4, 64],
    ],
  );
  const ro = maps.map('.rodata');
  assert.is(ro.id, 1);
  assert.is(ro.info.flags, 0x480);
  assert.is(ro.info.frozen, true);
  assert.is(ro.section(), '.rodata');
  assert.is(maps.map('counts').section(), null);
  assert.is(maps.problems.length, 1);
  assert.match(maps.problems[0], /id 12: entry 0x12345671 is not a struct bpf_map pointer/);
  assert.is(MAP_TYPE.arena, maps.map('arena').info.typeId);
});

test('.rodata and .bss decode by variable name through the map BTF', () => {
  const { maps } = scheduler();
  const ro = maps.map('.rodata');
  assert.equal(ro.render(ro.entries().entries[0].value!), {
    nr_cpus: 4,
    label: 'hello',
    knobs: { slice_ns: 5_000_000, mode: 'MODE_BOOST', flag: 6, shift: 21, cpus: [11, 13] },
  });
  assert.is(ro.field('nr_cpus'), 4);
  assert.is(ro.field('knobs.mode'), 'MODE_BOOST');
  assert.is(ro.field('knobs.shift'), 21);
  assert.is(ro.field('knobs.cpus[1]'), 13);
  assert.is(ro.field('knobs.cpus.0'), 11);
  assert.equal(ro.field('knobs'), { slice_ns: 5_000_000, mode: 'MODE_BOOST', flag: 6, shift: 21, cpus: [11, 13] });
  const bss = maps.map('sched.bss');
  assert.equal(bss.render(bss.entries().entries[0].value!), {
    nr_enqueued: 99,
    stats: [1, 2, 3, 4],
    enabled: true,
    level: -2,
  });
});

test('a missing field names the failing path component and what exists there', () => {
  const { maps } = scheduler();
  const ro = maps.map('.rodata');
  assert.throws(
    () => ro.field('knobs.nope'),
    (e: Error) =>
      e instanceof BpfMapError &&
      /sched\.rodata\.knobs has no field "nope"; it has: slice_ns, mode, flag, shift, cpus/.test(e.message),
  );
  assert.throws(() => ro.field('nope'), /sched\.rodata has no field "nope"; it has: nr_cpus, label, knobs/);
  assert.throws(() => ro.field('nr_cpus.x'), /sched\.rodata\.nr_cpus is a scalar: it has no field "x"/);
  assert.throws(() => ro.field('knobs.cpus[2]'), /knobs\.cpus\[2\] is out of range: the array has 2 elements/);
  assert.throws(
    () => maps.map('missing'),
    /no BPF map named "missing"; the guest has: sched\.rodata, sched\.bss, counts/,
  );
  assert.throws(() => maps.map('counts').field('x'), /counts: no BTF value type/);
});

test('ARRAY: elements with elem_size padding; update writes guest memory; refusals are clear', () => {
  const { mg, maps, counts } = scheduler();
  const m = maps.map('counts');
  const d = m.entries();
  assert.equal(
    d.entries.map((e) => e.value![0]),
    [1, 2, 3, 4, 5],
  );
  assert.is(counts.elemSize, 16);
  m.update(2, le(0x0102_0304_0506_0708_090an, 12));
  assert.equal(Array.from(m.lookup(2) as Uint8Array), Array.from(le(0x0102_0304_0506_0708_090an, 12)));
  assert.is(mg.g.view.getUint8(IMAGE_BASE + counts.pa + 2 * 16), 0x0a, 'written in place');
  assert.is(mg.g.view.getUint8(IMAGE_BASE + counts.pa + 3 * 16), 4, 'the next element is untouched');
  assert.is(m.lookup(5), null, 'past max_entries');
  assert.throws(() => m.update(5, le(0, 12)), /counts: index 5 is out of range \(max_entries 5\)/);
  assert.throws(() => m.update(-1, le(0, 12)), /out of range/);
  assert.throws(() => m.update(0, le(0, 8)), /counts: the value is 12 bytes, not 8/);
  assert.throws(
    () => maps.map('.rodata').update(0, new Uint8Array(48)),
    /sched\.rodata: the map is frozen .*\.rodata.*refusing to write/,
  );
  assert.throws(() => maps.map('tasks').update(0, le(0, 8)), /writes go to ARRAY maps only, this is hash/);
});

test('.bss fields set from the host, range-checked; .rodata refuses', () => {
  const { maps } = scheduler();
  const bss = maps.map('.bss');
  bss.setField('nr_enqueued', 1n << 60n);
  bss.setField('stats[2]', 0xffff_ffff);
  bss.setField('enabled', false);
  bss.setField('level', -123);
  assert.equal(bss.render(bss.lookup(0) as Uint8Array), {
    nr_enqueued: 1n << 60n,
    stats: [1, 2, 0xffff_ffff, 4],
    enabled: false,
    level: -123,
  });
  assert.throws(() => bss.setField('stats[2]', 2 ** 32), /stats\[2\]: 4294967296 does not fit in unsigned 32 bits/);
  assert.throws(() => bss.setField('level', 2 ** 31), /level: 2147483648 does not fit in signed 32 bits/);
  assert.throws(() => bss.setField('level', 'x'), /level is an integer/);
  assert.throws(
    () => bss.setField('nope', 1),
    /sched\.bss has no field "nope"; it has: nr_enqueued, stats, enabled, level/,
  );
  assert.throws(() => bss.setField('stats', new Uint8Array(4)), /stats is 16 bytes, the value 4/);
  assert.throws(() => maps.map('.rodata').setField('nr_cpus', 8), /frozen/);
  assert.is(maps.map('.rodata').field('nr_cpus'), 4, 'unchanged');
});

test('bitfields and enums are written without touching their neighbours', () => {
  const { mg } = scheduler();
  // a writable copy of .rodata's layout: an unfrozen array with the same BTF
  const pb = progBtf();
  mg.array(
    {
      id: 11,
      name: 'knobs_rw',
      type: 'array',
      keySize: 4,
      valueSize: 48,
      maxEntries: 1,
      btf: { kva: mg.btfObject(pb.bytes), valueTid: pb.rodata },
    },
    [RODATA],
  );
  const m = openMaps(mg.open()).map('knobs_rw');
  m.setField('knobs.flag', 1);
  m.setField('knobs.mode', 'MODE_WEIGHTED');
  m.setField('label', 'hi');
  assert.equal(m.field('knobs'), { slice_ns: 5_000_000, mode: 'MODE_WEIGHTED', flag: 1, shift: 21, cpus: [11, 13] });
  assert.is(m.field('label'), 'hi');
  assert.throws(() => m.setField('knobs.flag', 8), /knobs\.flag: 8 does not fit in unsigned 3 bits/);
  assert.throws(
    () => m.setField('knobs.mode', 'MODE_NONE'),
    /no enumerator MODE_NONE; it has: MODE_FIFO, MODE_WEIGHTED, MODE_BOOST/,
  );
  assert.throws(() => m.setField('label', 'x'.repeat(17)), /label holds 16 chars/);
});

test('PERCPU_ARRAY: one value per possible CPU, rendered through the BTF', () => {
  const { maps } = scheduler();
  const m = maps.map('stats');
  const d = m.entries();
  assert.is(d.entries.length, 2);
  assert.equal(
    d.entries[0].perCpu!.map((v) => m.render(v!)),
    [
      { cnt: 10, nsecs: 0 },
      { cnt: 11, nsecs: 100 },
      { cnt: 12, nsecs: 200 },
    ],
  );
  assert.equal(
    (m.lookup(1) as Uint8Array[]).map((v) => v[0]),
    [20, 21, 22],
  );
});

test('HASH / LRU_HASH / PERCPU_HASH: bucket chains walked to their nulls markers', () => {
  const { maps } = scheduler();
  const tasks = maps.map('tasks');
  const d = tasks.entries();
  assert.equal(d.problems, []);
  assert.is(d.truncated, false);
  const got = d.entries.map((e) => [Buffer.from(e.key).toString('hex'), e.value![0]]).sort();
  assert.equal(
    got,
    [
      [Buffer.from(le(0xaaa, 12)).toString('hex'), 1],
      [Buffer.from(le(0xbbb, 12)).toString('hex'), 2],
      [Buffer.from(le(0xccc, 12)).toString('hex'), 3],
      [Buffer.from(le(7, 12)).toString('hex'), 4],
      [Buffer.from(le(1n << 90n, 12)).toString('hex'), 5],
    ].sort(),
  );
  assert.is((tasks.lookup(le(0xbbb, 12)) as Uint8Array)[0], 2);
  assert.is(tasks.lookup(le(0xddd, 12)), null);
  assert.throws(() => tasks.lookup(le(1, 4)), /the key is 12 bytes, not 4/);
  assert.is((maps.map('lru').lookup(9) as Uint8Array)[0], 0x99);
  assert.equal(
    (maps.map('pch').lookup(5) as Uint8Array[]).map((v) => v[0]),
    [50, 51, 52],
  );
});

test('torn hash chains: a cycle, a foreign nulls marker and an unreadable bucket array are flagged, bounded', () => {
  const { mg, hashElems, hashBuckets } = scheduler();
  const g = mg.g;
  // cycle: the third element of bucket 3 points back to the first
  g.w64(hashElems[2] + K.elem.node + K.node.next, g.kva(hashElems[0] + K.elem.node));
  // bucket 0's chain ends in bucket 9's marker
  g.w64(hashElems[3] + K.elem.node + K.node.next, 9n * 2n + 1n);
  let d = openMaps(mg.open()).map('tasks').entries();
  assert.ok(d.truncated, 'the cycle ends the walk');
  assert.ok(d.entries.length <= 10, 'at most max_entries elements');
  assert.ok(
    d.problems.some((p) => /more elements than max_entries \(10\): a cycle or garbage/.test(p)),
    d.problems.join('; '),
  );
  // unreadable buckets
  const tasksKva = openMaps(mg.open()).map('tasks').info.kva;
  g.w64(Number(tasksKva - g.pageOffset) + K.htab.buckets, 0xffff_ffff_0000_0000n);
  d = openMaps(mg.open()).map('tasks').entries();
  assert.equal(d.entries, []);
  assert.match(d.problems.join(';'), /buckets 0\.\.15 are unreadable/);
  void hashBuckets;
});

test('a foreign nulls marker is reported', () => {
  const { mg, hashElems } = scheduler();
  mg.g.w64(hashElems[3] + K.elem.node + K.node.next, 9n * 2n + 1n);
  const d = openMaps(mg.open()).map('tasks').entries();
  assert.is(d.entries.length, 5);
  assert.match(d.problems.join(';'), /bucket 0: the chain ends in bucket 9's nulls marker/);
});

test('a bad map BTF: reported, values fall back to hex, paths refuse', () => {
  const mg = new MapsGuest(1);
  const junk = mg.btfObject(
    new Uint8Array([0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  );
  const huge = mg.btfObject(progBtf().bytes, { dataSize: 1 << 30 });
  const split = mg.btfObject(progBtf().bytes, { base: 0xffff_8880_0000_1000n });
  mg.array(
    {
      id: 1,
      name: 'junk.bss',
      type: 'array',
      keySize: 4,
      valueSize: 4,
      maxEntries: 1,
      btf: { kva: junk, valueTid: 3 },
    },
    [le(0x01020304, 4)],
  );
  mg.array({
    id: 2,
    name: 'huge.bss',
    type: 'array',
    keySize: 4,
    valueSize: 4,
    maxEntries: 1,
    btf: { kva: huge, valueTid: 3 },
  });
  mg.array({
    id: 3,
    name: 'split.bss',
    type: 'array',
    keySize: 4,
    valueSize: 4,
    maxEntries: 1,
    btf: { kva: split, valueTid: 3 },
  });
  const maps = openMaps(mg.open());
  assert.match(maps.map('junk.bss').btfError()!, /type or string section lies outside/);
  assert.match(maps.map('huge.bss').btfError()!, /claims 1073741824 bytes/);
  assert.match(maps.map('split.bss').btfError()!, /split BTF/);
  const m = maps.map('junk.bss');
  assert.is(m.render(m.lookup(0) as Uint8Array), '04030201');
  assert.throws(() => m.field('x'), /no BTF value type to find "x" in \(.*outside/);
});

test('a hostile max_entries x value_size x CPUs stops at the byte budget, flagged', () => {
  const mg = new MapsGuest(3);
  mg.percpuArray(
    { id: 1, name: 'huge', type: 'percpu_array', keySize: 4, valueSize: 1 << 20, maxEntries: 100_000 },
    [],
  );
  const t0 = performance.now();
  const d = openMaps(mg.open()).map('huge').entries();
  assert.is(d.entries.length, 21, '64 MiB / (3 CPUs x 1 MiB + 4)');
  assert.is(d.truncated, true);
  assert.match(d.problems.join(';'), /stopped at 21 elements: 67108864 bytes of values/);
  assert.ok(performance.now() - t0 < 2000);
});

test('a BTF type larger than the map value: fields inside read, fields past it refuse', () => {
  const mg = new MapsGuest(1);
  const pb = progBtf();
  mg.array(
    {
      id: 1,
      name: 'short.bss',
      type: 'array',
      keySize: 4,
      valueSize: 16,
      maxEntries: 1,
      btf: { kva: mg.btfObject(pb.bytes), valueTid: pb.rodata },
    },
    [RODATA.slice(0, 16)],
  );
  const m = openMaps(mg.open()).map('short.bss');
  assert.is(m.field('nr_cpus'), 4);
  assert.throws(() => m.field('label'), /short\.bss: label \(bytes 4\.\.19\) lies outside the 16-byte value/);
  assert.throws(() => m.setField('knobs.cpus[1]', 1), /knobs\.cpus\[1\] \(bytes 44\.\.47\) lies outside/);
  assert.is(
    m.render(m.lookup(0) as Uint8Array),
    Buffer.from(RODATA.slice(0, 16)).toString('hex'),
    'the whole value falls back to hex',
  );
});

test('idr_base: ids are index + idr_base', () => {
  const mg = new MapsGuest(1);
  mg.array({ id: 5, name: 'a', type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 });
  mg.array({ id: 70, name: 'b', type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 });
  const maps = openMaps(mg.open(1));
  assert.equal(
    maps.maps().map((m) => [m.id, m.name]),
    [
      [5, 'a'],
      [70, 'b'],
    ],
  );
});

test('mapsJson: identity, rendered values, hex bytes, per-CPU values, arena size', () => {
  const { maps } = scheduler();
  const j = mapsJson(maps) as { maps: Record<string, unknown>[] };
  const byName = new Map(j.maps.map((m) => [m.name as string, m]));
  const ro = byName.get('sched.rodata')! as {
    entries: { key: number; value: Record<string, unknown>; value_hex: string }[];
    section: string;
    frozen: boolean;
  };
  assert.is(ro.section, '.rodata');
  assert.is(ro.frozen, true);
  assert.is(ro.entries[0].key, 0);
  assert.is(ro.entries[0].value.nr_cpus, 4);
  assert.is(ro.entries[0].value_hex.slice(0, 8), '04000000');
  const stats = byName.get('stats')! as { entries: { values: { cpu: number; value: { cnt: number } }[] }[] };
  assert.equal(
    stats.entries[1].values.map((v) => [v.cpu, v.value.cnt]),
    [
      [0, 20],
      [1, 21],
      [2, 22],
    ],
  );
  assert.is((byName.get('arena') as { arena_bytes: number }).arena_bytes, 40960);
  assert.is('entries' in byName.get('q')!, false, 'queues are listed, not read');
  const bss = maps.map('.bss');
  bss.setField('nr_enqueued', (1n << 63n) + 1n);
  const again = mapsJson(maps) as { maps: { name: string; entries?: { value: { nr_enqueued: unknown } }[] }[] };
  assert.is(
    again.maps.find((m) => m.name === 'sched.bss')!.entries![0].value.nr_enqueued,
    '9223372036854775809',
    'u64 past 2^53 as a decimal string',
  );
  assert.is(JSON.parse(JSON.stringify(j)).maps.length, 9, 'plain JSON');
});

test('the renderer is bounded: a huge nested BTF value renders with a budget, not forever', () => {
  const w = new BtfWriter();
  const u8 = w.int('unsigned char', 1);
  let t = w.struct('leaf', 2, [
    { name: 'a', type: u8, offset: 0 },
    { name: 'b', type: u8, offset: 1 },
  ]);
  for (let i = 0; i < 20; i++)
    t = w.struct(`s${i}`, 2, [
      { name: 'x', type: t, offset: 0 },
      { name: 'y', type: t, offset: 0 },
    ]);
  const big = w.array(w.int('int', 4, 1), 1 << 24);
  const btf = new Btf(w.bytes());
  const t0 = performance.now();
  const v = new BtfRenderer(btf).render(t, new Uint8Array(2), 5000);
  assert.ok(JSON.stringify(v).includes('truncated'), '2^21 leaves cut at the budget');
  assert.throws(() => new BtfRenderer(btf).render(big, new Uint8Array(64)), /is 67108864 bytes, the value only 64/);
  assert.ok(performance.now() - t0 < 2000);
});

test('a hostile bitfield wider than its struct: rendered within the bytes, a field read refuses', () => {
  const w = new BtfWriter();
  const u32 = w.int('unsigned int', 4);
  const s = w.struct('s', 4, [{ name: 'x', type: u32, offset: 3, bits: 200 }]);
  const btf = new Btf(w.bytes());
  const r = new BtfRenderer(btf);
  assert.equal(r.render(s, new Uint8Array([0xff, 0, 0, 0])), { x: 0x1f });
  const loc = fieldLocation(btf, s, 'x');
  assert.is(loc.size, 26);
  assert.throws(
    () => r.field(loc, new Uint8Array(4)),
    (e: Error) => e instanceof BtfError && /x lies outside the value's 4 bytes/.test(e.message),
  );
});

test('random garbage in and around the maps: no trap, bounded, only BpfMapError', () => {
  const next = rng(15);
  for (let round = 0; round < 40; round++) {
    const { mg, maps } = scheduler();
    const targets = maps.maps().map((m) => Number(m.info.kva - mg.g.pageOffset));
    for (let i = 0; i < 200; i++) {
      const base = targets[next() % targets.length];
      mg.g.w8(base + (next() % 700), next() & 0xff);
    }
    if (round % 4 === 0) for (let i = 0; i < 4000; i++) mg.g.w8(0x10_0000 + (next() % 0x40_0000), next() & 0xff);
    const t0 = performance.now();
    try {
      const again = openMaps(mg.open());
      for (const m of again.maps()) {
        m.entries(1000);
        m.btfError();
        try {
          m.field('knobs.cpus[1]');
        } catch (err) {
          if (!(err instanceof BpfMapError)) throw err;
        }
      }
      JSON.stringify(mapsJson(again, { limit: 1000 }));
    } catch (err) {
      if (!(err instanceof BpfMapError)) throw err;
    }
    assert.ok(performance.now() - t0 < 5000, `round ${round} bounded`);
  }
});

test.run();
