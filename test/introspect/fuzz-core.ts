// The introspection core's fuzzer: every exported walk (walk, kvaToPa, xaLoad, xaFind,
// enumStructOps, setRunqueues + sampleRunqueues, and the batch/byte readers) called on hostile
// guest memory -- random garbage salted with pointers back into the image, and well-formed
// runqueue/xarray/IDR images that are then corrupted (cut and redirected links, cycles,
// self-loops, random per-CPU tables, random and absent offsets) -- checking each result
// against its documented bounds. Deterministic: input i of seed s is always the same call on
// the same image (images are rebuilt per epoch of EPOCH inputs from rng(seed, epoch)).
// Used by the garbage property test (a short run) and `npm run fuzz:introspect` (>= 1 M
// inputs in a worker thread with a watchdog, test/bench/fuzz-introspect.ts).

import * as abi from '../../assembly/monitor-abi.js';
import * as progAbi from '../../assembly/introspect-abi.js';
import { NOT_MAPPED, type Introspector, type KernelOffsets } from '../../src/monitor/index.js';
import { IMAGE_BASE, SyntheticGuest, TEST_OFFSETS, rng } from './synthetic-guest.js';
import { RQ_TEST_OFFSETS, RUNQUEUES_SYM, SyntheticRunqueues, rqSpec } from './synthetic-runqueues.js';

export const CALLS = ['walk', 'kvaToPa', 'xaLoad', 'xaFind', 'enumStructOps', 'sampleRunqueues', 'readers'] as const;
export type CallName = (typeof CALLS)[number];

const PROG_FLAGS = progAbi.FLAG_STATS | progAbi.FLAG_OBJ | progAbi.FLAG_SATURATED | progAbi.FLAG_NAME_FAULT;

/** Inputs per image; the image is rebuilt (and re-seeded) at each epoch. */
export const EPOCH = 4096;
const RAM = 4 << 20; // garbage images; built images get IMAGE_RAM
const IMAGE_RAM = 16 << 20;
const MUTATE_EVERY = 64;

export interface FuzzFinding {
  kind: 'trap' | 'bound' | 'slow' | 'hang';
  input: number;
  call: CallName;
  detail: string;
}

export interface FuzzReport {
  inputs: number;
  traps: number;
  /** Results outside their documented bounds. */
  violations: number;
  /** Calls that took longer than the budget. */
  slow: number;
  perCall: Record<CallName, { calls: number; ms: number; maxMs: number }>;
  /** Coverage: runqueue records seen with each RQF_* bit (index = bit number), and tasks walked. */
  rqFlags: number[];
  rqTasks: number;
  /** struct_ops programs found by enumStructOps calls. */
  structOps: number;
  findings: FuzzFinding[];
}

export interface FuzzOptions {
  seed: number;
  /** Inputs [first, first + count). */
  first?: number;
  count: number;
  /** A call over this many ms is reported as slow (a hang by the fuzzer's definition). */
  budgetMs?: number;
  /** Written as inputs complete: [0] = inputs done, [1] = CALLS index of the call running. */
  progress?: Int32Array;
  /** Keep at most this many findings. */
  maxFindings?: number;
  /** Called before each input (the runner's watchdog check hangs a worker here). */
  beforeInput?: (input: number) => void;
}

function big(rand: () => number): bigint {
  return (BigInt(rand()) << 32n) | BigInt(rand());
}

/** An address that often lands in the image: direct map, xa_node-like, kernel text, list-ish, or anything. */
function plausibleKva(g: SyntheticGuest, rand: () => number, known: bigint[]): bigint {
  switch (rand() % 6) {
    case 0:
      return g.kva(rand() % g.ramBytes);
    case 1:
      return g.kva(rand() % g.ramBytes) | 2n;
    case 2:
      return 0xffff_ffff_8000_0000n + BigInt(rand() % g.ramBytes);
    case 3:
      return known.length > 0 ? known[rand() % known.length] + BigInt((rand() % 64) - 32) : 0n;
    case 4:
      return [0n, NOT_MAPPED, 0xdead_0000_0000_0100n, g.kva(g.ramBytes - 1 - (rand() % 16))][rand() % 4];
    default:
      return big(rand);
  }
}

/** One epoch's image and the core configured over it. */
interface Image {
  g: SyntheticGuest;
  intro: Introspector;
  rand: () => number;
  offsets: KernelOffsets;
  /** Addresses worth pointing at: rqs, list heads, task nodes, xarray nodes, idrs. */
  known: bigint[];
  idrs: bigint[];
  heads: bigint[];
  /** The list bound for sampleRunqueues in this epoch. */
  listLimit: number;
  /** The epoch's configuration, which mutate() perturbs and restores. */
  mon: number[];
  perCpu: { kva: bigint; slots: number };
  sym: bigint;
}

function garbage(g: SyntheticGuest, rand: () => number, known: bigint[]): void {
  const words = new Uint32Array(g.memory.buffer, IMAGE_BASE, RAM / 4);
  for (let i = 0; i < words.length; i++) words[i] = rand();
  for (let i = 0; i < 20_000; i++) g.w64((rand() % (RAM / 8)) * 8, plausibleKva(g, rand, known));
  for (let i = 0; i < 2_000; i++) g.w64((rand() % (RAM / 8)) * 8, BigInt(rand() % RAM) | 0x83n);
  for (let i = 0; i < 500; i++) {
    const at = (rand() % (RAM / 8)) * 8;
    g.w64(at, g.kva(at));
  } // self-loops
}

/** Random monitor offsets: the test layout, perturbed, absent or anywhere. */
function monitorOffsets(rand: () => number, kind: number): number[] {
  const t = [...RQ_TEST_OFFSETS];
  if (kind === 0) return t.map(() => (rand() % 4 === 0 ? abi.MON_ABSENT : rand() % 8192));
  for (let i = 0; i < t.length; i++) {
    const r = rand() % 16;
    if (r === 0) t[i] = abi.MON_ABSENT;
    else if (r === 1) t[i] = t[i] + (rand() % 64) - 32;
    else if (r === 2) t[i] = rand() % 65536;
    else if (r === 3) t[i] = -(rand() % 1000) - 2; // other negatives: also absent
  }
  return t;
}

/** Writes `n` random words (pointers into the image, zeros, self-pointers, garbage) at random places. */
function corrupt(g: SyntheticGuest, rand: () => number, known: bigint[], n: number, below: number): void {
  for (let i = 0; i < n; i++) {
    const at = (rand() % (below / 8)) * 8 + (rand() % 8 === 0 ? rand() % 8 : 0);
    const v = rand() % 5 === 0 ? 0n : rand() % 5 === 1 ? g.kva(at) : plausibleKva(g, rand, known);
    if (at + 8 <= g.ramBytes) g.w64(at, v);
  }
}

function buildImage(seed: number, epoch: number): Image {
  const rand = rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
  const kind = epoch % 4;
  const g = new SyntheticGuest({ ramBytes: kind === 0 ? RAM : IMAGE_RAM, la57: epoch % 7 === 3 });
  const known: bigint[] = [];
  const idrs: bigint[] = [];
  const heads: bigint[] = [];
  let mon = monitorOffsets(rand, kind);
  let perCpu: { kva: bigint; slots: number } = {
    kva: plausibleKva(g, rand, known),
    slots: rand() % 2 === 0 ? rand() % 64 : rand() % 9000,
  };
  let listLimit = [0, 1, 16, 4096][rand() % 4];
  let sym = kind === 0 ? big(rand) : RUNQUEUES_SYM;
  if (kind !== 0) {
    // well-formed runqueues and an IDR of programs first, then damage
    const cpus = 1 + (kind === 3 ? rand() % 128 : rand() % 48);
    const rqs = new SyntheticRunqueues(g, cpus, RQ_TEST_OFFSETS, cpus + (rand() % 4));
    for (let cpu = 0; cpu < cpus; cpu++) {
      const made = rqs.setRq(cpu, rqSpec(cpu, rand() % (kind === 3 ? 24 : 12), 1 + (rand() % 50_000), BigInt(rand())));
      known.push(rqs.rqKva[cpu], rqs.listHeadKva(cpu));
      for (const t of made.runnable) known.push(rqs.nodeKva(t), t.kva);
      if (kind === 3 && made.runnable.length > 0) {
        // hostile: a self-loop or a cycle that skips the head
        const last = made.runnable[made.runnable.length - 1];
        const to = made.runnable[rand() % made.runnable.length];
        g.w64(rqs.nodePa(last), rqs.nodeKva(to));
      }
    }
    const progs = new Map<number, bigint>();
    const nProgs = rand() % 24;
    const pcpu = g.perCpu(4);
    for (let i = 0; i < nProgs; i++) {
      progs.set(
        1 + (rand() % 4000),
        g.bpfProg({
          type: rand() % 2 === 0 ? TEST_OFFSETS.progTypeStructOps : 1,
          id: i + 1,
          name: `p${i}`,
          verifiedInsns: rand() % 1000,
          usedMaps: [g.bpfMap('obj.bss'), g.bpfMap('x')],
          stats: { perCpuBasePa: pcpu.areaPa[0] + 0x40, values: [] },
        }),
      );
    }
    const idr = g.idr(progs, rand() % 3 === 0 ? rand() % 100 : 0);
    idrs.push(idr);
    heads.push(g.r64(Number(idr - g.pageOffset) + TEST_OFFSETS.idrRt + TEST_OFFSETS.xaHead));
    known.push(idr);
    const used = Math.min(g.ramBytes, 0x10_0000 + cpus * 0x2000 + (cpus * 24 + nProgs * 20) * 0x900);
    if (kind !== 2) mon = [...RQ_TEST_OFFSETS];
    perCpu = rand() % 4 === 0 ? { kva: rqs.perCpuKva, slots: rand() % 9000 } : { kva: rqs.perCpuKva, slots: rqs.slots };
    corrupt(g, rand, known, kind === 1 ? rand() % 40 : rand() % 400, used);
    if (kind === 3) listLimit = [65536, 4096, 4096, 256][rand() % 4];
  } else {
    garbage(g, rand, known);
    // a per-CPU table somewhere in the garbage, most of its offsets landing in the image
    const slots = 1 + (rand() % 600);
    const at = (rand() % ((g.ramBytes - slots * 8) / 8)) * 8;
    sym = BigInt(rand() % 0x40000);
    for (let s = 0; s < slots; s++)
      g.w64(at + s * 8, rand() % 4 === 0 ? plausibleKva(g, rand, known) : g.kva(rand() % g.ramBytes) - sym);
    perCpu = { kva: g.kva(at), slots };
  }
  const intro = g.introspector();
  const offsets: KernelOffsets =
    kind === 0 && rand() % 2 === 0
      ? {
          ...TEST_OFFSETS,
          xaNodeSlots: rand() % 4096,
          progAux: rand() % 8192,
          auxUsedMaps: rand() % 4096,
          auxName: rand() % 5000,
          statsNsecs: rand() % 100_000,
          progTypeStructOps: rand() % 2 === 0 ? TEST_OFFSETS.progTypeStructOps : rand(),
        }
      : TEST_OFFSETS;
  intro.setOffsets(offsets);
  if (kind === 0) intro.setPaging(BigInt(rand() % g.ramBytes), g.la57);
  intro.setPerCpu(perCpu.kva, perCpu.slots);
  mon.forEach((v, i) => intro.core.setMonitorOffset(i, v));
  intro.core.setRunqueues(sym);
  return { g, intro, rand, offsets, known, idrs, heads, listLimit, mon, perCpu, sym };
}

/** Between inputs: a few words rewritten and sometimes a new configuration. */
function mutate(im: Image): void {
  const { g, rand, intro } = im;
  corrupt(g, rand, im.known, 1 + (rand() % 8), g.ramBytes);
  const mon = rand() % 4 === 0 ? monitorOffsets(rand, rand() % 3) : im.mon; // perturbed, else restored
  mon.forEach((v, i) => intro.core.setMonitorOffset(i, v));
  if (rand() % 8 === 0) intro.setPerCpu(plausibleKva(g, rand, im.known), rand() % 9000);
  else intro.setPerCpu(im.perCpu.kva, im.perCpu.slots);
  if (rand() % 16 === 0)
    intro.setPaging(
      rand() % 4 === 0 ? BigInt(rand() % g.ramBytes) : BigInt(g.cr3),
      rand() % 8 === 0 ? !g.la57 : g.la57,
    );
}

const hex = (v: bigint): string => `0x${BigInt.asUintN(64, v).toString(16)}`;

/**
 * Calls input `i`'s walk on the image and returns a bound violation (or null). Throws what the
 * core throws (a trap).
 */
function runInput(im: Image, call: CallName, report: FuzzReport): string | null {
  const { g, intro, rand } = im;
  const core = intro.core;
  const kva = (): bigint => plausibleKva(g, rand, im.known);
  switch (call) {
    case 'walk': {
      const va = rand() % 2 === 0 ? big(rand) : kva();
      const pa = BigInt.asUintN(64, core.walk(va));
      return pa === NOT_MAPPED || pa < 1n << 52n ? null : `walk(${hex(va)}) = ${hex(pa)}: not a 52-bit address`;
    }
    case 'kvaToPa': {
      const k = kva();
      const pa = BigInt.asUintN(64, core.kvaToPa(k));
      return pa === NOT_MAPPED || pa < 1n << 52n ? null : `kvaToPa(${hex(k)}) = ${hex(pa)}`;
    }
    case 'xaLoad': {
      const head = rand() % 3 === 0 && im.heads.length > 0 ? im.heads[0] : kva();
      core.xaLoad(head, rand() % 2 === 0 ? BigInt(rand() % 5000) : big(rand));
      return null;
    }
    case 'xaFind': {
      const head = rand() % 3 === 0 && im.heads.length > 0 ? im.heads[0] : kva();
      const start = rand() % 4 === 0 ? big(rand) : BigInt(rand() % 5000);
      const max = rand() % 4 === 0 ? NOT_MAPPED : BigInt(rand() % (1 << 20));
      const found = BigInt.asUintN(64, core.xaFind(head, start, max));
      if (found === NOT_MAPPED) return null;
      return found >= start && found <= max
        ? null
        : `xaFind(${hex(head)}, ${start}, ${max}) = ${found}: outside [start, max]`;
    }
    case 'enumStructOps': {
      const idr = rand() % 2 === 0 && im.idrs.length > 0 ? im.idrs[0] : kva();
      const max = [0, 1, 512, 100_000, -5][rand() % 5];
      const n = core.enumStructOps(idr, max);
      const seen = core.programsSeen();
      if (n < -1 || seen > 65537 || seen < 0 || n > seen) return `enumStructOps(${hex(idr)}) = ${n}, ${seen} seen`;
      if (n > 0) report.structOps += n;
      const v = new DataView(intro.memory.buffer, core.outPtr());
      for (let r = 0; r < Math.min(n, Math.max(0, Math.min(max, core.outCapacity()))); r++) {
        const flags = v.getUint32(r * progAbi.RECORD_SIZE + progAbi.REC_FLAGS, true);
        if ((flags & ~PROG_FLAGS) !== 0 || v.getUint32(r * progAbi.RECORD_SIZE + progAbi.REC_USED_MAPS, true) > 64)
          return `enumStructOps record ${r}: flags ${flags}`;
      }
      return null;
    }
    case 'sampleRunqueues': {
      let cpus = core.setRunqueues(rand() % 8 === 0 ? big(rand) : im.sym);
      if (rand() % 16 === 0) cpus = core.setRunqueues(BigInt(rand() % 4096));
      const first = rand() % 4 === 0 ? (rand() % 9000) - 100 : rand() % 4 === 0 ? rand() | 0 : rand() % 8;
      const count = rand() % 4 === 0 ? rand() | 0 : rand() % 600;
      const limit = rand() % 8 === 0 ? [-1, 0, 1 << 30][rand() % 3] : im.listLimit;
      const n = core.sampleRunqueues(first, count, limit);
      const cap = limit < 0 ? 0 : Math.min(limit, 65536);
      const want = first < 0 || count <= 0 || first >= cpus ? 0 : Math.min(count, abi.RQ_OUT_RECORDS, cpus - first);
      if (n !== want) return `sampleRunqueues(${first}, ${count}) = ${n}, expected ${want} of ${cpus} CPUs`;
      const v = new DataView(intro.memory.buffer, core.rqOutPtr());
      let total = 0;
      for (let r = 0; r < n; r++) {
        const o = r * abi.RQ_RECORD_SIZE;
        const flags = v.getUint32(o + abi.RQ_FLAGS, true);
        const walked = v.getUint32(o + abi.RQ_RUNNABLE_COUNT, true);
        if ((flags & ~63) !== 0) return `record ${r}: unknown flag bits ${flags}`;
        for (let b = 0; b < 6; b++) if ((flags & (1 << b)) !== 0) report.rqFlags[b]++;
        report.rqTasks += walked;
        if (walked > cap) return `record ${r}: ${walked} runnable over the bound ${cap}`;
        if ((flags & abi.RQF_NO_CPU) !== 0 && flags !== abi.RQF_NO_CPU)
          return `record ${r}: NO_CPU with flags ${flags}`;
        if ((flags & abi.RQF_READ) === 0 && (flags & ~abi.RQF_NO_CPU) !== 0)
          return `record ${r}: flags ${flags} on an unreadable rq`;
        total += walked;
        if (total > abi.RQ_STEP_BUDGET)
          return `records 0..${r}: ${total} list steps, over the call's budget ${abi.RQ_STEP_BUDGET}`;
        // truncated: at the per-CPU bound, or where the call's step budget ran out
        if ((flags & abi.RQF_LIST_TRUNCATED) !== 0 && walked !== cap && total !== abi.RQ_STEP_BUDGET)
          return `record ${r}: truncated at ${walked}, bound ${cap}, ${total} steps`;
      }
      return null;
    }
    case 'readers': {
      const len = [0, 1, 7, 16, 4096, 65536, 65537, -1][rand() % 8];
      const got = core.readKvaBytes(kva(), len);
      if (len < 0 || len > core.scratchSize() ? got !== -1 : got < 0 || got > len)
        return `readKvaBytes(len ${len}) = ${got}`;
      const memBytes = intro.memory.buffer.byteLength;
      const ptr = [core.scratchPtr(), memBytes - 8, memBytes + 8, rand(), 0][rand() % 5] >>> 0;
      const cnt = [0, 1, 100, -1, 1 << 30][rand() % 5];
      const w = core.walkBatch(ptr, cnt, core.scratchPtr());
      const x = core.xaLoadBatch(kva(), ptr, cnt, core.scratchPtr());
      if (w > Math.max(cnt, 0) || x > Math.max(cnt, 0) || w < -1 || x < -1)
        return `batch readers: ${w}, ${x} of ${cnt}`;
      return null;
    }
  }
}

function emptyPerCall(): FuzzReport['perCall'] {
  const o = {} as FuzzReport['perCall'];
  for (const c of CALLS) o[c] = { calls: 0, ms: 0, maxMs: 0 };
  return o;
}

/** Runs inputs [first, first + count) of `seed`. */
export function fuzzCore(options: FuzzOptions): FuzzReport {
  const first = options.first ?? 0;
  const budget = options.budgetMs ?? 250;
  const maxFindings = options.maxFindings ?? 20;
  const report: FuzzReport = {
    inputs: 0,
    traps: 0,
    violations: 0,
    slow: 0,
    perCall: emptyPerCall(),
    rqFlags: [0, 0, 0, 0, 0, 0],
    rqTasks: 0,
    structOps: 0,
    findings: [],
  };
  const note = (f: FuzzFinding): void => {
    if (report.findings.length < maxFindings) report.findings.push(f);
  };
  let im: Image | null = null;
  let epoch = -1;
  for (let i = first; i < first + options.count; i++) {
    const e = Math.floor(i / EPOCH);
    if (e !== epoch || im === null) {
      epoch = e;
      im = buildImage(options.seed, e);
    }
    options.beforeInput?.(i);
    const rand = rng((options.seed ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0);
    im.rand = rand;
    if (i % MUTATE_EVERY === 0) mutate(im);
    const call = CALLS[rand() % CALLS.length];
    if (options.progress !== undefined) Atomics.store(options.progress, 1, CALLS.indexOf(call));
    const t0 = performance.now();
    let violation: string | null = null;
    try {
      violation = runInput(im, call, report);
    } catch (err) {
      report.traps++;
      note({ kind: 'trap', input: i, call, detail: String(err) });
    }
    const ms = performance.now() - t0;
    const pc = report.perCall[call];
    pc.calls++;
    pc.ms += ms;
    if (ms > pc.maxMs) pc.maxMs = ms;
    if (violation !== null) {
      report.violations++;
      note({ kind: 'bound', input: i, call, detail: violation });
    }
    if (ms > budget) {
      report.slow++;
      note({ kind: 'slow', input: i, call, detail: `${ms.toFixed(1)} ms` });
    }
    report.inputs++;
    if (options.progress !== undefined) Atomics.store(options.progress, 0, report.inputs);
  }
  return report;
}
