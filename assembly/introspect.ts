// WASM introspection core: reads a guest Linux kernel's data structures out of an image of
// guest physical memory that sits in this module's (imported) linear memory. It walks x86-64
// page tables (4- and 5-level, 2 MiB and 1 GiB pages), turns kernel virtual addresses into
// physical ones, loads xarray/IDR entries and enumerates the struct_ops BPF programs of
// `prog_idr` with their verifier and runtime counters. docs/introspect.md is the ABI.
//
// Rules: no allocation (runtime stub, only static `memory.data` blocks, all below the guest
// image); every read of guest data is range-checked against the region table and turns into
// "not mapped"/"fault" instead of a trap; every loop over guest data has a fixed bound.

import {
  MON_ABSENT, MON_COUNT, MON_RQ_NR_RUNNING, MON_RQ_CFS_NR_RUNNING, MON_RQ_SCX_NR_RUNNING, MON_RQ_SCX_FLAGS, MON_RQ_LOCAL_DSQ_NR,
  MON_RQ_RUNNABLE_LIST, MON_RQ_CURR, MON_RQ_CLOCK, MON_RQ_CPU, MON_TASK_PID, MON_TASK_COMM, MON_TASK_POLICY, MON_TASK_RUNNABLE_NODE,
  MON_TASK_RUNNABLE_AT, MON_RQ_PREV_STEAL_TIME, RQ_STEAL, RQ_RECORD_SIZE, RQ_KVA, RQ_CLOCK, RQ_CURR_KVA, RQ_OLDEST_RUNNABLE_AT, RQ_NR_RUNNING, RQ_CFS_NR, RQ_SCX_NR,
  RQ_LOCAL_DSQ_NR, RQ_CURR_PID, RQ_CURR_POLICY, RQ_SCX_FLAGS, RQ_OLDEST_PID, RQ_RUNNABLE_COUNT, RQ_FLAGS, RQ_COMM, RQ_CPU,
  RQ_OUT_RECORDS, RQ_STEP_BUDGET, RQF_READ, RQF_CURR, RQF_SCX, RQF_LIST_TRUNCATED, RQF_LIST_BROKEN, RQF_NO_CPU,
} from './monitor-abi';
import {
  OFF_XA_HEAD, OFF_XA_NODE_SHIFT, OFF_XA_NODE_SLOTS, OFF_IDR_RT, OFF_IDR_BASE, OFF_PROG_TYPE, OFF_PROG_AUX, OFF_PROG_STATS,
  OFF_AUX_ID, OFF_AUX_VERIFIED_INSNS, OFF_AUX_NAME, OFF_AUX_USED_MAPS, OFF_AUX_USED_MAP_CNT, OFF_STATS_CNT, OFF_STATS_NSECS,
  OFF_STATS_MISSES, OFF_MAP_NAME, OFF_PROG_TYPE_STRUCT_OPS, OFF_COUNT, RECORD_SIZE, REC_PROG_KVA, REC_AUX_KVA, REC_CNT, REC_NSECS,
  REC_MISSES, REC_ID, REC_VERIFIED, REC_FLAGS, REC_USED_MAPS, REC_NAME, REC_OBJ, REC_CPUS, NAME_LEN, OUT_RECORDS, FLAG_STATS,
  FLAG_OBJ, FLAG_SATURATED, FLAG_NAME_FAULT,
} from './introspect-abi';

// ---- constants -----------------------------------------------------------------------------------
/** Returned by every translation that fails (not mapped, outside guest RAM, non-canonical). */
export const NOT_MAPPED: u64 = 0xffff_ffff_ffff_ffff;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000; // bits 51:12 of a page-table entry
const PTE_PRESENT: u64 = 1;
const PTE_HUGE: u64 = 0x80;
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
const KERNEL_IMAGE_SIZE: u64 = 1 << 30;

const MAX_REGIONS: i32 = 64;
const REGION_BYTES: usize = 24; // paStart u64, paEnd u64, memory offset u64

const XA_CHUNK_SHIFT: u32 = 6;
const XA_CHUNK_MASK: u64 = 63;
const XA_MAX_DEPTH: i32 = 11; // 64-bit index / 6 bits per level, rounded up
const XA_FIND_BUDGET: i32 = 1 << 16; // node visits per exported xaFind call
const ENUM_FIND_BUDGET: i32 = 1 << 18; // node visits per whole enumeration
const MAX_IDR_ID: u64 = 65536;
const MAX_USED_MAPS: u32 = 64;
const MAX_CPUS: i32 = 8192;

// The offset table (OFF_*), the program record (RECORD_SIZE, REC_*, FLAG_*) and OUT_RECORDS are
// the ABI in assembly/introspect-abi.ts. RECORD_SIZE and OFF_* stay exported as module globals.
export {
  RECORD_SIZE, OFF_XA_HEAD, OFF_XA_NODE_SHIFT, OFF_XA_NODE_SLOTS, OFF_IDR_RT, OFF_IDR_BASE, OFF_IDR_NEXT, OFF_PROG_TYPE,
  OFF_PROG_AUX, OFF_PROG_STATS, OFF_AUX_ID, OFF_AUX_VERIFIED_INSNS, OFF_AUX_NAME, OFF_AUX_USED_MAPS, OFF_AUX_USED_MAP_CNT,
  OFF_STATS_CNT, OFF_STATS_NSECS, OFF_STATS_MISSES, OFF_MAP_NAME, OFF_PROG_TYPE_STRUCT_OPS,
} from './introspect-abi';

// ---- static blocks: laid out after the module's data (__heap_base), never emitted as data ----
@inline function align16(x: usize): usize { return (x + 15) & ~<usize>15; }
const REGIONS: usize = align16(__heap_base);
const OFFSETS: usize = REGIONS + <usize>MAX_REGIONS * REGION_BYTES;
const PCPU: usize = align16(OFFSETS + <usize>OFF_COUNT * 4);
const OUT: usize = PCPU + <usize>MAX_CPUS * 8;
const SCRATCH_BYTES: i32 = 1 << 16;
const SCRATCH: usize = OUT + <usize>OUT_RECORDS * <usize>RECORD_SIZE;
const NAMEBUF: usize = SCRATCH + <usize>SCRATCH_BYTES; // a map name, then its obj prefix
const MON_OFFSETS: usize = align16(NAMEBUF + 32);
const RQ_OUT: usize = align16(MON_OFFSETS + <usize>MON_COUNT * 4);
const BLOCKS_END: usize = align16(RQ_OUT + <usize>RQ_OUT_RECORDS * <usize>RQ_RECORD_SIZE);

// ---- state -----------------------------------------------------------------------------------------
let regionCount: i32 = 0;
let curStart: u64 = 0; // the region that answered last: start, size, memory offset
let curSize: u64 = 0;
let curOffset: u64 = 0;
let maxPhysEnd: u64 = 0;
let cr3Base: u64 = 0;
let fiveLevel: bool = false;
let pageOffsetBase: u64 = 0;
let physBase: u64 = 0;
let directMapBytes: u64 = 0;
let perCpuKva: u64 = 0;
let perCpuSlots: i32 = 0;
let fault: bool = false;
let lastFoundEntry: u64 = 0;
let progsSeen: i32 = 0;
let findBudget: i32 = 0; // node visits left for findFrom()

// ---- layout queries ------------------------------------------------------------------------------
/** First byte after this module's static data: a guest image must start at or above it. */
export function dataEnd(): usize { return BLOCKS_END; }
export function scratchPtr(): usize { return SCRATCH; }
export function scratchSize(): i32 { return SCRATCH_BYTES; }
export function outPtr(): usize { return OUT; }
export function outCapacity(): i32 { return OUT_RECORDS; }
/** Set by the last failing read; cleared by clearFault(). */
export function lastFault(): i32 { return fault ? 1 : 0; }
export function clearFault(): void { fault = false; }

// ---- region table: guest physical -> memory offset -------------------------------------------------
export function clearRegions(): void {
  regionCount = 0;
  curStart = 0;
  curSize = 0; // an empty cached region: the fast path never matches
  curOffset = 0;
  maxPhysEnd = 0;
}

/** Adds guest physical [pa, pa+size) at memory offset `offset`. 0 ok; -1 table full; -2 the range
 * is empty, wraps or leaves linear memory; -3 it overlaps the module's data; -4 it overlaps a region. */
export function addRegion(pa: u64, size: u64, offset: u64): i32 {
  if (regionCount >= MAX_REGIONS) return -1;
  const memBytes: u64 = <u64>memory.size() << 16;
  if (size == 0 || pa + size < pa || offset + size < offset || offset + size > memBytes) return -2;
  if (offset < <u64>BLOCKS_END) return -3;
  for (let i = 0; i < regionCount; i++) {
    const r = REGIONS + <usize>i * REGION_BYTES;
    if (pa < load<u64>(r, 8) && load<u64>(r) < pa + size) return -4;
  }
  const r = REGIONS + <usize>regionCount * REGION_BYTES;
  store<u64>(r, pa);
  store<u64>(r, pa + size, 8);
  store<u64>(r, offset, 16);
  regionCount++;
  if (pa + size > maxPhysEnd) maxPhysEnd = pa + size;
  curStart = pa;
  curSize = size;
  curOffset = offset;
  return 0;
}

export function regionTotal(): i32 { return regionCount; }

clearRegions(); // module start: an empty table whose fast path never matches

/** Memory offset of guest physical [pa, pa+len), or NOT_MAPPED when it is not inside one region.
 * The region that answered last is cached in globals (one subtract and one compare). */
@inline function physOffset(pa: u64, len: u64): u64 {
  const rel = pa - curStart;
  if (rel <= curSize - len && curSize >= len) return curOffset + rel;
  return physOffsetSlow(pa, len);
}

function physOffsetSlow(pa: u64, len: u64): u64 {
  if (pa + len < pa) return NOT_MAPPED;
  for (let i = 0; i < regionCount; i++) {
    const r = REGIONS + <usize>i * REGION_BYTES;
    if (pa >= load<u64>(r) && pa + len <= load<u64>(r, 8)) {
      curStart = load<u64>(r);
      curSize = load<u64>(r, 8) - curStart;
      curOffset = load<u64>(r, 16);
      return curOffset + (pa - curStart);
    }
  }
  return NOT_MAPPED;
}

/** Memory offset of guest physical `pa` (1 byte), NOT_MAPPED outside guest RAM. */
export function physToOffset(pa: u64): u64 { return physOffset(pa, 1); }

@inline function phys64(pa: u64): u64 {
  const o = physOffset(pa, 8);
  if (o == NOT_MAPPED) { fault = true; return 0; }
  return load<u64>(<usize>o);
}

@inline function phys32(pa: u64): u32 {
  const o = physOffset(pa, 4);
  if (o == NOT_MAPPED) { fault = true; return 0; }
  return load<u32>(<usize>o);
}

@inline function phys8(pa: u64): u32 {
  const o = physOffset(pa, 1);
  if (o == NOT_MAPPED) { fault = true; return 0; }
  return <u32>load<u8>(<usize>o);
}

export function readPhys64(pa: u64): u64 { return phys64(pa); }
export function readPhys32(pa: u64): u32 { return phys32(pa); }

// ---- page-table walk -----------------------------------------------------------------------------------
/** Root table from CR3 (PCID and flag bits dropped) and the paging mode (CR4.LA57). */
export function setPaging(cr3: u64, la57: i32): void {
  cr3Base = cr3 & ADDR_MASK;
  fiveLevel = la57 != 0;
}

/** One page-table entry: the u64 at slot `index` of the table at physical `table`, or 0 (not
 * present) when the table is not in guest RAM. */
@inline function pte(table: u64, index: u64): u64 {
  const o = physOffset(table + (index << 3), 8);
  return o == NOT_MAPPED ? 0 : load<u64>(<usize>o);
}

/** Guest physical address of virtual `va` through the page tables at CR3, or NOT_MAPPED.
 * Straight-line per level (5 only with LA57); 1 GiB leaves at level 3, 2 MiB at level 2. */
export function walk(va: u64): u64 {
  let table = cr3Base;
  let e: u64;
  if (fiveLevel) {
    const top = <i64>va >> 56;
    if (top != 0 && top != -1) return NOT_MAPPED;
    e = pte(table, (va >> 48) & 511);
    if ((e & PTE_PRESENT) == 0) return NOT_MAPPED;
    table = e & ADDR_MASK;
  } else {
    const top = <i64>va >> 47;
    if (top != 0 && top != -1) return NOT_MAPPED;
  }
  e = pte(table, (va >> 39) & 511);
  if ((e & PTE_PRESENT) == 0) return NOT_MAPPED;
  e = pte(e & ADDR_MASK, (va >> 30) & 511);
  if ((e & PTE_PRESENT) == 0) return NOT_MAPPED;
  if ((e & PTE_HUGE) != 0) return (e & ADDR_MASK & ~<u64>0x3fff_ffff) | (va & 0x3fff_ffff);
  e = pte(e & ADDR_MASK, (va >> 21) & 511);
  if ((e & PTE_PRESENT) == 0) return NOT_MAPPED;
  if ((e & PTE_HUGE) != 0) return (e & ADDR_MASK & ~<u64>0x1f_ffff) | (va & 0x1f_ffff);
  e = pte(e & ADDR_MASK, (va >> 12) & 511);
  if ((e & PTE_PRESENT) == 0) return NOT_MAPPED;
  return (e & ADDR_MASK) | (va & 0xfff);
}

/** Translates `count` u64 addresses at memory offset `inPtr` into `outPtr` (NOT_MAPPED each
 * failure); returns how many translated. Both buffers must be inside linear memory. */
export function walkBatch(inPtr: usize, count: i32, outPtr: usize): i32 {
  let ok = 0;
  const memBytes: u64 = <u64>memory.size() << 16;
  if (count < 0 || <u64>inPtr + <u64>count * 8 > memBytes || <u64>outPtr + <u64>count * 8 > memBytes) return -1;
  for (let i = 0; i < count; i++) {
    const pa = walk(load<u64>(inPtr + (<usize>i << 3)));
    if (pa != NOT_MAPPED) ok++;
    store<u64>(outPtr + (<usize>i << 3), pa);
  }
  return ok;
}

// ---- kernel virtual -> physical ------------------------------------------------------------------------
/** KASLR-resolved kernel layout: `page_offset_base`, `phys_base`, and how many bytes of the
 * direct map to treat arithmetically (0 = the end of the highest region). */
export function setKernel(pageOffset: u64, phys: u64, directBytes: u64): void {
  pageOffsetBase = pageOffset;
  physBase = phys;
  directMapBytes = directBytes;
}

/** Physical address of kernel virtual `kva`: direct map, kernel text map, else the CR3 walk. */
export function kvaToPa(kva: u64): u64 {
  const span = directMapBytes != 0 ? directMapBytes : maxPhysEnd;
  if (kva >= pageOffsetBase && kva - pageOffsetBase < span) return kva - pageOffsetBase;
  if (kva >= START_KERNEL_MAP && kva - START_KERNEL_MAP < KERNEL_IMAGE_SIZE) return kva - START_KERNEL_MAP + physBase;
  return walk(kva);
}

function k64(kva: u64): u64 {
  if ((kva & 0xfff) <= 0xff8) {
    const pa = kvaToPa(kva);
    if (pa == NOT_MAPPED) { fault = true; return 0; }
    return phys64(pa);
  }
  let v: u64 = 0;
  for (let i = 0; i < 8; i++) v |= <u64>k8(kva + <u64>i) << (<u64>i * 8);
  return v;
}

function k32(kva: u64): u32 {
  if ((kva & 0xfff) <= 0xffc) {
    const pa = kvaToPa(kva);
    if (pa == NOT_MAPPED) { fault = true; return 0; }
    return phys32(pa);
  }
  let v: u32 = 0;
  for (let i = 0; i < 4; i++) v |= k8(kva + <u64>i) << (<u32>i * 8);
  return v;
}

function k8(kva: u64): u32 {
  const pa = kvaToPa(kva);
  if (pa == NOT_MAPPED) { fault = true; return 0; }
  return phys8(pa);
}

export function readKva64(kva: u64): u64 { return k64(kva); }
export function readKva32(kva: u64): u32 { return k32(kva); }

/** Copies `len` (<= scratchSize) bytes at kernel virtual `kva` into the scratch block; returns
 * how many bytes were readable from the start. */
export function readKvaBytes(kva: u64, len: i32): i32 {
  if (len < 0 || len > SCRATCH_BYTES) return -1;
  for (let i = 0; i < len; i++) {
    const saved = fault;
    fault = false;
    const b = k8(kva + <u64>i);
    if (fault) { fault = true; return i; }
    fault = saved;
    store<u8>(SCRATCH + <usize>i, <u8>b);
  }
  return len;
}

/** Reads a NUL-padded 16-byte kernel name into `dst`; false on fault. */
function kName(kva: u64, dst: usize): bool {
  const before = fault;
  fault = false;
  const lo = k64(kva);
  const hi = k64(kva + 8);
  const bad = fault;
  fault = before || bad;
  store<u64>(dst, bad ? 0 : lo);
  store<u64>(dst, bad ? 0 : hi, 8);
  return !bad;
}

// ---- offsets --------------------------------------------------------------------------------------------
export function setOffset(index: i32, value: u32): i32 {
  if (index < 0 || index >= OFF_COUNT) return -1;
  store<u32>(OFFSETS + (<usize>index << 2), value);
  return 0;
}

@inline function off(index: i32): u64 { return <u64>load<u32>(OFFSETS + (<usize>index << 2)); }

// ---- xarray ------------------------------------------------------------------------------------------------
@inline function xaIsInternal(e: u64): bool { return (e & 3) == 2; }
@inline function xaIsNode(e: u64): bool { return (e & 3) == 2 && e > 4096; }
@inline function xaIsSibling(e: u64): bool { return (e & 3) == 2 && e < ((XA_CHUNK_MASK << 2) | 2); }

/** The node's shift, or 255 when the node is unreadable or the shift is impossible. */
function nodeShift(node: u64): u32 {
  const before = fault;
  fault = false;
  const s = k8(node + off(OFF_XA_NODE_SHIFT));
  const bad = fault || s % XA_CHUNK_SHIFT != 0 || s > 60;
  fault = before || fault;
  return bad ? 255 : s;
}

/** Entry at `index` of the xarray whose `xa_head` is `head` (0 when absent, an internal entry,
 * or the tree is corrupt). Node pointers are kernel virtual addresses. */
export function xaLoad(head: u64, index: u64): u64 {
  let entry = head;
  if (!xaIsNode(entry)) return index == 0 && !xaIsInternal(entry) ? entry : 0;
  let node = entry - 2;
  let shift = nodeShift(node);
  if (shift == 255 || (index >> <u64>shift) > XA_CHUNK_MASK) return 0;
  const slots = off(OFF_XA_NODE_SLOTS);
  for (let depth = 0; depth < XA_MAX_DEPTH; depth++) {
    let slot = (index >> <u64>shift) & XA_CHUNK_MASK;
    entry = k64(node + slots + slot * 8);
    if (xaIsSibling(entry)) {
      slot = entry >> 2;
      entry = k64(node + slots + slot * 8);
    }
    if (!xaIsNode(entry)) return xaIsInternal(entry) ? 0 : entry;
    if (shift == 0) return 0; // a node below a leaf level: corrupt
    const child = entry - 2;
    const childShift = nodeShift(child);
    if (childShift != shift - XA_CHUNK_SHIFT) return 0; // shifts must fall by 6: no cycles
    node = child;
    shift = childShift;
  }
  return 0;
}

/** Loads `count` u64 indexes at `inPtr` from the xarray at `head`, entries to `outPtr`. */
export function xaLoadBatch(head: u64, inPtr: usize, count: i32, outPtr: usize): i32 {
  const memBytes: u64 = <u64>memory.size() << 16;
  if (count < 0 || <u64>inPtr + <u64>count * 8 > memBytes || <u64>outPtr + <u64>count * 8 > memBytes) return -1;
  let found = 0;
  for (let i = 0; i < count; i++) {
    const e = xaLoad(head, load<u64>(inPtr + (<usize>i << 3)));
    if (e != 0) found++;
    store<u64>(outPtr + (<usize>i << 3), e);
  }
  return found;
}

/** Smallest index >= start and <= maxIndex holding a non-internal entry, or NOT_MAPPED; the
 * entry is then in foundEntry(). Bounded by XA_FIND_BUDGET node visits. */
export function xaFind(head: u64, start: u64, maxIndex: u64): u64 {
  findBudget = XA_FIND_BUDGET;
  return findFrom(head, start, maxIndex);
}

function findFrom(head: u64, start: u64, maxIndex: u64): u64 {
  lastFoundEntry = 0;
  if (!xaIsNode(head)) {
    if (start == 0 && head != 0 && !xaIsInternal(head)) { lastFoundEntry = head; return 0; }
    return NOT_MAPPED;
  }
  const slots = off(OFF_XA_NODE_SLOTS);
  const root = head - 2;
  const rootShift = nodeShift(root);
  if (rootShift == 255) return NOT_MAPPED;
  const treeMax: u64 = rootShift >= 58 ? NOT_MAPPED - 1 : (<u64>64 << <u64>rootShift) - 1;
  const limit = maxIndex < treeMax ? maxIndex : treeMax;
  let index = start;
  // each pass descends from the root towards `index`; an empty slot range moves `index` past it
  while (index <= limit && findBudget > 0) {
    let node = root;
    let shift = rootShift;
    let advanced = false;
    for (let depth = 0; depth < XA_MAX_DEPTH && findBudget > 0; depth++) {
      findBudget--;
      let slot = (index >> <u64>shift) & XA_CHUNK_MASK;
      let entry: u64 = 0;
      // first non-empty slot at or after `slot` in this node
      while (slot <= XA_CHUNK_MASK) {
        entry = k64(node + slots + slot * 8);
        if (entry != 0 && !xaIsSibling(entry) && !(xaIsInternal(entry) && !xaIsNode(entry))) break;
        entry = 0;
        slot++;
      }
      const span: u64 = <u64>1 << <u64>shift;
      const nodeBaseMask: u64 = shift >= 58 ? 0 : ~((span << XA_CHUNK_SHIFT) - 1);
      if (entry == 0) {
        // nothing left in this node: continue after it
        const nodeEnd = (index & nodeBaseMask) + (span << XA_CHUNK_SHIFT);
        if (shift >= 58 || nodeEnd <= index) return NOT_MAPPED;
        index = nodeEnd;
        advanced = true;
        break;
      }
      const slotIndex = (index & nodeBaseMask) | (slot << <u64>shift);
      if (slotIndex > index) index = slotIndex;
      if (index > limit) return NOT_MAPPED;
      if (!xaIsNode(entry)) { lastFoundEntry = entry; return index; }
      const child = entry - 2;
      const childShift = nodeShift(child);
      if (shift == 0 || childShift != shift - XA_CHUNK_SHIFT) {
        // corrupt child: skip its whole range
        index = slotIndex + span;
        if (index <= slotIndex) return NOT_MAPPED;
        advanced = true;
        break;
      }
      node = child;
      shift = childShift;
    }
    if (!advanced) return NOT_MAPPED; // depth bound hit: corrupt
  }
  return NOT_MAPPED;
}

export function foundEntry(): u64 { return lastFoundEntry; }

// ---- per-CPU offsets ----------------------------------------------------------------------------------------
/** `__per_cpu_offset` (kernel virtual) and how many slots to read (<= nr_cpu_ids, <= 8192). */
export function setPerCpu(arrayKva: u64, slots: i32): void {
  perCpuKva = arrayKva;
  perCpuSlots = slots < 0 ? 0 : (slots > MAX_CPUS ? MAX_CPUS : slots);
}

function loadPerCpu(): i32 {
  for (let i = 0; i < perCpuSlots; i++) {
    const before = fault;
    fault = false;
    const v = k64(perCpuKva + <u64>i * 8);
    store<u64>(PCPU + (<usize>i << 3), fault ? 0 : v);
    fault = before || fault;
  }
  return perCpuSlots;
}

// ---- struct_ops program enumeration ---------------------------------------------------------------------------
@inline function satAdd(a: u64, b: u64): u64 { const s = a + b; return s < a ? NOT_MAPPED : s; }

/** Copies the obj prefix of a `<obj>.bss` / `<obj>.data` / `<obj>.rodata` name at `name` to
 * `dst` (NUL-padded 16 bytes) and returns its length; 0 when the name has no such suffix or an
 * empty prefix. */
function objPrefix(name: usize, dst: usize): i32 {
  let len = 0;
  while (len < NAME_LEN && load<u8>(name + <usize>len) != 0) len++;
  let cut = -1;
  if (len > 4 && load<u8>(name + <usize>(len - 4)) == 0x2e && load<u8>(name + <usize>(len - 3)) == 0x62
    && load<u8>(name + <usize>(len - 2)) == 0x73 && load<u8>(name + <usize>(len - 1)) == 0x73) cut = len - 4; // .bss
  else if (len > 5 && load<u8>(name + <usize>(len - 5)) == 0x2e && load<u8>(name + <usize>(len - 4)) == 0x64
    && load<u8>(name + <usize>(len - 3)) == 0x61 && load<u8>(name + <usize>(len - 2)) == 0x74
    && load<u8>(name + <usize>(len - 1)) == 0x61) cut = len - 5; // .data
  else if (len > 7 && load<u8>(name + <usize>(len - 7)) == 0x2e && load<u8>(name + <usize>(len - 6)) == 0x72
    && load<u8>(name + <usize>(len - 5)) == 0x6f && load<u8>(name + <usize>(len - 4)) == 0x64
    && load<u8>(name + <usize>(len - 3)) == 0x61 && load<u8>(name + <usize>(len - 2)) == 0x74
    && load<u8>(name + <usize>(len - 1)) == 0x61) cut = len - 7; // .rodata
  if (cut <= 0) return 0;
  store<u64>(dst, 0);
  store<u64>(dst, 0, 8);
  for (let i = 0; i < cut; i++) store<u8>(dst + <usize>i, load<u8>(name + <usize>i));
  return cut;
}

function fillRecord(rec: usize, id: u64, progKva: u64, auxKva: u64, cpus: i32): void {
  memory.fill(rec, 0, RECORD_SIZE);
  store<u64>(rec + REC_PROG_KVA, progKva);
  store<u64>(rec + REC_AUX_KVA, auxKva);
  store<u32>(rec + REC_ID, <u32>id);
  let flags: u32 = 0;
  const auxId = k32(auxKva + off(OFF_AUX_ID));
  if (auxId != 0) store<u32>(rec + REC_ID, auxId);
  store<u32>(rec + REC_VERIFIED, k32(auxKva + off(OFF_AUX_VERIFIED_INSNS)));
  if (!kName(auxKva + off(OFF_AUX_NAME), rec + REC_NAME)) flags |= FLAG_NAME_FAULT;

  // runtime stats: per-CPU sums (slots past nr_cpu_ids read as 0 and are skipped, except CPU 0)
  const stats = k64(progKva + off(OFF_PROG_STATS));
  if (stats != 0) {
    let cnt: u64 = 0, nsecs: u64 = 0, misses: u64 = 0, summed: u32 = 0;
    for (let cpu = 0; cpu < cpus; cpu++) {
      const cpuOff = load<u64>(PCPU + (<usize>cpu << 3));
      if (cpuOff == 0 && cpu > 0) continue;
      const base = stats + cpuOff;
      const before = fault;
      fault = false;
      const c = k64(base + off(OFF_STATS_CNT));
      const n = k64(base + off(OFF_STATS_NSECS));
      const m = k64(base + off(OFF_STATS_MISSES));
      if (!fault) {
        const c2 = satAdd(cnt, c), n2 = satAdd(nsecs, n), m2 = satAdd(misses, m);
        if (c2 == NOT_MAPPED || n2 == NOT_MAPPED || m2 == NOT_MAPPED) flags |= FLAG_SATURATED;
        cnt = c2; nsecs = n2; misses = m2;
        summed++;
      }
      fault = before || fault;
    }
    store<u64>(rec + REC_CNT, cnt);
    store<u64>(rec + REC_NSECS, nsecs);
    store<u64>(rec + REC_MISSES, misses);
    store<u32>(rec + REC_CPUS, summed);
    if (summed > 0) flags |= FLAG_STATS;
  }

  // obj name from the global-section maps in used_maps (pointer first, then the count). libbpf
  // truncates "<obj>" to fit each suffix in 15 bytes (".rodata" keeps only 8), so the longest
  // prefix over all the program's global-section maps is the least truncated one.
  const usedMaps = k64(auxKva + off(OFF_AUX_USED_MAPS));
  let usedCnt = k32(auxKva + off(OFF_AUX_USED_MAP_CNT));
  if (usedCnt > MAX_USED_MAPS) usedCnt = MAX_USED_MAPS;
  store<u32>(rec + REC_USED_MAPS, usedCnt);
  if (usedMaps != 0) {
    let best = 0;
    for (let i: u32 = 0; i < usedCnt; i++) {
      const mapKva = k64(usedMaps + <u64>i * 8);
      if (mapKva == 0 || (mapKva & 7) != 0) continue;
      if (!kName(mapKva + off(OFF_MAP_NAME), NAMEBUF)) continue;
      const len = objPrefix(NAMEBUF, NAMEBUF + 16);
      if (len > best) {
        best = len;
        memory.copy(rec + REC_OBJ, NAMEBUF + 16, 16);
        flags |= FLAG_OBJ;
      }
    }
  }
  store<u32>(rec + REC_FLAGS, flags);
}

/** Enumerates the struct_ops programs of the IDR at kernel virtual `idrKva` (prog_idr) into the
 * out block (outPtr(), RECORD_SIZE bytes each, at most min(maxRecords, outCapacity())).
 * Returns the number of struct_ops programs found (may exceed what was written), or -1 when
 * the IDR itself cannot be read. programsSeen() then gives all live IDR entries visited. */
export function enumStructOps(idrKva: u64, maxRecords: i32): i32 {
  fault = false;
  progsSeen = 0;
  const cap = maxRecords < 0 ? 0 : (maxRecords > OUT_RECORDS ? OUT_RECORDS : maxRecords);
  const head = k64(idrKva + off(OFF_IDR_RT) + off(OFF_XA_HEAD));
  const base = <u64>k32(idrKva + off(OFF_IDR_BASE));
  if (fault) return -1;
  if (head == 0 || base > MAX_IDR_ID) return 0;
  const cpus = loadPerCpu();
  const structOps = <u32>off(OFF_PROG_TYPE_STRUCT_OPS);
  findBudget = ENUM_FIND_BUDGET;
  let found = 0;
  let index: u64 = 0;
  for (let n = 0; n <= <i32>MAX_IDR_ID; n++) {
    index = findFrom(head, index, MAX_IDR_ID - base);
    if (index == NOT_MAPPED) break;
    const progKva = lastFoundEntry;
    const id = index + base;
    index++;
    progsSeen++;
    if ((progKva & 7) != 0) continue; // value entries and misaligned garbage
    const before = fault;
    fault = false;
    const type = k32(progKva + off(OFF_PROG_TYPE));
    const auxKva = k64(progKva + off(OFF_PROG_AUX));
    const bad = fault;
    fault = before;
    if (bad || type != structOps || auxKva == 0) continue;
    if (found < cap) fillRecord(OUT + <usize>found * <usize>RECORD_SIZE, id, progKva, auxKva, cpus);
    found++;
  }
  return found;
}

export function programsSeen(): i32 { return progsSeen; }

// ---- runqueue sampler (the monitor) ----------------------------------------------------------------------
// One record per CPU of `runqueues` (per-CPU struct rq): counts, clock, the current task, and the
// oldest task on the sched_ext runnable list (runnable but not running). Layout and offset-table
// indexes: assembly/monitor-abi.ts. Fields the kernel lacks are MON_ABSENT and read as 0.

let runqueuesSym: u64 = 0;
let stepsLeft: i32 = 0;
let runqueuesCpus: i32 = 0;

/** Sets monitor offset `index` (MON_*); MON_ABSENT marks a field the kernel does not have. */
export function setMonitorOffset(index: i32, value: i32): i32 {
  if (index < 0 || index >= MON_COUNT) return -1;
  store<i32>(MON_OFFSETS + (<usize>index << 2), value);
  return 0;
}

@inline function mon(index: i32): i32 { return load<i32>(MON_OFFSETS + (<usize>index << 2)); }

export function rqOutPtr(): usize { return RQ_OUT; }
export function rqOutCapacity(): i32 { return RQ_OUT_RECORDS; }

/** `runqueues`' per-CPU symbol value (its offset in the per-CPU area); reloads the per-CPU offsets
 * (setPerCpu) and returns how many CPUs can be sampled. */
export function setRunqueues(symbolValue: u64): i32 {
  runqueuesSym = symbolValue;
  runqueuesCpus = loadPerCpu();
  return runqueuesCpus;
}

/** A u32 at kva + off when the field exists, else 0 (fault set on an unreadable one). */
function field32(base: u64, index: i32): u32 {
  const o = mon(index);
  return o < 0 ? 0 : k32(base + <u64>o);
}

function sampleOne(rec: usize, cpu: i32, listLimit: i32): void {
  memory.fill(rec, 0, <usize>RQ_RECORD_SIZE);
  const pcpu = load<u64>(PCPU + (<usize>cpu << 3));
  if (pcpu == 0 && cpu != 0) { store<u32>(rec + RQ_FLAGS, RQF_NO_CPU); return; }
  const rq = pcpu + runqueuesSym;
  store<u64>(rec + RQ_KVA, rq);
  let flags: u32 = 0;
  fault = false;
  store<u32>(rec + RQ_NR_RUNNING, field32(rq, MON_RQ_NR_RUNNING));
  store<u32>(rec + RQ_CFS_NR, field32(rq, MON_RQ_CFS_NR_RUNNING));
  store<u32>(rec + RQ_CPU, field32(rq, MON_RQ_CPU));
  if (mon(MON_RQ_CLOCK) >= 0) store<u64>(rec + RQ_CLOCK, k64(rq + <u64>mon(MON_RQ_CLOCK)));
  if (mon(MON_RQ_PREV_STEAL_TIME) >= 0) store<u64>(rec + RQ_STEAL, k64(rq + <u64>mon(MON_RQ_PREV_STEAL_TIME)));
  if (fault) { memory.fill(rec, 0, <usize>RQ_RECORD_SIZE); store<u64>(rec + RQ_KVA, rq); return; } // unreadable: every count 0
  flags |= RQF_READ;
  if (mon(MON_RQ_CURR) >= 0) {
    const curr = k64(rq + <u64>mon(MON_RQ_CURR));
    if (!fault) {
      store<u64>(rec + RQ_CURR_KVA, curr);
      const pid = field32(curr, MON_TASK_PID);
      const policy = field32(curr, MON_TASK_POLICY);
      if (!fault) {
        store<u32>(rec + RQ_CURR_PID, pid);
        store<u32>(rec + RQ_CURR_POLICY, policy);
        flags |= RQF_CURR;
        // an absent or unreadable comm stays empty; pid and policy stand
        if (mon(MON_TASK_COMM) < 0 || !kName(curr + <u64>mon(MON_TASK_COMM), rec + RQ_COMM)) memory.fill(rec + RQ_COMM, 0, 16);
      }
    }
    fault = false;
  }
  if (mon(MON_RQ_SCX_NR_RUNNING) >= 0) {
    store<u32>(rec + RQ_SCX_NR, field32(rq, MON_RQ_SCX_NR_RUNNING));
    store<u32>(rec + RQ_SCX_FLAGS, field32(rq, MON_RQ_SCX_FLAGS));
    store<u32>(rec + RQ_LOCAL_DSQ_NR, field32(rq, MON_RQ_LOCAL_DSQ_NR));
    if (!fault) flags |= RQF_SCX;
    fault = false;
    const listOff = mon(MON_RQ_RUNNABLE_LIST);
    const nodeOff = mon(MON_TASK_RUNNABLE_NODE);
    const atOff = mon(MON_TASK_RUNNABLE_AT);
    if (listOff >= 0 && nodeOff >= 0 && atOff >= 0) {
      const head = rq + <u64>listOff;
      let node = k64(head);
      let count: i32 = 0;
      let oldest: u64 = NOT_MAPPED;
      let oldestPid: u32 = 0;
      while (!fault && node != head) {
        if (count >= listLimit || stepsLeft <= 0) { flags |= RQF_LIST_TRUNCATED; break; }
        stepsLeft--;
        const task = node - <u64>nodeOff;
        const at = k64(task + <u64>atOff);
        const pid = field32(task, MON_TASK_PID);
        if (fault) { stepsLeft++; break; } // a task read only in part is not counted, nor its step
        if (at < oldest) { oldest = at; oldestPid = pid; }
        count++;
        node = k64(node);
      }
      if (fault) flags |= RQF_LIST_BROKEN;
      fault = false;
      store<u32>(rec + RQ_RUNNABLE_COUNT, <u32>count);
      if (count > 0 && oldest != NOT_MAPPED) {
        store<u64>(rec + RQ_OLDEST_RUNNABLE_AT, oldest);
        store<u32>(rec + RQ_OLDEST_PID, oldestPid);
      }
    }
  }
  store<u32>(rec + RQ_FLAGS, flags);
}

/** Samples CPUs [firstCpu, firstCpu+count) into the RQ_OUT block (at most RQ_OUT_RECORDS), each
 * runnable list walked for at most `listLimit` tasks; returns the number of records written. */
export function sampleRunqueues(firstCpu: i32, count: i32, listLimit: i32): i32 {
  if (firstCpu < 0 || count <= 0) return 0;
  let n = count < RQ_OUT_RECORDS ? count : RQ_OUT_RECORDS;
  if (firstCpu >= runqueuesCpus) return 0;
  if (firstCpu + n > runqueuesCpus) n = runqueuesCpus - firstCpu;
  const limit = listLimit < 0 ? 0 : (listLimit > 65536 ? 65536 : listLimit);
  stepsLeft = RQ_STEP_BUDGET;
  for (let i = 0; i < n; i++) sampleOne(RQ_OUT + <usize>i * <usize>RQ_RECORD_SIZE, firstCpu + i, limit);
  fault = false;
  return n;
}
