// CPUID topology rewrite: from KVM_GET_SUPPORTED_CPUID entries to the entries one vCPU gets
// (KVM_SET_CPUID2), so the guest kernel derives exactly the declared SMT siblings, cores,
// LLCs and packages of a Topology (see src/vmm/topology/index.ts for the APIC ID layout).
//
// What Linux (6.x arch/x86/kernel/cpu/topology_*.c, cacheinfo.c) reads, and what we write:
// - both vendors: leaf 0xB (and 0x1F when the max basic leaf reaches it — Linux tries 0x1F
//   first) gives the SMT shift and the package shift ("core" level) and the x2APIC ID. AMD
//   parses it too once TOPOEXT (0x8000_0001 ECX[22]) is set, which we set.
// - leaf 0x1: EBX[31:24] initial APIC ID, EBX[23:16] addressable IDs per package, EDX[28] HTT.
// - Intel: LLC id and each cache's shared_cpu_list from leaf 4 EAX[25:14] (IDs sharing the
//   cache, rounded up to a power of two by the kernel): L1/L2 per core, L3 per LLC.
//   EAX[31:26] = addressable core IDs per package - 1 (6 bits, saturates at 63).
// - AMD: LLC id = APIC ID >> order(0x8000_001D[last].EAX[25:14] + 1) — except family 17h
//   models 0x00-0x1F, where the kernel hard-codes LLC = APIC ID >> 3 (Zen1 CCX). KVM
//   hosts of that kind (QEMU's "EPYC" model is family 17h model 1) would break the declared
//   LLCs, so we move such a model to 0x20 (still Zen1 to the kernel). The kernel also only
//   looks for L3 when 0x8000_0006 EDX is non-zero: we fill an L3 descriptor there if empty.
//   0x8000_0008 ECX: NC = logical CPUs per package - 1, ApicIdCoreIdSize = package shift.
//   0x8000_001E: EAX extended APIC ID, EBX core id + threads per core - 1, ECX node id
//   (1 node per package). 0x8000_0026 (AMD extended topology, parsed before 0xB by newer
//   kernels) is removed and the max extended leaf capped below it.
// - Hypervisor leaves 0x4000_0000.. stay as KVM reports them (kvmclock, MSI ext dest ID).

import type { CpuidEntry } from '../../kvm/structs.js';
import type { Topology } from '../topology/index.js';

export type Vendor = 'amd' | 'intel';

/** KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry's index (subleaf) matters. */
export const CPUID_FLAG_SIGNIFICANT_INDEX = 1;

const VENDOR_STRINGS: Record<string, Vendor> = { AuthenticAMD: 'amd', GenuineIntel: 'intel' };

function regString(...regs: number[]): string {
  const b = Buffer.alloc(4 * regs.length);
  regs.forEach((r, i) => b.writeUInt32LE(r >>> 0, 4 * i));
  return b.toString('latin1');
}

/** The vendor from leaf 0's vendor string (EBX, EDX, ECX). Throws for any other vendor. */
export function cpuVendor(entries: readonly CpuidEntry[]): Vendor {
  const l0 = entries.find((e) => e.function === 0);
  if (!l0) throw new Error('CPUID: no leaf 0 in the supported entries');
  const s = regString(l0.ebx, l0.edx, l0.ecx);
  const v = VENDOR_STRINGS[s];
  if (!v) throw new Error(`CPUID: vendor "${s}" is not supported (AuthenticAMD or GenuineIntel)`);
  return v;
}

/** Cache geometry written where KVM reports no cache leaf of that kind. */
interface CacheDesc {
  type: 1 | 2 | 3;
  level: number;
  ways: number;
  lineSize: number;
  sets: number;
}
const DEFAULT_CACHES: CacheDesc[] = [
  { type: 1, level: 1, ways: 8, lineSize: 64, sets: 64 }, // L1d 32 KiB
  { type: 2, level: 1, ways: 8, lineSize: 64, sets: 64 }, // L1i 32 KiB
  { type: 3, level: 2, ways: 8, lineSize: 64, sets: 1024 }, // L2 512 KiB
  { type: 3, level: 3, ways: 16, lineSize: 64, sets: 16384 }, // L3 16 MiB
];

const u32 = (n: number): number => n >>> 0;
const field = (v: number, lo: number, width: number): number => (v >>> lo) & (2 ** width - 1);
const setField = (v: number, lo: number, width: number, x: number): number => {
  const mask = (2 ** width - 1) * 2 ** lo;
  return u32((v & ~mask) | ((x * 2 ** lo) & mask));
};

function cacheTypeLevel(eax: number): { type: number; level: number } {
  return { type: field(eax, 0, 5), level: field(eax, 5, 3) };
}

/** Four cache subleaves L1d, L1i, L2, L3 (index3 = L3 in sysfs), geometry from `existing` when present. */
function cacheSubleaves(
  fn: number,
  existing: readonly CpuidEntry[],
  sharing: (level: number) => number,
  extraEax: number,
): CpuidEntry[] {
  const out: CpuidEntry[] = [];
  DEFAULT_CACHES.forEach((d, index) => {
    const have = existing.find((e) => {
      const t = cacheTypeLevel(e.eax);
      return t.type === d.type && t.level === d.level;
    });
    let eax: number;
    let ebx: number;
    let ecx: number;
    let edx: number;
    if (have) {
      eax = have.eax;
      ebx = have.ebx;
      ecx = have.ecx;
      edx = have.edx;
    } else {
      eax = d.type | (d.level << 5) | (1 << 8); // self-initialising
      ebx = u32((d.lineSize - 1) | (0 << 12) | ((d.ways - 1) << 22));
      ecx = d.sets - 1;
      edx = 0;
    }
    eax = setField(eax, 14, 12, sharing(d.level) - 1);
    eax = setField(eax, 26, 6, 0);
    eax = u32(eax | extraEax);
    out.push({ function: fn, index, flags: CPUID_FLAG_SIGNIFICANT_INDEX, eax, ebx, ecx, edx });
  });
  out.push({ function: fn, index: 4, flags: CPUID_FLAG_SIGNIFICANT_INDEX, eax: 0, ebx: 0, ecx: 0, edx: 0 });
  return out;
}

/** Leaf 0xB / 0x1F subleaves: SMT level, core (= package) level, then the invalid terminator. */
function extTopologyLeaf(fn: number, t: Topology, apicId: number): CpuidEntry[] {
  const L = t.layout;
  const f = CPUID_FLAG_SIGNIFICANT_INDEX;
  return [
    { function: fn, index: 0, flags: f, eax: L.smtBits, ebx: t.spec.threadsPerCore, ecx: (1 << 8) | 0, edx: apicId },
    { function: fn, index: 1, flags: f, eax: L.packageShift, ebx: t.cpusPerPackage, ecx: (2 << 8) | 1, edx: apicId },
    { function: fn, index: 2, flags: f, eax: 0, ebx: 0, ecx: 2, edx: apicId },
  ];
}

export interface CpuidOptions {
  /** Defaults to the vendor of leaf 0. */
  vendor?: Vendor;
}

/**
 * The CPUID entries for vCPU `vcpuIndex` (its Linux CPU number, = topology.cpus index) from
 * KVM_GET_SUPPORTED_CPUID's entries. Pure: `supported` is not modified. The result is
 * sorted by (function, index).
 */
export function cpuidForVcpu(
  supported: readonly CpuidEntry[],
  topology: Topology,
  vcpuIndex: number,
  opts: CpuidOptions = {},
): CpuidEntry[] {
  const place = topology.cpus[vcpuIndex];
  if (!place) throw new RangeError(`vCPU ${vcpuIndex} is outside the topology ${topology} (${topology.numCpus} CPUs)`);
  const vendor = opts.vendor ?? cpuVendor(supported);
  const apicId = place.apicId;
  const L = topology.layout;
  let entries = supported.map((e) => ({ ...e }));
  const get = (fn: number, index = 0): CpuidEntry | undefined =>
    entries.find((e) => e.function === fn && ((e.flags & CPUID_FLAG_SIGNIFICANT_INDEX) === 0 || e.index === index));
  const ensure = (fn: number, index = 0, flags = 0): CpuidEntry => {
    let e = get(fn, index);
    if (!e) {
      e = { function: fn, index, flags, eax: 0, ebx: 0, ecx: 0, edx: 0 };
      entries.push(e);
    }
    return e;
  };
  const drop = (pred: (e: CpuidEntry) => boolean): void => {
    entries = entries.filter((e) => !pred(e));
  };

  // Basic leaf range: at least 0xB so the extended topology leaf is read.
  const l0 = ensure(0);
  if (l0.eax < 0xb) l0.eax = 0xb;
  const maxBasic = l0.eax;

  // Leaf 1: initial APIC ID, addressable logical processors per package, HTT.
  const l1 = ensure(1);
  const perPkgIds = Math.min(1 << L.packageShift, 0xff);
  l1.ebx = u32((l1.ebx & 0x0000ffff) | (perPkgIds << 16) | ((apicId & 0xff) << 24));
  l1.edx = topology.cpusPerPackage > 1 ? u32(l1.edx | (1 << 28)) : u32(l1.edx & ~(1 << 28));
  if (vendor === 'amd') l1.eax = amdFamilyModelFix(l1.eax);

  // Leaves 0xB and 0x1F: SMT and core levels with x2APIC IDs.
  drop((e) => e.function === 0xb || e.function === 0x1f);
  entries.push(...extTopologyLeaf(0xb, topology, apicId));
  if (maxBasic >= 0x1f) entries.push(...extTopologyLeaf(0x1f, topology, apicId));

  if (vendor === 'intel') {
    // Leaf 4: deterministic cache parameters.
    const old = entries.filter((e) => e.function === 4 && cacheTypeLevel(e.eax).type !== 0);
    drop((e) => e.function === 4);
    const coreIds = Math.min(1 << (L.coreBits + L.llcBits), 64);
    entries.push(
      ...cacheSubleaves(4, old, (level) => (level === 3 ? 1 << L.llcShift : 1 << L.smtBits), (coreIds - 1) << 26),
    );
  } else {
    const ext0 = ensure(0x80000000);
    if (ext0.eax < 0x8000001e) ext0.eax = 0x8000001e;
    if (ext0.eax >= 0x80000026) ext0.eax = 0x80000025;
    drop((e) => e.function >= 0x80000026 && e.function < 0x80010000);
    // TOPOEXT on (0x8000_001D/1E valid), CmpLegacy off (counts come from 0xB/0x8000_0008).
    const ext1 = ensure(0x80000001);
    ext1.ecx = u32((ext1.ecx | (1 << 22)) & ~(1 << 1));
    // 0x8000_0006 EDX: an L3 must be reported for the kernel to compute the LLC id.
    const l6 = ensure(0x80000006);
    if (l6.edx === 0) l6.edx = u32((32 << 18) | (0x8 << 12) | 64); // 16 MiB (512 KiB units), 16-way, 64 B lines
    // 0x8000_0008 ECX: NC and ApicIdCoreIdSize.
    const l8 = ensure(0x80000008);
    l8.ecx = setField(setField(l8.ecx, 0, 8, topology.cpusPerPackage - 1), 12, 4, L.packageShift);
    // 0x8000_001D: cache topology.
    const old = entries.filter((e) => e.function === 0x8000001d && cacheTypeLevel(e.eax).type !== 0);
    drop((e) => e.function === 0x8000001d);
    entries.push(...cacheSubleaves(0x8000001d, old, (level) => (level === 3 ? 1 << L.llcShift : 1 << L.smtBits), 0));
    // 0x8000_001E: extended APIC ID, core id, threads per core, node id.
    drop((e) => e.function === 0x8000001e);
    const coreId = (place.llcInNode << L.coreBits) | place.core; // unique within the package
    entries.push({
      function: 0x8000001e,
      index: 0,
      flags: 0,
      eax: apicId,
      ebx: u32((coreId & 0xff) | ((topology.spec.threadsPerCore - 1) << 8)),
      ecx: u32((place.node & 0xff) | (0 << 8)), // one node per package
      edx: 0,
    });
  }
  return entries.sort((a, b) => (a.function >>> 0) - (b.function >>> 0) || a.index - b.index);
}

/** AMD family 17h models 0x00-0x1F get model 0x20 (see the header: the kernel's Zen1 LLC = APIC ID >> 3). */
export function amdFamilyModelFix(eax: number): number {
  const base = field(eax, 8, 4);
  const family = base === 0xf ? base + field(eax, 20, 8) : base;
  const model = base === 0xf || base === 6 ? (field(eax, 16, 4) << 4) | field(eax, 4, 4) : field(eax, 4, 4);
  if (family !== 0x17 || model > 0x1f) return eax;
  return setField(setField(eax, 4, 4, 0x0), 16, 4, 0x2);
}

/** Family and model as the kernel computes them from leaf 1 EAX. */
export function familyModel(eax: number): { family: number; model: number } {
  const base = field(eax, 8, 4);
  const family = base === 0xf ? base + field(eax, 20, 8) : base;
  const model = base === 0xf || base === 6 ? (field(eax, 16, 4) << 4) | field(eax, 4, 4) : field(eax, 4, 4);
  return { family, model };
}

/**
 * A hook for src/vmm/kvm-setup.ts vcpuCpuid(supported, vcpuId, hook): the KVM vCPU id is the
 * APIC ID (create vCPU N with id topology.cpus[N].apicId).
 */
export function cpuidHook(topology: Topology): (entries: CpuidEntry[], kvmVcpuId: number) => CpuidEntry[] {
  return (entries, kvmVcpuId) => {
    const place = topology.cpuByApicId(kvmVcpuId);
    if (!place) throw new RangeError(`KVM vCPU id ${kvmVcpuId} is no APIC ID of topology ${topology}`);
    return cpuidForVcpu(entries, topology, place.cpu);
  };
}
