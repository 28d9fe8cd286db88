// Reading a BPF map's elements out of the kernel's own structures: ARRAY values at
// `bpf_array.value + i * elem_size`, PERCPU_ARRAY values at `bpf_array.pptrs[i]` plus each
// possible CPU's `__per_cpu_offset`, and the hash family by walking `bpf_htab.buckets` ->
// hlist_nulls chains of `htab_elem` (key at `.key`, the value or its __percpu pointer after the
// key rounded up to 8) to each chain's nulls marker. Guest memory is hostile: the walks stop at
// max_entries elements, at a byte budget, and at the first unreadable link, and say so in
// `problems`. Browser-safe.

import type { BpfMapLayout } from './bpf-map-layout.js';
import type { GuestKernel } from './guest-kernel.js';

export interface MapEntry {
  key: Uint8Array;
  /** The value; null for a per-CPU map (see perCpu) or when it could not be read. */
  value: Uint8Array | null;
  /** Per-CPU maps: one value per possible CPU (null where unreadable). */
  perCpu?: (Uint8Array | null)[];
}

export interface MapDump {
  entries: MapEntry[];
  /** The limit, max_entries, the byte budget or a broken structure ended the walk early. */
  truncated: boolean;
  /** What was torn or unreadable, in words. */
  problems: string[];
}

/** What a walk needs of one map. */
export interface MapWalk {
  guest: GuestKernel;
  layout: BpfMapLayout;
  kva: bigint;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  perCpu: boolean;
}

/** Bytes of values one walk copies at most (a hostile max_entries x value_size x CPUs). */
export const MAX_WALK_BYTES = 64 << 20;
const BUCKET_CHUNK = 4096;

const hex = (v: bigint): string => '0x' + v.toString(16);

function indexKey(index: number): Uint8Array {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, index, true);
  return key;
}

/** Each possible CPU's copy of a __percpu value (null where the CPU's offset is unknown). */
export function perCpuValues(w: MapWalk, pptr: bigint | null): (Uint8Array | null)[] {
  const out: (Uint8Array | null)[] = [];
  for (let cpu = 0; cpu < w.guest.nrCpuIds; cpu++) {
    const off = w.guest.perCpuOffsets[cpu];
    // a 0 offset past CPU 0 is a slot GuestKernel could not read, not CPU 0's copy
    out.push(
      pptr === null || off === undefined || (off === 0n && cpu !== 0)
        ? null
        : w.guest.readBytes(BigInt.asUintN(64, pptr + off), w.valueSize),
    );
  }
  return out;
}

/** How many elements fit the byte budget. */
function byteLimit(w: MapWalk): number {
  const per = Math.max(1, w.valueSize * (w.perCpu ? w.guest.nrCpuIds : 1) + w.keySize);
  return Math.floor(MAX_WALK_BYTES / per);
}

/** Address of ARRAY element `index` (elem_size read from the map), or null when unreadable. */
export function arrayElementKva(w: MapWalk, index: number): bigint | null {
  const a = w.layout.array!;
  const elemSize = w.guest.read32(w.kva + BigInt(a.elemSize));
  if (elemSize === null || elemSize < w.valueSize) return null;
  return w.kva + BigInt(a.value) + BigInt(index) * BigInt(elemSize);
}

export function arrayElement(w: MapWalk, index: number): MapEntry {
  const key = indexKey(index);
  if (!w.perCpu) {
    const kva = arrayElementKva(w, index);
    return { key, value: kva === null ? null : w.guest.readBytes(kva, w.valueSize) };
  }
  const pptr = w.guest.read64(w.kva + BigInt(w.layout.array!.pptrs) + BigInt(index) * 8n);
  return { key, value: null, perCpu: perCpuValues(w, pptr) };
}

export function arrayWalk(w: MapWalk, limit: number): MapDump {
  if (w.layout.array === null)
    return { entries: [], truncated: true, problems: ['no struct bpf_array in the kernel BTF'] };
  const problems: string[] = [];
  const budget = byteLimit(w);
  const n = Math.min(w.maxEntries, limit, budget);
  if (n < w.maxEntries && n === budget && budget < limit)
    problems.push(`stopped at ${n} elements: ${MAX_WALK_BYTES} bytes of values`);
  const entries: MapEntry[] = [];
  for (let i = 0; i < n; i++) {
    const e = arrayElement(w, i);
    if ((e.value === null && e.perCpu === undefined) || e.perCpu?.some((v) => v === null) === true) {
      if (!problems.some((p) => p.startsWith('element'))) problems.push(`element ${i} is unreadable`);
    }
    entries.push(e);
  }
  return { entries, truncated: n < w.maxEntries, problems };
}

export function hashWalk(w: MapWalk, limit: number): MapDump {
  const h = w.layout.htab;
  if (h === null) return { entries: [], truncated: true, problems: ['no struct bpf_htab in the kernel BTF'] };
  const problems: string[] = [];
  const entries: MapEntry[] = [];
  const buckets = w.guest.read64(w.kva + BigInt(h.buckets));
  const nBuckets = w.guest.read32(w.kva + BigInt(h.nBuckets));
  if (buckets === null || nBuckets === null)
    return { entries, truncated: true, problems: ['bpf_htab.buckets/n_buckets are unreadable'] };
  // n_buckets is max_entries rounded up to a power of two
  if (nBuckets === 0 || nBuckets > 2 * Math.max(w.maxEntries, 1) || (nBuckets & (nBuckets - 1)) !== 0) {
    return { entries, truncated: true, problems: [`n_buckets ${nBuckets} does not fit max_entries ${w.maxEntries}`] };
  }
  const budget = byteLimit(w);
  // the value (per-CPU maps: its __percpu pointer) follows the key rounded up to 8 bytes
  const valueAt = h.elemKey + Math.ceil(w.keySize / 8) * 8;
  const next = h.elemNode + h.nodeNext;
  // one read per element: its link, key and value (or __percpu pointer) together
  const span = { start: Math.min(next, h.elemKey), end: Math.max(next + 8, valueAt + (w.perCpu ? 8 : w.valueSize)) };
  const at = (o: number): number => o - span.start;
  let truncated = false;
  for (let b0 = 0; b0 < nBuckets && !truncated; b0 += BUCKET_CHUNK) {
    const count = Math.min(BUCKET_CHUNK, nBuckets - b0);
    const stride = h.bucketSize;
    const chunk = w.guest.readBytes(buckets + BigInt(b0 * stride), count * stride);
    if (chunk === null) {
      problems.push(`buckets ${b0}..${b0 + count - 1} are unreadable`);
      truncated = true;
      break;
    }
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let i = 0; i < count && !truncated; i++) {
      const bucket = b0 + i;
      let node: bigint | null = view.getBigUint64(i * stride + h.bucketHead, true);
      while (node !== null && (node & 1n) === 0n) {
        if (node === 0n) {
          problems.push(`bucket ${bucket}: a NULL link (not a nulls marker)`);
          break;
        }
        if (entries.length >= limit) {
          truncated = true;
          break;
        }
        if (entries.length >= w.maxEntries) {
          // every element is in one chain: more than max_entries is a cycle or garbage
          problems.push(`more elements than max_entries (${w.maxEntries}): a cycle or garbage`);
          truncated = true;
          break;
        }
        if (entries.length >= budget) {
          problems.push(`stopped at ${budget} elements: ${MAX_WALK_BYTES} bytes of values`);
          truncated = true;
          break;
        }
        const elem = node - BigInt(h.elemNode);
        const bytes = w.guest.readBytes(elem + BigInt(span.start), span.end - span.start);
        if (bytes === null) {
          problems.push(`bucket ${bucket}: element at ${hex(elem)} is unreadable`);
          break;
        }
        const words = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const key = bytes.slice(at(h.elemKey), at(h.elemKey) + w.keySize);
        if (w.perCpu)
          entries.push({ key, value: null, perCpu: perCpuValues(w, words.getBigUint64(at(valueAt), true)) });
        else entries.push({ key, value: bytes.slice(at(valueAt), at(valueAt) + w.valueSize) });
        node = words.getBigUint64(at(next), true);
      }
      if (node !== null && (node & 1n) === 1n && node >> 1n !== BigInt(bucket))
        problems.push(`bucket ${bucket}: the chain ends in bucket ${node >> 1n}'s nulls marker`);
    }
  }
  return { entries, truncated, problems };
}
