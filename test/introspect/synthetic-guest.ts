// Test helper: a synthetic guest physical memory in a WebAssembly.Memory with the pieces the
// introspection core reads -- x86-64 page tables (4/5-level, 4 KiB/2 MiB/1 GiB pages),
// xarray trees, IDRs, bpf_prog/bpf_prog_aux/bpf_prog_stats/bpf_map structs -- laid out
// with a given offset table, so tests know exactly what the core must find.

import { Introspector, type KernelOffsets } from '../../src/monitor/index.js';
import { nodeIntrospector } from '../../src/monitor/wasm-file.js';

export const IMAGE_BASE = 4 * 1024 * 1024;
export const PAGE_OFFSET = 0xffff_8880_0000_0000n;
export const PAGE_OFFSET_5L = 0xff11_0000_0000_0000n;
export const START_KERNEL_MAP = 0xffff_ffff_8000_0000n;
export const VMALLOC = 0xffff_c900_0000_0000n;
export const VMALLOC_5L = 0xffa0_0000_0000_0000n;

/** Offsets deliberately unlike any real kernel's, so nothing can lean on hard-coded numbers. */
export const TEST_OFFSETS: KernelOffsets = {
  xaHead: 16,
  xaNodeShift: 3,
  xaNodeSlots: 48,
  idrRt: 8,
  idrBase: 40,
  idrNext: 44,
  progType: 12,
  progAux: 72,
  progStats: 96,
  auxId: 20,
  auxVerifiedInsns: 300,
  auxName: 520,
  auxUsedMaps: 600,
  auxUsedMapCnt: 612,
  statsCnt: 8,
  statsNsecs: 24,
  statsMisses: 0,
  mapName: 136,
  progTypeStructOps: 27,
};

export interface GuestOptions {
  ramBytes?: number;
  la57?: boolean;
  shared?: boolean;
  offsets?: KernelOffsets;
}

export class SyntheticGuest {
  readonly memory: WebAssembly.Memory;
  readonly view: DataView;
  readonly bytes: Uint8Array;
  readonly ramBytes: number;
  readonly la57: boolean;
  readonly offsets: KernelOffsets;
  readonly cr3: number;
  readonly pageOffset: bigint;
  private nextFree: number;
  private vmallocNext: bigint;

  constructor(options: GuestOptions = {}) {
    this.ramBytes = options.ramBytes ?? 64 * 1024 * 1024;
    this.la57 = options.la57 ?? false;
    this.offsets = options.offsets ?? TEST_OFFSETS;
    const pages = (IMAGE_BASE + this.ramBytes) / 65536;
    this.memory =
      options.shared === true
        ? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
        : new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.view = new DataView(this.memory.buffer);
    this.bytes = new Uint8Array(this.memory.buffer);
    this.nextFree = 0x10_0000; // 1 MiB: page tables and structs from here
    this.cr3 = this.allocPage();
    this.pageOffset = this.la57 ? PAGE_OFFSET_5L : PAGE_OFFSET;
    this.vmallocNext = this.la57 ? VMALLOC_5L : VMALLOC;
  }

  introspector(): Introspector {
    const intro = nodeIntrospector(this.memory);
    intro.addRegion(0, this.ramBytes, IMAGE_BASE);
    intro.setPaging(BigInt(this.cr3), this.la57);
    intro.setKernel({ pageOffsetBase: this.pageOffset, physBase: 0n });
    intro.setOffsets(this.offsets);
    return intro;
  }

  /** A zeroed, page-aligned physical range. */
  alloc(bytes: number, align = 4096): number {
    const pa = Math.ceil(this.nextFree / align) * align;
    if (pa + bytes > this.ramBytes) throw new Error('synthetic guest out of memory');
    this.nextFree = pa + bytes;
    this.bytes.fill(0, IMAGE_BASE + pa, IMAGE_BASE + pa + bytes);
    return pa;
  }

  allocPage(): number {
    return this.alloc(4096);
  }

  kva(pa: number): bigint {
    return this.pageOffset + BigInt(pa);
  }

  w64(pa: number, v: bigint): void {
    this.view.setBigUint64(IMAGE_BASE + pa, BigInt.asUintN(64, v), true);
  }
  w32(pa: number, v: number): void {
    this.view.setUint32(IMAGE_BASE + pa, v >>> 0, true);
  }
  w8(pa: number, v: number): void {
    this.view.setUint8(IMAGE_BASE + pa, v);
  }
  r64(pa: number): bigint {
    return this.view.getBigUint64(IMAGE_BASE + pa, true);
  }
  name(pa: number, s: string): void {
    const b = new TextEncoder().encode(s);
    this.bytes.fill(0, IMAGE_BASE + pa, IMAGE_BASE + pa + 16);
    this.bytes.set(b.subarray(0, 16), IMAGE_BASE + pa);
  }

  /** Maps va -> pa with a 4 KiB, 2 MiB or 1 GiB page, creating tables on the way. */
  map(va: bigint, pa: number, pageSize: 4096 | 0x20_0000 | 0x4000_0000 = 4096): void {
    const leafLevel = pageSize === 4096 ? 1 : pageSize === 0x20_0000 ? 2 : 3;
    let table = this.cr3;
    for (let level = this.la57 ? 5 : 4; level > leafLevel; level--) {
      const index = Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
      const entryPa = table + index * 8;
      let entry = this.r64(entryPa);
      if ((entry & 1n) === 0n) {
        entry = BigInt(this.allocPage()) | 0x63n;
        this.w64(entryPa, entry);
      }
      table = Number(entry & 0x000f_ffff_ffff_f000n);
    }
    const index = Number((va >> BigInt(12 + 9 * (leafLevel - 1))) & 511n);
    this.w64(table + index * 8, BigInt(pa) | 0x63n | (leafLevel > 1 ? 0x80n : 0n) | (1n << 63n));
  }

  /** `bytes` of physically scattered pages mapped contiguously in vmalloc space. */
  vmalloc(bytes: number): { kva: bigint; pages: number[] } {
    const kva = this.vmallocNext;
    const pages: number[] = [];
    for (let off = 0; off < bytes; off += 4096) {
      this.alloc(4096 * 3); // scatter: leave gaps
      const pa = this.allocPage();
      pages.push(pa);
      this.map(kva + BigInt(off), pa);
    }
    this.vmallocNext += BigInt(Math.ceil(bytes / 4096) * 4096 + 4096); // guard page
    return { kva, pages };
  }

  /** Physical address of vmalloc'd (kva) memory + off. */
  vpa(area: { kva: bigint; pages: number[] }, off: number): number {
    return area.pages[Math.floor(off / 4096)] + (off % 4096);
  }

  // ---- xarray -----------------------------------------------------------------------------
  private newNode(shift: number): number {
    const pa = this.alloc(this.offsets.xaNodeSlots + 64 * 8 + 64, 64);
    this.w8(pa + this.offsets.xaNodeShift, shift);
    return pa;
  }

  /** Builds an xarray holding `entries` (index -> entry); returns the xa_head value. */
  xarray(entries: Map<number, bigint>): bigint {
    if (entries.size === 0) return 0n;
    const max = Math.max(...entries.keys());
    if (max === 0 && entries.size === 1) return entries.get(0)!;
    let shift = 0;
    while (max >= 64 * 2 ** shift) shift += 6;
    const root = this.newNode(shift);
    for (const [index, entry] of entries) {
      let node = root;
      for (let s = shift; ; s -= 6) {
        const slot = Math.floor(index / 2 ** s) % 64;
        const slotPa = node + this.offsets.xaNodeSlots + slot * 8;
        if (s === 0) {
          this.w64(slotPa, entry);
          break;
        }
        let child = this.r64(slotPa);
        if (child === 0n) {
          const pa = this.newNode(s - 6);
          child = this.kva(pa) | 2n;
          this.w64(slotPa, child);
        }
        node = Number(child - 2n - this.pageOffset);
      }
    }
    return this.kva(root) | 2n;
  }

  /** Physical address of an xarray node from an internal node entry. */
  nodePa(entry: bigint): number {
    return Number(entry - 2n - this.pageOffset);
  }

  /** An idr (in the direct map) over `entries`, with idr_base `base`; returns its kva. */
  idr(entries: Map<number, bigint>, base = 0): bigint {
    const pa = this.alloc(64, 64);
    this.w64(pa + this.offsets.idrRt + this.offsets.xaHead, this.xarray(entries));
    this.w32(pa + this.offsets.idrBase, base);
    this.w32(pa + this.offsets.idrNext, Math.max(0, ...entries.keys()) + 1);
    return this.kva(pa);
  }

  // ---- BPF structs ---------------------------------------------------------------------------
  /** A bpf_map (direct map) named `name`; returns its kva. */
  bpfMap(name: string): bigint {
    const pa = this.alloc(256, 64);
    this.name(pa + this.offsets.mapName, name);
    return this.kva(pa);
  }

  /** A per-CPU area: returns __per_cpu_offset's kva; each CPU's copy at base + offset[cpu]. */
  perCpu(cpus: number, slots = cpus): { arrayKva: bigint; offsets: bigint[]; areaPa: number[] } {
    const arrayPa = this.alloc(slots * 8, 64);
    const offsets: bigint[] = [];
    const areaPa: number[] = [];
    const unit = 0x2000;
    const first = this.alloc(unit * cpus);
    for (let cpu = 0; cpu < cpus; cpu++) {
      areaPa.push(first + cpu * unit);
      offsets.push(BigInt(cpu * unit));
      this.w64(arrayPa + cpu * 8, BigInt(cpu * unit));
    }
    return { arrayKva: this.kva(arrayPa), offsets, areaPa };
  }

  /**
   * A bpf_prog in vmalloc space with its aux in the direct map. `stats` gives each CPU's
   * (cnt, nsecs, misses); the per-CPU stats pointer is a direct-map address plus the CPU's
   * offset, as the kernel's percpu allocator produces.
   */
  bpfProg(p: {
    type: number;
    id: number;
    name: string;
    verifiedInsns: number;
    stats?: { perCpuBasePa: number; values: [bigint, bigint, bigint][] } | null;
    usedMaps?: bigint[];
    usedMapCnt?: number;
  }): bigint {
    const prog = this.vmalloc(4096 * 2);
    const auxPa = this.alloc(1024, 64);
    const o = this.offsets;
    this.w32(this.vpa(prog, o.progType), p.type);
    this.w64(this.vpa(prog, o.progAux), this.kva(auxPa));
    this.w32(auxPa + o.auxId, p.id);
    this.w32(auxPa + o.auxVerifiedInsns, p.verifiedInsns);
    this.name(auxPa + o.auxName, p.name);
    if (p.stats != null) {
      this.w64(this.vpa(prog, o.progStats), this.kva(p.stats.perCpuBasePa));
    }
    if (p.usedMaps !== undefined) {
      const arr = this.alloc(Math.max(8, p.usedMaps.length * 8), 64);
      p.usedMaps.forEach((m, i) => this.w64(arr + i * 8, m));
      this.w64(auxPa + o.auxUsedMaps, this.kva(arr));
      this.w32(auxPa + o.auxUsedMapCnt, p.usedMapCnt ?? p.usedMaps.length);
    }
    return prog.kva;
  }

  /** Writes one CPU's stats at (percpu base pa + that CPU's offset). */
  writeStats(basePa: number, cpuOffset: bigint, v: [bigint, bigint, bigint]): void {
    const pa = basePa + Number(cpuOffset);
    this.w64(pa + this.offsets.statsCnt, v[0]);
    this.w64(pa + this.offsets.statsNsecs, v[1]);
    this.w64(pa + this.offsets.statsMisses, v[2]);
  }
}

/** Deterministic PRNG (xorshift32) for reproducible property tests. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}
