// The core's page walk, KVA translation and xa_load written in plain TypeScript over a
// DataView: the baseline `npm run bench:introspect` measures the WASM core against, and a
// second implementation the tests compare the core with. 64-bit values are handled as two
// 32-bit halves (hi, lo) so the hot loop stays in small integers. Browser-safe.

import type { PhysRegion } from './introspector.js';

const TWO32 = 4294967296;
const START_KERNEL_MAP_HI = 0xffffffff;
const START_KERNEL_MAP_LO = 0x80000000;
const KERNEL_IMAGE_SIZE = 1 << 30;

export class DataViewWalker {
  private cr3 = 0;
  private la57 = false;
  private pobHi = 0;
  private pobLo = 0;
  private physBase = 0;
  private span = 0;
  private shiftOff = 0;
  private slotsOff = 8;
  private last: PhysRegion;
  /** Entry found by the last xaLoadParts, as halves. */
  entryHi = 0;
  entryLo = 0;

  constructor(private readonly view: DataView, private readonly regions: readonly PhysRegion[]) {
    this.last = regions[0] ?? { pa: 1, size: 0, offset: 0 };
    this.span = regions.reduce((m, r) => Math.max(m, r.pa + r.size), 0);
  }

  setPaging(cr3: bigint, la57: boolean): void {
    this.cr3 = Number(cr3 & 0x000f_ffff_ffff_f000n);
    this.la57 = la57;
  }

  setKernel(pageOffsetBase: bigint, physBase: bigint): void {
    this.pobHi = Number(pageOffsetBase >> 32n);
    this.pobLo = Number(pageOffsetBase & 0xffff_ffffn);
    this.physBase = Number(physBase);
  }

  setXarrayOffsets(nodeShift: number, nodeSlots: number): void {
    this.shiftOff = nodeShift;
    this.slotsOff = nodeSlots;
  }

  /** Memory offset of [pa, pa+len) or -1. */
  private offset(pa: number, len: number): number {
    let r = this.last;
    if (pa >= r.pa && pa + len <= r.pa + r.size) return r.offset + (pa - r.pa);
    for (r of this.regions) {
      if (pa >= r.pa && pa + len <= r.pa + r.size) {
        this.last = r;
        return r.offset + (pa - r.pa);
      }
    }
    return -1;
  }

  /** Physical address of the virtual address (hi:lo) through CR3, or -1. */
  walkParts(hi: number, lo: number): number {
    const top = this.la57 ? (hi | 0) >> 24 : (hi | 0) >> 15;
    if (top !== 0 && top !== -1) return -1;
    const view = this.view;
    let table = this.cr3;
    for (let level = this.la57 ? 5 : 4; level >= 1; level--) {
      let index: number;
      switch (level) {
        case 5: index = (hi >>> 16) & 511; break;
        case 4: index = (hi >>> 7) & 511; break;
        case 3: index = ((hi & 0x7f) << 2) | (lo >>> 30); break;
        case 2: index = (lo >>> 21) & 511; break;
        default: index = (lo >>> 12) & 511;
      }
      const o = this.offset(table + index * 8, 8);
      if (o < 0) return -1;
      const elo = view.getUint32(o, true);
      const ehi = view.getUint32(o + 4, true) & 0xfffff;
      if ((elo & 1) === 0) return -1;
      if ((elo & 0x80) !== 0 && (level === 3 || level === 2)) {
        return level === 3
          ? ehi * TWO32 + ((elo & 0xc0000000) >>> 0) + (lo & 0x3fffffff)
          : ehi * TWO32 + ((elo & 0xffe00000) >>> 0) + (lo & 0x1fffff);
      }
      table = ehi * TWO32 + ((elo & 0xfffff000) >>> 0);
    }
    return table + (lo & 0xfff);
  }

  walk(va: bigint): bigint | null {
    const pa = this.walkParts(Number((va >> 32n) & 0xffff_ffffn), Number(va & 0xffff_ffffn));
    return pa < 0 ? null : BigInt(pa);
  }

  /** Kernel virtual -> physical: direct map, text map, else the walk; -1 when unmapped. */
  kvaToPaParts(hi: number, lo: number): number {
    const d = (hi - this.pobHi) * TWO32 + (lo - this.pobLo);
    if (d >= 0 && d < this.span) return d;
    if (hi === START_KERNEL_MAP_HI && lo >= START_KERNEL_MAP_LO && lo - START_KERNEL_MAP_LO < KERNEL_IMAGE_SIZE) {
      return lo - START_KERNEL_MAP_LO + this.physBase;
    }
    return this.walkParts(hi, lo);
  }

  private u8(hi: number, lo: number): number {
    const pa = this.kvaToPaParts(hi, lo);
    if (pa < 0) return -1;
    const o = this.offset(pa, 1);
    return o < 0 ? -1 : this.view.getUint8(o);
  }

  /** Reads the u64 at node (hi:lo) + byte offset into entryHi/entryLo; false on fault. */
  private read64(hi: number, lo: number, add: number): boolean {
    let l = lo + add;
    let h = hi;
    if (l >= TWO32) { l -= TWO32; h = (h + 1) >>> 0; }
    const pa = this.kvaToPaParts(h, l);
    if (pa < 0) return false;
    const o = this.offset(pa, 8);
    if (o < 0) return false;
    this.entryLo = this.view.getUint32(o, true);
    this.entryHi = this.view.getUint32(o + 4, true);
    return true;
  }

  /** xa_load: true with the entry in entryHi/entryLo, false when absent/internal/corrupt. */
  xaLoadParts(headHi: number, headLo: number, index: number): boolean {
    let hi = headHi;
    let lo = headLo;
    const isNode = (h: number, l: number): boolean => (l & 3) === 2 && (h !== 0 || l > 4096);
    if (!isNode(hi, lo)) {
      this.entryHi = hi; this.entryLo = lo;
      return index === 0 && (lo & 3) !== 2 && (hi !== 0 || lo !== 0);
    }
    let nodeHi = hi;
    let nodeLo = lo - 2;
    let shift = this.u8(nodeHi, nodeLo + this.shiftOff);
    if (shift < 0 || shift % 6 !== 0 || shift > 60 || Math.floor(index / 2 ** shift) > 63) return false;
    for (let depth = 0; depth < 11; depth++) {
      let slot = Math.floor(index / 2 ** shift) & 63;
      if (!this.read64(nodeHi, nodeLo, this.slotsOff + slot * 8)) return false;
      hi = this.entryHi; lo = this.entryLo;
      if ((lo & 3) === 2 && hi === 0 && lo < 254) {
        slot = lo >>> 2;
        if (!this.read64(nodeHi, nodeLo, this.slotsOff + slot * 8)) return false;
        hi = this.entryHi; lo = this.entryLo;
      }
      if (!isNode(hi, lo)) return (lo & 3) !== 2 && (hi !== 0 || lo !== 0);
      if (shift === 0) return false;
      const childShift = this.u8(hi, lo - 2 + this.shiftOff);
      if (childShift !== shift - 6) return false;
      nodeHi = hi; nodeLo = lo - 2; shift = childShift;
    }
    return false;
  }

  xaLoad(head: bigint, index: number): bigint {
    const ok = this.xaLoadParts(Number(head >> 32n), Number(head & 0xffff_ffffn), index);
    return ok ? (BigInt(this.entryHi) << 32n) | BigInt(this.entryLo) : 0n;
  }
}
