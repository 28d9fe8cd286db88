// `npm run bench:introspect`: the WASM introspection core against the same algorithms in
// plain TypeScript over a DataView (src/monitor/ts-walker.ts), in the same run, on synthetic
// guest memory: page-table translations/s (4- and 5-level, 4 KiB pages in a scattered
// vmalloc-like area plus 2 MiB pages), xa_load/s on a 3-level xarray, the time of a full
// struct_ops enumeration (a scheduler's worth of programs on 8 CPUs), and the time of one full
// per-CPU runqueue sample at 4, 64 and 256 vCPUs (the core's sampleRunqueues, the whole
// RunqueueSampler.sample() with its decoding, and sampleRunqueuesTs on the same image) with
// the monitor's CPU cost at its 100 ms interval. Prints tables and the goals (>= 20 M
// translations/s, WASM >= 3x TS, enumeration < 100 us, a 64-vCPU sample < 200 us) and the read of a
// 64k-entry BPF hash map through openMaps; and, with the shared vmlinux, loading its kernel
// image as a cell does (the indexed .symtab and BTF) against decoding every symbol and type as
// well (what the load did before the indexes). Asserts nothing.

import { MapsGuest, cat, le } from '../introspect/synthetic-maps.js';
import { openMaps } from '../../src/monitor/bpf-maps.js';
import * as abi from '../../assembly/monitor-abi.js';
import { DataViewWalker } from '../../src/monitor/index.js';
import { loadPerCpuTs, sampleRunqueuesTs } from '../../src/monitor/ts-walker.js';
import { IMAGE_BASE, SyntheticGuest, rng } from '../introspect/synthetic-guest.js';
import { withFileSource } from '../../src/elf/file-source.js';
import { loadKernelImage } from '../../src/monitor/kernel-image.js';
import { SyntheticRunqueues, rqSpec, runqueueSampler } from '../introspect/synthetic-runqueues.js';
import { sharedVmlinux } from '../helpers/test-kernel.js';

const ADDRESSES = 1 << 16;
const ROUNDS = 7;
const MIN_MS = 200;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Operations per second: median over ROUNDS of repeated runs of >= MIN_MS each. */
function rate(opsPerCall: number, call: () => void): number {
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let calls = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < MIN_MS) {
      call();
      calls++;
      t = performance.now();
    }
    rates.push((calls * opsPerCall) / ((t - t0) / 1000));
  }
  return median(rates);
}

function translations(la57: boolean): { wasm: number; ts: number } {
  const g = new SyntheticGuest({ la57, ramBytes: 256 << 20 });
  const rand = rng(la57 ? 99 : 42);
  const base = la57 ? 0xff7f_0000_0000_0000n : 0xffff_c900_0000_0000n;
  const pages = 8192;
  for (let i = 0; i < pages; i++) g.map(base + BigInt(i) * 0x1000n, (rand() % 32768) * 4096 + 0x400_0000);
  for (let i = 0; i < 64; i++)
    g.map(base + 0x4000_0000n + BigInt(i) * 0x20_0000n, 0x200_0000 + i * 0x20_0000, 0x20_0000);
  const inPa = g.alloc(ADDRESSES * 8);
  const outPa = g.alloc(ADDRESSES * 8);
  const hi = new Uint32Array(ADDRESSES);
  const lo = new Uint32Array(ADDRESSES);
  for (let i = 0; i < ADDRESSES; i++) {
    const va =
      i % 8 === 7
        ? base + 0x4000_0000n + BigInt(rand() % (64 * 0x20_0000))
        : base + BigInt(rand() % pages) * 0x1000n + BigInt(rand() % 4096);
    g.w64(inPa + i * 8, va);
    hi[i] = Number(va >> 32n);
    lo[i] = Number(va & 0xffff_ffffn);
  }
  const intro = g.introspector();
  const ts = new DataViewWalker(g.view, intro.regions);
  ts.setPaging(BigInt(g.cr3), la57);
  // both must agree before they are timed
  const ok = intro.core.walkBatch(IMAGE_BASE + inPa, ADDRESSES, IMAGE_BASE + outPa);
  let tsOk = 0;
  for (let i = 0; i < ADDRESSES; i++) if (ts.walkParts(hi[i], lo[i]) >= 0) tsOk++;
  if (ok !== ADDRESSES || tsOk !== ADDRESSES)
    throw new Error(`translations disagree: wasm ${ok}, ts ${tsOk} of ${ADDRESSES}`);
  let sink = 0;
  const wasm = rate(ADDRESSES, () => {
    sink += intro.core.walkBatch(IMAGE_BASE + inPa, ADDRESSES, IMAGE_BASE + outPa);
  });
  const tsRate = rate(ADDRESSES, () => {
    for (let i = 0; i < ADDRESSES; i++) sink += ts.walkParts(hi[i], lo[i]);
  });
  if (sink === 0.5) console.log(sink);
  return { wasm, ts: tsRate };
}

function xaLoads(): { wasm: number; ts: number } {
  const g = new SyntheticGuest({ ramBytes: 128 << 20 });
  const rand = rng(7);
  const entries = new Map<number, bigint>();
  while (entries.size < 20_000) {
    const i = rand() % 200_000;
    entries.set(i, g.kva(0x10_0000 + i * 8));
  }
  const head = g.xarray(entries);
  const keys = [...entries.keys()];
  const inPa = g.alloc(ADDRESSES * 8);
  const outPa = g.alloc(ADDRESSES * 8);
  const idx = new Float64Array(ADDRESSES);
  for (let i = 0; i < ADDRESSES; i++) {
    idx[i] = keys[rand() % keys.length];
    g.w64(inPa + i * 8, BigInt(idx[i]));
  }
  const intro = g.introspector();
  const ts = new DataViewWalker(g.view, intro.regions);
  ts.setKernel(g.pageOffset, 0n);
  ts.setXarrayOffsets(g.offsets.xaNodeShift, g.offsets.xaNodeSlots);
  const headHi = Number(head >> 32n);
  const headLo = Number(head & 0xffff_ffffn);
  const found = intro.core.xaLoadBatch(head, IMAGE_BASE + inPa, ADDRESSES, IMAGE_BASE + outPa);
  let tsFound = 0;
  for (let i = 0; i < ADDRESSES; i++) if (ts.xaLoadParts(headHi, headLo, idx[i])) tsFound++;
  if (found !== ADDRESSES || tsFound !== ADDRESSES) throw new Error(`xa_load disagrees: wasm ${found}, ts ${tsFound}`);
  let sink = 0;
  const wasm = rate(ADDRESSES, () => {
    sink += intro.core.xaLoadBatch(head, IMAGE_BASE + inPa, ADDRESSES, IMAGE_BASE + outPa);
  });
  const tsRate = rate(ADDRESSES, () => {
    for (let i = 0; i < ADDRESSES; i++) if (ts.xaLoadParts(headHi, headLo, idx[i])) sink++;
  });
  if (sink === 0.5) console.log(sink);
  return { wasm, ts: tsRate };
}

function enumeration(): number {
  const g = new SyntheticGuest({ ramBytes: 64 << 20 });
  const pcpu = g.perCpu(8);
  const statsBase = pcpu.areaPa[0] + 0x80;
  const bss = g.bpfMap('scx_simple.bss');
  const progs = new Map<number, bigint>();
  for (let i = 0; i < 40; i++)
    progs.set(
      i + 1,
      g.bpfProg({
        type: i < 30 ? 26 : 27,
        id: i + 1,
        name: `prog_${i}`,
        verifiedInsns: 100 + i,
        usedMaps: [g.bpfMap('x'), bss],
        stats: { perCpuBasePa: statsBase, values: [] },
      }),
    );
  const idr = g.idr(progs);
  const intro = g.introspector();
  intro.setPerCpu(pcpu.arrayKva, 8);
  if (intro.structOpsPrograms(idr).programs.length !== 10) throw new Error('enumeration found the wrong programs');
  const perSecond = rate(1, () => {
    intro.structOpsPrograms(idr);
  });
  return 1e6 / perSecond;
}

/** Monitor sampling interval (src/cell's default). */
const INTERVAL_MS = 100;
const MAX_RUNNABLE = 8; // a loaded sched_ext test: 0-8 tasks waiting per CPU

interface RqTimes {
  cpus: number;
  tasks: number;
  core: number;
  sampler: number;
  ts: number;
}

/** One full sample of `cpus` runqueues (us): the core's call, RunqueueSampler.sample(), the TS sampler. */
function runqueueSample(cpus: number): RqTimes {
  const g = new SyntheticGuest({ ramBytes: 64 << 20 });
  const rand = rng(cpus);
  const rqs = new SyntheticRunqueues(g, cpus);
  let tasks = 0;
  for (let cpu = 0; cpu < cpus; cpu++) {
    const n = rand() % (MAX_RUNNABLE + 1);
    rqs.setRq(cpu, rqSpec(cpu, n, 1000 + cpu * 16));
    tasks += n;
  }
  const intro = g.introspector();
  const sampler = runqueueSampler(intro, rqs);
  const walker = new DataViewWalker(g.view, intro.regions);
  walker.setPaging(BigInt(g.cr3), false);
  walker.setKernel(g.pageOffset, 0n);
  const config = rqs.config();
  const perCpu = loadPerCpuTs(walker, config);
  const out = new DataView(new ArrayBuffer(abi.RQ_OUT_RECORDS * abi.RQ_RECORD_SIZE));
  // all three must agree before they are timed
  const samples = sampler.sample();
  if (samples.length !== cpus || samples.reduce((n, r) => n + r.runnable, 0) !== tasks)
    throw new Error(`runqueue sample of ${cpus} CPUs is wrong`);
  intro.core.sampleRunqueues(0, cpus, 4096);
  sampleRunqueuesTs(walker, config, perCpu, 0, cpus, 4096, out);
  const wasmBytes = new Uint8Array(intro.memory.buffer, intro.core.rqOutPtr(), cpus * abi.RQ_RECORD_SIZE);
  const tsBytes = new Uint8Array(out.buffer, 0, cpus * abi.RQ_RECORD_SIZE);
  if (!wasmBytes.every((b, i) => b === tsBytes[i])) throw new Error(`runqueue records disagree at ${cpus} CPUs`);
  let sink = 0;
  const core =
    1e6 /
    rate(1, () => {
      sink += intro.core.sampleRunqueues(0, cpus, 4096);
    });
  const whole =
    1e6 /
    rate(1, () => {
      sink += sampler.sample().length;
    });
  const ts =
    1e6 /
    rate(1, () => {
      sink += sampleRunqueuesTs(walker, config, perCpu, 0, cpus, 4096, out);
    });
  if (sink === 0.5) console.log(sink);
  return { cpus, tasks, core, sampler: whole, ts };
}

/** A 64k-entry hash map (16-byte keys, 16-byte values, 16k buckets) read whole through openMaps: ms per read, elements/s. */
function hashMapRead(): { ms: number; perSec: number; entries: number } {
  const N = 65_536;
  const mg = new MapsGuest(4);
  const items: [number, Uint8Array, Uint8Array][] = [];
  for (let i = 0; i < N; i++) items.push([i % 16_384, cat(le(i, 8), le(i * 7, 8)), cat(le(i * 3, 8), le(1, 8))]);
  mg.hash({ id: 1, name: 'big', type: 'hash', keySize: 16, valueSize: 16, maxEntries: N }, 16_384, items);
  const map = openMaps(mg.open()).map('big');
  let entries = map.entries(N + 1).entries.length; // warm up
  const runs = 5;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) entries = map.entries(N + 1).entries.length;
  const ms = (performance.now() - t0) / runs;
  return { ms, perSec: entries / (ms / 1000), entries };
}

const row = (name: string, r: { wasm: number; ts: number }): string =>
  `${name.padEnd(26)}${(r.wasm / 1e6).toFixed(1).padStart(10)}${(r.ts / 1e6).toFixed(1).padStart(10)}${(r.wasm / r.ts).toFixed(2).padStart(8)}`;

const t4 = translations(false);
const t5 = translations(true);
const xa = xaLoads();
const enumMicros = enumeration();
/** ms to load the shared vmlinux's kernel image (median of ROUNDS), and to load it and decode every symbol and type. */
function kernelImageLoad(): { indexed: number; decoded: number; symbols: number; types: number } | null {
  const vmlinux = sharedVmlinux();
  if (vmlinux === undefined) return null;
  const indexed: number[] = [];
  const decoded: number[] = [];
  let symbols = 0;
  let types = 0;
  for (let r = 0; r < ROUNDS; r++) {
    let t = performance.now();
    withFileSource(vmlinux, (source) => loadKernelImage(source));
    indexed.push(performance.now() - t);
    t = performance.now();
    const image = withFileSource(vmlinux, (source) => loadKernelImage(source));
    symbols = new Map(image.symbols).size;
    for (types = 0; types < image.btf.count; types++) image.btf.type(types);
    decoded.push(performance.now() - t);
  }
  return { indexed: median(indexed), decoded: median(decoded), symbols, types };
}

const rq = [4, 64, 256].map(runqueueSample);
const image = kernelImageLoad();
const big = hashMapRead();
console.log(`${'M ops/s'.padEnd(26)}${'wasm'.padStart(10)}${'ts'.padStart(10)}${'ratio'.padStart(8)}`);
console.log(row('translations, 4-level', t4));
console.log(row('translations, 5-level', t5));
console.log(row('xa_load, 3-level tree', xa));
console.log(
  `\nstruct_ops enumeration (40 programs in prog_idr, 10 struct_ops, 8 CPUs): ${enumMicros.toFixed(1)} us per call`,
);
console.log(`\nrunqueue sample, all CPUs (0-${MAX_RUNNABLE} runnable tasks each), us per sample:`);
console.log(
  `${'vCPUs'.padEnd(8)}${'tasks'.padStart(7)}${'wasm core'.padStart(11)}${'sampler'.padStart(10)}${'ts'.padStart(10)}${'ts/core'.padStart(9)}${'ts/sampler'.padStart(12)}${`CPU @${INTERVAL_MS}ms`.padStart(13)}`,
);
for (const r of rq) {
  console.log(
    `${String(r.cpus).padEnd(8)}${String(r.tasks).padStart(7)}${r.core.toFixed(1).padStart(11)}${r.sampler.toFixed(1).padStart(10)}${r.ts.toFixed(1).padStart(10)}` +
      `${(r.ts / r.core).toFixed(2).padStart(9)}${(r.ts / r.sampler).toFixed(2).padStart(12)}${`${((r.sampler / 1000 / INTERVAL_MS) * 100).toFixed(3)}%`.padStart(13)}`,
  );
}
console.log(
  '  (sampler = RunqueueSampler.sample(): the core call plus decoding into objects; CPU = sampler us per interval, % of one CPU)',
);
console.log(
  `\nhash map read (openMaps(...).map('big').entries()): ${big.entries} entries in ${big.ms.toFixed(1)} ms, ${(big.perSec / 1e6).toFixed(2)} M entries/s`,
);
console.log(
  image === null
    ? '\nkernel image load: skipped (the shared sched_ext vmlinux is missing)'
    : `\nkernel image load (shared vmlinux, as a cell: indexed .symtab and BTF): ${image.indexed.toFixed(0)} ms; ` +
        `with all ${image.symbols} symbols and ${image.types} types decoded too: ${image.decoded.toFixed(0)} ms ` +
        `(${(image.decoded / image.indexed).toFixed(1)}x)`,
);
const rq64 = rq.find((r) => r.cpus === 64)!;
const goals = [
  [`>= 20 M translations/s (4-level: ${(t4.wasm / 1e6).toFixed(1)} M)`, t4.wasm >= 20e6],
  [
    `WASM >= 3x TS on translations (${(t4.wasm / t4.ts).toFixed(2)}x / ${(t5.wasm / t5.ts).toFixed(2)}x)`,
    t4.wasm >= 3 * t4.ts && t5.wasm >= 3 * t5.ts,
  ],
  [`WASM >= 3x TS on xa_load (${(xa.wasm / xa.ts).toFixed(2)}x)`, xa.wasm >= 3 * xa.ts],
  [`enumeration < 100 us (${enumMicros.toFixed(1)} us)`, enumMicros < 100],
  [
    `64-vCPU runqueue sample < 200 us (${rq64.sampler.toFixed(1)} us with decoding, ${rq64.core.toFixed(1)} us in the core)`,
    rq64.sampler < 200,
  ],
] as const;
console.log('\ngoals:');
for (const [what, met] of goals) console.log(`  ${met ? 'met    ' : 'MISSED '} ${what}`);
