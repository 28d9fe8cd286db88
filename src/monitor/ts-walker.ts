// The core's page walk, KVA translation, xa_load and runqueue sampler written in plain
// TypeScript over a DataView: the baseline `npm run bench:introspect` measures the WASM core
// against, and a second implementation the tests compare the core with (the runqueue records
// byte for byte). 64-bit values are handled as two 32-bit halves (hi, lo) so the hot loop
// stays in small integers. Browser-safe.

import * as abi from '../../assembly/monitor-abi.js';
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
  /** Entry found by the last xaLoadParts (and value of the last readU64), as halves. */
  entryHi = 0;
  entryLo = 0;
  /** Set by a failing readU64/readU32, as the core's fault flag (sticky until cleared). */
  fault = false;

  constructor(
    private readonly view: DataView,
    private readonly regions: readonly PhysRegion[],
  ) {
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
        case 5:
          index = (hi >>> 16) & 511;
          break;
        case 4:
          index = (hi >>> 7) & 511;
          break;
        case 3:
          index = ((hi & 0x7f) << 2) | (lo >>> 30);
          break;
        case 2:
          index = (lo >>> 21) & 511;
          break;
        default:
          index = (lo >>> 12) & 511;
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
    if (l >= TWO32) {
      l -= TWO32;
      h = (h + 1) >>> 0;
    }
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
      this.entryHi = hi;
      this.entryLo = lo;
      return index === 0 && (lo & 3) !== 2 && (hi !== 0 || lo !== 0);
    }
    let nodeHi = hi;
    let nodeLo = lo - 2;
    let shift = this.u8(nodeHi, nodeLo + this.shiftOff);
    if (shift < 0 || shift % 6 !== 0 || shift > 60 || Math.floor(index / 2 ** shift) > 63) return false;
    for (let depth = 0; depth < 11; depth++) {
      let slot = Math.floor(index / 2 ** shift) & 63;
      if (!this.read64(nodeHi, nodeLo, this.slotsOff + slot * 8)) return false;
      hi = this.entryHi;
      lo = this.entryLo;
      if ((lo & 3) === 2 && hi === 0 && lo < 254) {
        slot = lo >>> 2;
        if (!this.read64(nodeHi, nodeLo, this.slotsOff + slot * 8)) return false;
        hi = this.entryHi;
        lo = this.entryLo;
      }
      if (!isNode(hi, lo)) return (lo & 3) !== 2 && (hi !== 0 || lo !== 0);
      if (shift === 0) return false;
      const childShift = this.u8(hi, lo - 2 + this.shiftOff);
      if (childShift !== shift - 6) return false;
      nodeHi = hi;
      nodeLo = lo - 2;
      shift = childShift;
    }
    return false;
  }

  xaLoad(head: bigint, index: number): bigint {
    const ok = this.xaLoadParts(Number(head >> 32n), Number(head & 0xffff_ffffn), index);
    return ok ? (BigInt(this.entryHi) << 32n) | BigInt(this.entryLo) : 0n;
  }

  /** One byte at (hi:lo) + add (64-bit wrap), -1 when unmapped. */
  private byteAt(hi: number, lo: number, add: number): number {
    let l = lo + add;
    let h = hi;
    if (l >= TWO32) {
      l -= TWO32;
      h = (h + 1) >>> 0;
    }
    return this.u8(h, l);
  }

  /**
   * The u64 at kernel virtual (hi:lo) into entryHi/entryLo, as the core's k64: one translation
   * when it stays in its page, else byte by byte. On fault: 0 and `fault` set.
   */
  readU64(hi: number, lo: number): void {
    if ((lo & 0xfff) <= 0xff8) {
      const pa = this.kvaToPaParts(hi, lo);
      const o = pa < 0 ? -1 : this.offset(pa, 8);
      if (o < 0) {
        this.fault = true;
        this.entryHi = 0;
        this.entryLo = 0;
        return;
      }
      this.entryLo = this.view.getUint32(o, true);
      this.entryHi = this.view.getUint32(o + 4, true);
      return;
    }
    let l = 0;
    let h = 0;
    for (let i = 0; i < 8; i++) {
      let b = this.byteAt(hi, lo, i);
      if (b < 0) {
        this.fault = true;
        b = 0;
      }
      if (i < 4) l += b * 2 ** (8 * i);
      else h += b * 2 ** (8 * (i - 4));
    }
    this.entryLo = l;
    this.entryHi = h;
  }

  /** The u32 at kernel virtual (hi:lo), as the core's k32; 0 and `fault` set on fault. */
  readU32(hi: number, lo: number): number {
    if ((lo & 0xfff) <= 0xffc) {
      const pa = this.kvaToPaParts(hi, lo);
      const o = pa < 0 ? -1 : this.offset(pa, 4);
      if (o < 0) {
        this.fault = true;
        return 0;
      }
      return this.view.getUint32(o, true);
    }
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const b = this.byteAt(hi, lo, i);
      if (b < 0) this.fault = true;
      else v += b * 2 ** (8 * i);
    }
    return v;
  }
}

// ---- runqueue sampler ----------------------------------------------------------------------------
/** What the core's setPerCpu/setMonitorOffset/setRunqueues were given. */
export interface RunqueueConfig {
  perCpuKva: bigint;
  perCpuSlots: number;
  /** `runqueues`' per-CPU symbol value. */
  runqueues: bigint;
  /** The monitor offset table (abi.MON_*), abi.MON_ABSENT (any negative) for a missing field. */
  offsets: readonly number[];
}

const MAX_CPUS = 8192;

/** 64-bit (aHi:aLo) + (bHi:bLo) mod 2^64, as halves in `out`. */
function add64(aHi: number, aLo: number, bHi: number, bLo: number, out: Int32Array | number[]): void {
  const l = aLo + bLo;
  const carry = l >= TWO32 ? 1 : 0;
  out[0] = ((aHi + bHi + carry) >>> 0) | 0;
  out[1] = (l - carry * TWO32) | 0;
}

/** The per-CPU offsets the core's setRunqueues loads (0 for an unreadable slot), as [hi, lo] pairs. */
export function loadPerCpuTs(walker: DataViewWalker, config: RunqueueConfig): Uint32Array {
  const slots = Math.max(0, Math.min(config.perCpuSlots, MAX_CPUS));
  const out = new Uint32Array(slots * 2);
  const t = [0, 0];
  for (let i = 0; i < slots; i++) {
    add64(Number(config.perCpuKva >> 32n) >>> 0, Number(config.perCpuKva & 0xffff_ffffn), 0, i * 8, t);
    walker.fault = false;
    walker.readU64(t[0] >>> 0, t[1] >>> 0);
    if (!walker.fault) {
      out[2 * i] = walker.entryHi;
      out[2 * i + 1] = walker.entryLo;
    }
  }
  walker.fault = false;
  return out;
}

/**
 * The core's sampleRunqueues in plain TypeScript: records for CPUs [firstCpu, firstCpu+count)
 * (at most abi.RQ_OUT_RECORDS, at most the loaded slots) written to `out` at offset 0 in the
 * core's record layout; returns how many. `perCpu` is loadPerCpuTs' result.
 */
export function sampleRunqueuesTs(
  walker: DataViewWalker,
  config: RunqueueConfig,
  perCpu: Uint32Array,
  firstCpu: number,
  count: number,
  listLimit: number,
  out: DataView,
): number {
  const cpus = perCpu.length / 2;
  if (firstCpu < 0 || count <= 0 || firstCpu >= cpus) return 0;
  const n = Math.min(count, abi.RQ_OUT_RECORDS, cpus - firstCpu);
  const limit = listLimit < 0 ? 0 : Math.min(listLimit, 65536);
  steps.left = abi.RQ_STEP_BUDGET;
  const symHi = Number(config.runqueues >> 32n) >>> 0;
  const symLo = Number(config.runqueues & 0xffff_ffffn);
  for (let i = 0; i < n; i++) {
    const cpu = firstCpu + i;
    sampleOneTs(
      walker,
      config.offsets,
      perCpu[2 * cpu],
      perCpu[2 * cpu + 1],
      symHi,
      symLo,
      cpu,
      limit,
      out,
      i * abi.RQ_RECORD_SIZE,
    );
  }
  walker.fault = false;
  return n;
}

const tmp = new Int32Array(2);
const steps = { left: 0 };

function sampleOneTs(
  w: DataViewWalker,
  offs: readonly number[],
  pHi: number,
  pLo: number,
  symHi: number,
  symLo: number,
  cpu: number,
  limit: number,
  out: DataView,
  rec: number,
): void {
  for (let i = 0; i < abi.RQ_RECORD_SIZE; i += 4) out.setUint32(rec + i, 0, true);
  if (pHi === 0 && pLo === 0 && cpu !== 0) {
    out.setUint32(rec + abi.RQ_FLAGS, abi.RQF_NO_CPU, true);
    return;
  }
  const put64 = (at: number, hi: number, lo: number): void => {
    out.setUint32(rec + at, lo >>> 0, true);
    out.setUint32(rec + at + 4, hi >>> 0, true);
  };
  /** u32 at (hi:lo) + offs[index] when the field exists, else 0. */
  const field32 = (hi: number, lo: number, index: number): number => {
    const o = offs[index];
    if (o < 0) return 0;
    add64(hi, lo, 0, o, tmp);
    return w.readU32(tmp[0] >>> 0, tmp[1] >>> 0);
  };
  /** u64 at (hi:lo) + off into w.entryHi/entryLo. */
  const at64 = (hi: number, lo: number, o: number): void => {
    add64(hi, lo, 0, o, tmp);
    w.readU64(tmp[0] >>> 0, tmp[1] >>> 0);
  };
  add64(pHi, pLo, symHi, symLo, tmp);
  const rqHi = tmp[0] >>> 0;
  const rqLo = tmp[1] >>> 0;
  put64(abi.RQ_KVA, rqHi, rqLo);
  let flags = 0;
  w.fault = false;
  out.setUint32(rec + abi.RQ_NR_RUNNING, field32(rqHi, rqLo, abi.MON_RQ_NR_RUNNING), true);
  out.setUint32(rec + abi.RQ_CFS_NR, field32(rqHi, rqLo, abi.MON_RQ_CFS_NR_RUNNING), true);
  out.setUint32(rec + abi.RQ_CPU, field32(rqHi, rqLo, abi.MON_RQ_CPU), true);
  if (offs[abi.MON_RQ_CLOCK] >= 0) {
    at64(rqHi, rqLo, offs[abi.MON_RQ_CLOCK]);
    put64(abi.RQ_CLOCK, w.entryHi, w.entryLo);
  }
  if (offs[abi.MON_RQ_PREV_STEAL_TIME] >= 0) {
    at64(rqHi, rqLo, offs[abi.MON_RQ_PREV_STEAL_TIME]);
    put64(abi.RQ_STEAL, w.entryHi, w.entryLo);
  }
  if (w.fault) {
    // unreadable: every count 0, flags 0
    for (let i = 0; i < abi.RQ_RECORD_SIZE; i += 4) out.setUint32(rec + i, 0, true);
    put64(abi.RQ_KVA, rqHi, rqLo);
    return;
  }
  flags |= abi.RQF_READ;
  if (offs[abi.MON_RQ_CURR] >= 0) {
    at64(rqHi, rqLo, offs[abi.MON_RQ_CURR]);
    if (!w.fault) {
      const cHi = w.entryHi;
      const cLo = w.entryLo;
      put64(abi.RQ_CURR_KVA, cHi, cLo);
      const pid = field32(cHi, cLo, abi.MON_TASK_PID);
      const policy = field32(cHi, cLo, abi.MON_TASK_POLICY);
      const commOff = offs[abi.MON_TASK_COMM];
      if (!w.fault) {
        out.setUint32(rec + abi.RQ_CURR_PID, pid, true);
        out.setUint32(rec + abi.RQ_CURR_POLICY, policy, true);
        flags |= abi.RQF_CURR;
        if (commOff >= 0) {
          // an unreadable comm stays empty; pid and policy stand
          at64(cHi, cLo, commOff);
          const c0Hi = w.entryHi,
            c0Lo = w.entryLo;
          at64(cHi, cLo, commOff + 8);
          if (!w.fault) {
            put64(abi.RQ_COMM, c0Hi, c0Lo);
            put64(abi.RQ_COMM + 8, w.entryHi, w.entryLo);
          }
        }
      }
    }
    w.fault = false;
  }
  if (offs[abi.MON_RQ_SCX_NR_RUNNING] >= 0) {
    out.setUint32(rec + abi.RQ_SCX_NR, field32(rqHi, rqLo, abi.MON_RQ_SCX_NR_RUNNING), true);
    out.setUint32(rec + abi.RQ_SCX_FLAGS, field32(rqHi, rqLo, abi.MON_RQ_SCX_FLAGS), true);
    out.setUint32(rec + abi.RQ_LOCAL_DSQ_NR, field32(rqHi, rqLo, abi.MON_RQ_LOCAL_DSQ_NR), true);
    if (!w.fault) flags |= abi.RQF_SCX;
    w.fault = false;
    const listOff = offs[abi.MON_RQ_RUNNABLE_LIST];
    const nodeOff = offs[abi.MON_TASK_RUNNABLE_NODE];
    const atOff = offs[abi.MON_TASK_RUNNABLE_AT];
    if (listOff >= 0 && nodeOff >= 0 && atOff >= 0) {
      add64(rqHi, rqLo, 0, listOff, tmp);
      const headHi = tmp[0] >>> 0;
      const headLo = tmp[1] >>> 0;
      w.readU64(headHi, headLo);
      let nHi = w.entryHi;
      let nLo = w.entryLo;
      let count = 0;
      let oldHi = 0xffffffff;
      let oldLo = 0xffffffff;
      let oldestPid = 0;
      // the task is node - nodeOff: add the two's complement of nodeOff
      const negHi = nodeOff === 0 ? 0 : 0xffffffff;
      const negLo = nodeOff === 0 ? 0 : TWO32 - nodeOff;
      while (!w.fault && (nHi !== headHi || nLo !== headLo)) {
        if (count >= limit || steps.left <= 0) {
          flags |= abi.RQF_LIST_TRUNCATED;
          break;
        }
        steps.left--;
        add64(nHi, nLo, negHi, negLo, tmp);
        const tHi = tmp[0] >>> 0;
        const tLo = tmp[1] >>> 0;
        at64(tHi, tLo, atOff);
        const aHi = w.entryHi;
        const aLo = w.entryLo;
        const pid = field32(tHi, tLo, abi.MON_TASK_PID);
        if (w.fault) break; // a task read only in part is not counted
        if (aHi < oldHi || (aHi === oldHi && aLo < oldLo)) {
          oldHi = aHi;
          oldLo = aLo;
          oldestPid = pid;
        }
        count++;
        w.readU64(nHi, nLo);
        nHi = w.entryHi;
        nLo = w.entryLo;
      }
      if (w.fault) flags |= abi.RQF_LIST_BROKEN;
      w.fault = false;
      out.setUint32(rec + abi.RQ_RUNNABLE_COUNT, count, true);
      if (count > 0 && (oldHi !== 0xffffffff || oldLo !== 0xffffffff)) {
        put64(abi.RQ_OLDEST_RUNNABLE_AT, oldHi, oldLo);
        out.setUint32(rec + abi.RQ_OLDEST_PID, oldestPid, true);
      }
    }
  }
  out.setUint32(rec + abi.RQ_FLAGS, flags, true);
}
