// Test helper: BPF maps in a synthetic guest. A kernel BTF (written by BtfWriter) lays out
// struct bpf_map / bpf_array / bpf_htab / bucket / htab_elem / hlist_nulls_node / btf with
// offsets unlike the real kernel's (and a shuffled enum bpf_map_type), and the helpers below
// place maps of each type in guest memory with that layout -- ARRAY, PERCPU_ARRAY, the hash
// family with chained buckets, and the map's own BTF blob -- so tests know what openMaps()
// must find.

import { Btf, GuestKernel, type KernelImage, type KernelLayout } from '../../src/monitor/index.js';
import { BtfWriter } from './btf-writer.js';
import { SyntheticGuest, TEST_OFFSETS } from './synthetic-guest.js';

/** enum bpf_map_type, shuffled: names must come from the BTF, never from built-in numbers. */
export const MAP_TYPE = {
  hash: 21,
  array: 22,
  percpu_hash: 23,
  percpu_array: 24,
  lru_hash: 25,
  lru_percpu_hash: 26,
  arena: 27,
  queue: 28,
} as const;

/** Where each kernel member lives in this synthetic build. */
export const K = {
  map: {
    size: 320,
    type: 12,
    valueSize: 4,
    keySize: 60,
    id: 100,
    name: TEST_OFFSETS.mapName,
    maxEntries: 200,
    flags: 208,
    mapExtra: 216,
    keyTid: 228,
    valueTid: 232,
    vmlinuxTid: 236,
    btf: 240,
    frozen: 251,
  },
  array: { elemSize: 324, value: 336 },
  htab: { nBuckets: 400, buckets: 520, size: 600 },
  bucket: { size: 24, head: 8 },
  node: { next: 8 },
  elem: { node: 24, key: 56 },
  btf: { baseBtf: 8, data: 24, dataSize: 100 },
} as const;

function kernelBtf(): Btf {
  const w = new BtfWriter();
  const u8 = w.int('unsigned char', 1);
  const u32 = w.int('unsigned int', 4);
  const u64 = w.int('long long unsigned int', 8);
  const bool = w.int('_Bool', 1, 4);
  const voidp = w.ptr(0);
  const xarray = w.struct('xarray', 32, [{ name: 'xa_head', type: voidp, offset: TEST_OFFSETS.xaHead }]);
  w.struct('idr', 48, [
    { name: 'idr_rt', type: xarray, offset: TEST_OFFSETS.idrRt },
    { name: 'idr_base', type: u32, offset: TEST_OFFSETS.idrBase },
    { name: 'idr_next', type: u32, offset: TEST_OFFSETS.idrNext },
  ]);
  const mapType = w.enum('bpf_map_type', 4, [
    ['BPF_MAP_TYPE_UNSPEC', 0],
    ...Object.entries(MAP_TYPE).map(([n, v]): [string, number] => [`BPF_MAP_TYPE_${n.toUpperCase()}`, v]),
    ['BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED', 29],
    ['BPF_MAP_TYPE_CGROUP_STORAGE', 29],
    ['__MAX_BPF_MAP_TYPE', 30],
  ]);
  const m = K.map;
  const map = w.struct('bpf_map', m.size, [
    { name: 'map_type', type: mapType, offset: m.type },
    { name: 'value_size', type: u32, offset: m.valueSize },
    { name: 'key_size', type: u32, offset: m.keySize },
    { name: 'id', type: u32, offset: m.id },
    { name: 'name', type: w.array(w.int('char', 1, 2), 16), offset: m.name },
    { name: 'max_entries', type: u32, offset: m.maxEntries },
    { name: 'map_flags', type: u32, offset: m.flags },
    { name: 'map_extra', type: u64, offset: m.mapExtra },
    { name: 'btf_key_type_id', type: u32, offset: m.keyTid },
    { name: 'btf_value_type_id', type: u32, offset: m.valueTid },
    { name: 'btf_vmlinux_value_type_id', type: u32, offset: m.vmlinuxTid },
    { name: 'btf', type: voidp, offset: m.btf },
    { name: 'frozen', type: bool, offset: m.frozen },
  ]);
  // value/pptrs in an anonymous union, as in the kernel
  const union = w.struct(
    '',
    0,
    [
      { name: 'value', type: w.array(u8, 0), offset: 0 },
      { name: 'pptrs', type: w.array(voidp, 0), offset: 0 },
    ],
    true,
  );
  w.struct('bpf_array', K.array.value, [
    { name: 'map', type: map, offset: 0 },
    { name: 'elem_size', type: u32, offset: K.array.elemSize },
    { name: '', type: union, offset: K.array.value },
  ]);
  const node = w.struct('hlist_nulls_node', 16, [
    { name: 'pprev', type: voidp, offset: 0 },
    { name: 'next', type: voidp, offset: K.node.next },
  ]);
  const head = w.struct('hlist_nulls_head', 8, [{ name: 'first', type: voidp, offset: 0 }]);
  w.struct('bucket', K.bucket.size, [
    { name: 'raw_lock', type: u32, offset: 0 },
    { name: 'head', type: head, offset: K.bucket.head },
  ]);
  w.struct('htab_elem', K.elem.key, [
    { name: 'hash', type: u32, offset: 0 },
    { name: 'hash_node', type: node, offset: K.elem.node },
    { name: 'key', type: w.array(u8, 0), offset: K.elem.key },
  ]);
  w.struct('bpf_htab', K.htab.size, [
    { name: 'map', type: map, offset: 0 },
    { name: 'n_buckets', type: u32, offset: K.htab.nBuckets },
    { name: 'buckets', type: voidp, offset: K.htab.buckets },
  ]);
  w.struct('btf', 200, [
    { name: 'base_btf', type: voidp, offset: K.btf.baseBtf },
    { name: 'data', type: voidp, offset: K.btf.data },
    { name: 'data_size', type: u32, offset: K.btf.dataSize },
  ]);
  return new Btf(w.bytes(), 'synthetic kernel BTF');
}

/** Type ids of the program BTF below. */
export interface ProgBtf {
  bytes: Uint8Array;
  rodata: number;
  bss: number;
  stats: number;
  knobs: number;
}

/**
 * A scheduler's BTF: `.rodata` { u32 nr_cpus; char label[16]; struct knobs knobs; },
 * `.bss` { u64 nr_enqueued; u32 stats[4]; bool enabled; int level; }, and struct stats
 * { u64 cnt; u64 nsecs; } for a per-CPU map. struct knobs { u64 slice_ns; enum mode mode;
 * u32 flag:3, shift:5; u32 cpus[2]; }.
 */
export function progBtf(): ProgBtf {
  const w = new BtfWriter();
  const int = w.int('int', 4, 1);
  const u32 = w.typedef('u32', w.int('unsigned int', 4));
  const u64 = w.typedef('u64', w.int('long long unsigned int', 8));
  const char = w.int('char', 1, 2);
  const bool = w.int('_Bool', 1, 4);
  const cv = (t: number): number => w.constOf(t); // const volatile, as .rodata declares it
  const mode = w.enum('mode', 4, [
    ['MODE_FIFO', 0],
    ['MODE_WEIGHTED', 1],
    ['MODE_BOOST', 7],
  ]);
  const knobs = w.struct('knobs', 24, [
    { name: 'slice_ns', type: u64, offset: 0 },
    { name: 'mode', type: mode, offset: 8 },
    { name: 'flag', type: u32, offset: 96, bits: 3 },
    { name: 'shift', type: u32, offset: 99, bits: 5 },
    { name: 'cpus', type: w.array(u32, 2), offset: 16 },
  ]);
  const stats = w.struct('stats', 16, [
    { name: 'cnt', type: u64, offset: 0 },
    { name: 'nsecs', type: u64, offset: 8 },
  ]);
  const vNr = w.variable('nr_cpus', cv(u32));
  const vLabel = w.variable('label', cv(w.array(char, 16)));
  const vKnobs = w.variable('knobs', cv(knobs));
  const rodata = w.datasec('.rodata', 48, [
    [vNr, 0, 4],
    [vLabel, 4, 16],
    [vKnobs, 24, 24],
  ]);
  const vEnq = w.variable('nr_enqueued', u64);
  const vStats = w.variable('stats', w.array(u32, 4));
  const vEnabled = w.variable('enabled', bool);
  const vLevel = w.variable('level', int);
  const bss = w.datasec('.bss', 32, [
    [vEnq, 0, 8],
    [vStats, 8, 16],
    [vEnabled, 24, 1],
    [vLevel, 28, 4],
  ]);
  return { bytes: w.bytes(), rodata, bss, stats, knobs };
}

export interface MapSpec {
  id: number;
  name: string;
  type: keyof typeof MAP_TYPE;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  frozen?: boolean;
  btf?: { kva: bigint; keyTid?: number; valueTid: number };
}

export class MapsGuest {
  readonly g: SyntheticGuest;
  readonly kernel: KernelImage;
  readonly pcpu: ReturnType<SyntheticGuest['perCpu']>;
  readonly entries = new Map<number, bigint>();
  private pcpuNext = 0x100;
  private nrCpuIdsPa: number;
  private readonly symbols = new Map<string, bigint>();

  constructor(readonly cpus = 3) {
    this.g = new SyntheticGuest();
    this.pcpu = this.g.perCpu(cpus);
    this.nrCpuIdsPa = this.g.alloc(8, 8);
    this.g.w32(this.nrCpuIdsPa, cpus);
    this.kernel = {
      symbols: this.symbols,
      symbolSizes: new Map([['__per_cpu_offset', cpus * 8]]),
      btf: kernelBtf(),
      offsets: TEST_OFFSETS,
      banner: null,
    };
    this.symbols.set('nr_cpu_ids', this.g.kva(this.nrCpuIdsPa));
    this.symbols.set('__per_cpu_offset', this.pcpu.arrayKva);
  }

  /** Writes the map_idr (idr_base `base`) and opens the guest kernel. */
  open(base = 0): GuestKernel {
    const shifted = new Map([...this.entries].map(([id, e]) => [id - base, e]));
    this.symbols.set('map_idr', this.g.idr(shifted, base));
    const intro = this.g.introspector();
    const layout: KernelLayout = {
      kaslrOffset: 0n,
      physBase: 0n,
      pageOffsetBase: this.g.pageOffset,
      cr3: BigInt(this.g.cr3),
      la57: false,
      textPa: 0n,
      source: 'memory',
      checks: [],
    };
    return new GuestKernel(intro, this.kernel, layout);
  }

  /** A struct btf over `blob` (direct map); returns its kva. */
  btfObject(blob: Uint8Array, opts: { dataSize?: number; base?: bigint } = {}): bigint {
    const data = this.g.alloc(blob.length + 8, 8);
    this.g.bytes.set(blob, 4 * 1024 * 1024 + data);
    const pa = this.g.alloc(200, 64);
    this.g.w64(pa + K.btf.data, this.g.kva(data));
    this.g.w32(pa + K.btf.dataSize, opts.dataSize ?? blob.length);
    this.g.w64(pa + K.btf.baseBtf, opts.base ?? 0n);
    return this.g.kva(pa);
  }

  private header(pa: number, s: MapSpec): void {
    const g = this.g;
    const m = K.map;
    g.w32(pa + m.type, MAP_TYPE[s.type]);
    g.w32(pa + m.keySize, s.keySize);
    g.w32(pa + m.valueSize, s.valueSize);
    g.w32(pa + m.id, s.id);
    g.name(pa + m.name, s.name);
    g.w32(pa + m.maxEntries, s.maxEntries);
    g.w32(pa + m.flags, s.flags ?? 0);
    g.w8(pa + m.frozen, s.frozen === true ? 1 : 0);
    if (s.btf !== undefined) {
      g.w64(pa + m.btf, s.btf.kva);
      g.w32(pa + m.keyTid, s.btf.keyTid ?? 0);
      g.w32(pa + m.valueTid, s.btf.valueTid);
    }
    this.entries.set(s.id, g.kva(pa));
  }

  /** An ARRAY map; `values[i]` fills element i. Returns the physical address of element 0. */
  array(s: MapSpec, values: Uint8Array[] = []): { pa: number; elemSize: number } {
    const elemSize = Math.ceil(s.valueSize / 8) * 8;
    const pa = this.g.alloc(K.array.value + elemSize * s.maxEntries, 64);
    this.header(pa, s);
    this.g.w32(pa + K.array.elemSize, elemSize);
    values.forEach((v, i) => this.g.bytes.set(v, 4 * 1024 * 1024 + pa + K.array.value + i * elemSize));
    return { pa: pa + K.array.value, elemSize };
  }

  /** A per-CPU allocation of `size` bytes: the __percpu pointer and each CPU's physical address. */
  percpu(size: number): { ptr: bigint; pas: number[] } {
    const at = this.pcpuNext;
    this.pcpuNext += Math.ceil(size / 8) * 8;
    return { ptr: this.g.kva(this.pcpu.areaPa[0] + at), pas: this.pcpu.areaPa.map((a) => a + at) };
  }

  /** A PERCPU_ARRAY; `values[i][cpu]` fills element i on each CPU (no values: NULL pptrs). */
  percpuArray(s: MapSpec, values: Uint8Array[][]): void {
    const pa = this.g.alloc(K.array.value + 8 * s.maxEntries, 64);
    this.header(pa, s);
    this.g.w32(pa + K.array.elemSize, Math.ceil(s.valueSize / 8) * 8);
    for (let i = 0; i < s.maxEntries && values.length > 0; i++) {
      const p = this.percpu(s.valueSize);
      this.g.w64(pa + K.array.value + i * 8, p.ptr);
      values[i]?.forEach((v, cpu) => this.g.bytes.set(v, 4 * 1024 * 1024 + p.pas[cpu]));
    }
  }

  /**
   * A hash-family map with `nBuckets` buckets; `items` are [bucket, key, value or per-CPU
   * values]. Elements of one bucket are chained in order. Returns the bucket array's pa and
   * each element's pa.
   */
  hash(
    s: MapSpec,
    nBuckets: number,
    items: [number, Uint8Array, Uint8Array | Uint8Array[]][],
  ): { bucketsPa: number; elems: number[] } {
    const g = this.g;
    const pa = g.alloc(K.htab.size, 64);
    this.header(pa, s);
    const bucketsPa = g.alloc(nBuckets * K.bucket.size, 64);
    g.w32(pa + K.htab.nBuckets, nBuckets);
    g.w64(pa + K.htab.buckets, g.kva(bucketsPa));
    for (let b = 0; b < nBuckets; b++) g.w64(bucketsPa + b * K.bucket.size + K.bucket.head, BigInt(b * 2 + 1));
    const valueAt = K.elem.key + Math.ceil(s.keySize / 8) * 8;
    const elems: number[] = [];
    const tails = new Map<number, number>();
    for (const [b, key, value] of items) {
      const e = g.alloc(valueAt + Math.max(8, s.valueSize), 8);
      elems.push(e);
      g.bytes.set(key, 4 * 1024 * 1024 + e + K.elem.key);
      if (Array.isArray(value)) {
        const p = this.percpu(s.valueSize);
        g.w64(e + valueAt, p.ptr);
        value.forEach((v, cpu) => g.bytes.set(v, 4 * 1024 * 1024 + p.pas[cpu]));
      } else {
        g.bytes.set(value, 4 * 1024 * 1024 + e + valueAt);
      }
      const nodePa = e + K.elem.node;
      g.w64(nodePa + K.node.next, BigInt(b * 2 + 1));
      const tail = tails.get(b);
      if (tail === undefined) g.w64(bucketsPa + b * K.bucket.size + K.bucket.head, g.kva(nodePa));
      else g.w64(tail + K.node.next, g.kva(nodePa));
      tails.set(b, nodePa);
    }
    return { bucketsPa, elems };
  }

  /** A map with only a header (queue, arena...). */
  plain(s: MapSpec): number {
    const pa = this.g.alloc(K.map.size, 64);
    this.header(pa, s);
    return pa;
  }
}

/** Little-endian bytes of `v` in `size` bytes. */
export function le(v: number | bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = BigInt.asUintN(size * 8, BigInt(v));
  for (let i = 0; i < size; i++, x >>= 8n) out[i] = Number(x & 0xffn);
  return out;
}

export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
