// The introspection core's ABI is written once (assembly/introspect-abi.ts for struct_ops
// enumeration, assembly/monitor-abi.ts for the runqueue sampler) and imported by both sides.
// These tests fail when the two sides could disagree: a record whose fields overlap or leave
// the record, an offset table that is not 0..COUNT-1, a built module (build/*.wasm) that was
// compiled from another version of the ABI, a record field the core writes somewhere else than
// the ABI says, or a constant spelled out again in a source file instead of imported.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as abi from '../../assembly/introspect-abi.js';
import * as monAbi from '../../assembly/monitor-abi.js';
import { Introspector, OFFSET_INDEX, OFFSET_ORDER, RECORD_SIZE } from '../../src/monitor/index.js';
import { introspectModule } from '../../src/monitor/wasm-file.js';
import { packageRoot } from '../../src/paths.js';
import { IMAGE_BASE, SyntheticGuest, TEST_OFFSETS } from './synthetic-guest.js';

type Field = [name: string, offset: number, width: number];

/** Every field lies inside the record, is aligned to its width (u64/u32) and overlaps no other. */
function checkRecord(what: string, size: number, fields: Field[]): void {
  const bytes = new Array<string | undefined>(size).fill(undefined);
  for (const [name, at, width] of fields) {
    assert.ok(
      Number.isInteger(at) && at >= 0 && at + width <= size,
      `${what}: ${name} (${at}+${width}) leaves the ${size}-byte record`,
    );
    if (width === 4 || width === 8) assert.is(at % width, 0, `${what}: ${name} at ${at} is not ${width}-byte aligned`);
    for (let b = at; b < at + width; b++) {
      assert.is(bytes[b], undefined, `${what}: ${name} overlaps ${bytes[b]} at byte ${b}`);
      bytes[b] = name;
    }
  }
}

function checkFlags(what: string, flags: Record<string, number>): void {
  let seen = 0;
  for (const [name, bit] of Object.entries(flags)) {
    assert.ok(bit > 0 && (bit & (bit - 1)) === 0, `${what}: ${name} = ${bit} is not one bit`);
    assert.is(seen & bit, 0, `${what}: ${name} reuses a bit`);
    seen |= bit;
  }
}

/** The ABI's integer constants whose names start with `prefix` (OFF_COUNT etc. left out by `skip`). */
function constants(mod: Record<string, unknown>, prefix: string, skip: string[] = []): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(mod))
    if (k.startsWith(prefix) && !skip.includes(k) && typeof v === 'number') out.set(k, v);
  return out;
}

test('the struct_ops record: fields inside 96 bytes, aligned, disjoint; flags one bit each', () => {
  assert.is(RECORD_SIZE, abi.RECORD_SIZE, 'the TypeScript side re-exports the ABI value');
  assert.is(abi.RECORD_SIZE, 96, 'docs/introspect.md documents a 96-byte record');
  checkRecord('program record', abi.RECORD_SIZE, [
    ['REC_PROG_KVA', abi.REC_PROG_KVA, 8],
    ['REC_AUX_KVA', abi.REC_AUX_KVA, 8],
    ['REC_CNT', abi.REC_CNT, 8],
    ['REC_NSECS', abi.REC_NSECS, 8],
    ['REC_MISSES', abi.REC_MISSES, 8],
    ['REC_ID', abi.REC_ID, 4],
    ['REC_VERIFIED', abi.REC_VERIFIED, 4],
    ['REC_FLAGS', abi.REC_FLAGS, 4],
    ['REC_USED_MAPS', abi.REC_USED_MAPS, 4],
    ['REC_NAME', abi.REC_NAME, abi.NAME_LEN],
    ['REC_OBJ', abi.REC_OBJ, abi.NAME_LEN],
    ['REC_CPUS', abi.REC_CPUS, 4],
  ]);
  assert.is(constants(abi, 'REC_').size, 12, 'every REC_ field is checked above');
  checkFlags('program flags', Object.fromEntries(constants(abi, 'FLAG_')));
});

test('the runqueue record: fields inside the record, aligned, disjoint; flags one bit each', () => {
  checkRecord('runqueue record', monAbi.RQ_RECORD_SIZE, [
    ['RQ_KVA', monAbi.RQ_KVA, 8],
    ['RQ_CLOCK', monAbi.RQ_CLOCK, 8],
    ['RQ_CURR_KVA', monAbi.RQ_CURR_KVA, 8],
    ['RQ_OLDEST_RUNNABLE_AT', monAbi.RQ_OLDEST_RUNNABLE_AT, 8],
    ['RQ_NR_RUNNING', monAbi.RQ_NR_RUNNING, 4],
    ['RQ_CFS_NR', monAbi.RQ_CFS_NR, 4],
    ['RQ_SCX_NR', monAbi.RQ_SCX_NR, 4],
    ['RQ_LOCAL_DSQ_NR', monAbi.RQ_LOCAL_DSQ_NR, 4],
    ['RQ_CURR_PID', monAbi.RQ_CURR_PID, 4],
    ['RQ_CURR_POLICY', monAbi.RQ_CURR_POLICY, 4],
    ['RQ_SCX_FLAGS', monAbi.RQ_SCX_FLAGS, 4],
    ['RQ_OLDEST_PID', monAbi.RQ_OLDEST_PID, 4],
    ['RQ_RUNNABLE_COUNT', monAbi.RQ_RUNNABLE_COUNT, 4],
    ['RQ_FLAGS', monAbi.RQ_FLAGS, 4],
    ['RQ_COMM', monAbi.RQ_COMM, 16],
    ['RQ_CPU', monAbi.RQ_CPU, 4],
  ]);
  checkFlags('runqueue flags', Object.fromEntries(constants(monAbi, 'RQF_')));
});

test('the offset tables are indexes 0..COUNT-1, and OFFSET_ORDER follows the ABI', () => {
  const off = constants(abi, 'OFF_', ['OFF_COUNT']);
  assert.equal(
    [...off.values()].sort((a, b) => a - b),
    [...Array(abi.OFF_COUNT).keys()],
    'OFF_* is a permutation of 0..OFF_COUNT-1',
  );
  assert.equal(
    Object.values(OFFSET_INDEX).sort((a, b) => a - b),
    [...Array(abi.OFF_COUNT).keys()],
    'every table slot has one KernelOffsets field',
  );
  assert.is(OFFSET_ORDER.length, abi.OFF_COUNT);
  OFFSET_ORDER.forEach((key, i) => assert.is(OFFSET_INDEX[key], i, `OFFSET_ORDER[${i}] = ${key}`));
  assert.is(OFFSET_INDEX.progTypeStructOps, abi.OFF_PROG_TYPE_STRUCT_OPS);
  assert.is(OFFSET_INDEX.xaHead, abi.OFF_XA_HEAD);
  const mon = constants(monAbi, 'MON_', ['MON_COUNT', 'MON_ABSENT']);
  assert.equal(
    [...mon.values()].sort((a, b) => a - b),
    [...Array(monAbi.MON_COUNT).keys()],
    'MON_* is a permutation of 0..MON_COUNT-1',
  );
  assert.ok(monAbi.MON_ABSENT < 0, 'MON_ABSENT is no index');
});

for (const shared of [true, false]) {
  const file = shared ? 'introspect.wasm' : 'introspect.unshared.wasm';
  test(`build/${file} was compiled from this ABI (exported globals, table sizes, capacities)`, () => {
    const module = introspectModule(file);
    const memory = new WebAssembly.Memory(shared ? { initial: 64, maximum: 64, shared: true } : { initial: 64 });
    const intro = new Introspector(module, memory);
    const globals = WebAssembly.Module.exports(module)
      .filter((e) => e.kind === 'global')
      .map((e) => e.name);
    const exportsOf = intro.core as unknown as Record<string, WebAssembly.Global>;
    for (const name of globals) {
      if (name === 'NOT_MAPPED') continue;
      const want = (abi as Record<string, unknown>)[name];
      assert.type(want, 'number', `the module exports ${name}, which the ABI does not define`);
      assert.is(exportsOf[name].value, want, `${name}: module ${exportsOf[name].value}, ABI ${want}`);
    }
    for (const name of ['RECORD_SIZE', ...constants(abi, 'OFF_', ['OFF_COUNT']).keys()])
      assert.ok(globals.includes(name), `the module exports ${name}`);
    const core = intro.core;
    assert.is(core.outCapacity(), abi.OUT_RECORDS, 'outCapacity() = OUT_RECORDS');
    assert.is(core.setOffset(abi.OFF_COUNT - 1, 0), 0, 'the last offset slot exists');
    assert.is(core.setOffset(abi.OFF_COUNT, 0), -1, 'no slot past OFF_COUNT');
    assert.is(core.rqOutCapacity(), monAbi.RQ_OUT_RECORDS, 'rqOutCapacity() = RQ_OUT_RECORDS');
    assert.is(core.setMonitorOffset(monAbi.MON_COUNT - 1, 0), 0, 'the last monitor slot exists');
    assert.is(core.setMonitorOffset(monAbi.MON_COUNT, 0), -1, 'no monitor slot past MON_COUNT');
  });
}

test('the core writes each record field where the ABI says', () => {
  const g = new SyntheticGuest();
  const pcpu = g.perCpu(2);
  const statsA = pcpu.areaPa[0] + 0x100;
  const statsB = pcpu.areaPa[0] + 0x400;
  const bss = g.bpfMap('abi_obj.bss');
  const a = g.bpfProg({
    type: TEST_OFFSETS.progTypeStructOps,
    id: 0x0102_0304,
    name: 'abi_enqueue',
    verifiedInsns: 0x0a0b_0c0d,
    usedMaps: [bss, bss, bss],
    stats: { perCpuBasePa: statsA, values: [] },
  });
  const b = g.bpfProg({
    type: TEST_OFFSETS.progTypeStructOps,
    id: 0x0506_0708,
    name: 'abi_dispatch',
    verifiedInsns: 3,
    stats: { perCpuBasePa: statsB, values: [] },
  });
  g.writeStats(statsA, pcpu.offsets[0], [0x11n, 0x2200n, 0x3n]);
  g.writeStats(statsA, pcpu.offsets[1], [0x10n, 0x0100n, 0x4n]);
  g.writeStats(statsB, pcpu.offsets[0], [2n ** 64n - 1n, 1n, 0n]);
  g.writeStats(statsB, pcpu.offsets[1], [5n, 1n, 0n]);
  const idr = g.idr(
    new Map([
      [1, a],
      [2, b],
    ]),
  );
  const intro = g.introspector();
  intro.setPerCpu(pcpu.arrayKva, 2);
  assert.is(intro.core.enumStructOps(idr, 16), 2);
  const rec = (i: number) => new DataView(g.memory.buffer, intro.core.outPtr() + i * abi.RECORD_SIZE, abi.RECORD_SIZE);
  const text = (v: DataView, at: number) =>
    new TextDecoder().decode(new Uint8Array(v.buffer, v.byteOffset + at, abi.NAME_LEN)).replace(/\0+$/, '');
  const aux = (prog: bigint) => intro.readKva64(prog + BigInt(TEST_OFFSETS.progAux));
  const r0 = rec(0);
  assert.is(r0.getBigUint64(abi.REC_PROG_KVA, true), a);
  assert.is(r0.getBigUint64(abi.REC_AUX_KVA, true), aux(a));
  assert.equal(
    [r0.getBigUint64(abi.REC_CNT, true), r0.getBigUint64(abi.REC_NSECS, true), r0.getBigUint64(abi.REC_MISSES, true)],
    [0x21n, 0x2300n, 0x7n],
  );
  assert.is(r0.getUint32(abi.REC_ID, true), 0x0102_0304);
  assert.is(r0.getUint32(abi.REC_VERIFIED, true), 0x0a0b_0c0d);
  assert.is(r0.getUint32(abi.REC_FLAGS, true), abi.FLAG_STATS | abi.FLAG_OBJ);
  assert.is(r0.getUint32(abi.REC_USED_MAPS, true), 3);
  assert.is(text(r0, abi.REC_NAME), 'abi_enqueue');
  assert.is(text(r0, abi.REC_OBJ), 'abi_obj');
  assert.is(r0.getUint32(abi.REC_CPUS, true), 2);
  const r1 = rec(1);
  assert.is(r1.getBigUint64(abi.REC_PROG_KVA, true), b);
  assert.is(r1.getUint32(abi.REC_ID, true), 0x0506_0708);
  assert.is(r1.getUint32(abi.REC_FLAGS, true), abi.FLAG_STATS | abi.FLAG_SATURATED, 'no obj, a saturated sum');
  assert.is(r1.getBigUint64(abi.REC_CNT, true), 2n ** 64n - 1n);
  assert.is(text(r1, abi.REC_NAME), 'abi_dispatch');
  assert.is(r1.getUint32(abi.REC_FLAGS, true) & abi.FLAG_NAME_FAULT, 0);
  // and the TypeScript decoder reads the same fields back
  const e = intro.structOpsPrograms(idr);
  assert.equal(
    e.programs.map((p) => [
      p.progKva,
      p.auxKva,
      p.id,
      p.name,
      p.verifiedInsns,
      p.obj,
      p.usedMapCount,
      p.stats?.cnt,
      p.stats?.cpus,
      p.stats?.saturated,
    ]),
    [
      [a, aux(a), 0x0102_0304, 'abi_enqueue', 0x0a0b_0c0d, 'abi_obj', 3, 0x21n, 2, false],
      [b, aux(b), 0x0506_0708, 'abi_dispatch', 3, null, 0, 2n ** 64n - 1n, 2, true],
    ],
  );
  assert.ok(IMAGE_BASE >= intro.dataEnd, "the image sits above the core's own blocks");
});

test('no source spells the ABI out again: both sides import it', () => {
  const read = (path: string) => readFileSync(join(packageRoot(), path), 'utf8');
  // a definition of an ABI name by a number (const X = 12 / const X: i32 = 12) outside the two ABI files
  const twin =
    /^\s*(?:export\s+)?const\s+((?:RECORD_SIZE|REC_|FLAG_|OFF_|OUT_RECORDS|NAME_LEN|MON_|RQ_|RQF_)\w*)\s*(?::[^=]+)?=\s*-?\d/gm;
  for (const path of [
    'assembly/introspect.ts',
    'src/monitor/introspector.ts',
    'src/monitor/kernel-offsets.ts',
    'src/monitor/runqueues.ts',
    'src/monitor/ts-walker.ts',
  ]) {
    const src = read(path);
    const defined = [...src.matchAll(twin)].map((m) => m[1]);
    assert.equal(defined, [], `${path} defines ABI constants of its own`);
  }
  // the TypeScript decoder reads record fields by name, not by number
  const decoder = read('src/monitor/introspector.ts');
  assert.not.match(
    decoder,
    /get(?:Big)?Uint(?:8|32|64)\(\s*o\s*(?:\+\s*\d+\s*)?,/,
    'a record field read at a literal offset',
  );
  assert.not.match(decoder, /subarray\(\s*o\s*\+\s*\d/, 'a record field read at a literal offset');
});

test.run();
