// A snapshot's guest RAM: one file holding the RAM regions back to back in guest-physical
// order (low RAM, then RAM above 4 GiB), written sparse — an all-zero block is left a hole, so
// a freshly booted guest's mostly untouched RAM costs little disk — and restored by reading
// its data extents (listed in the state file) into the new VM's own (huge-page) memory. Not
// by mapping the file private copy-on-write, which would share the page cache between
// restored VMs: a file mapping gives the guest 4 KiB pages, each first touch a separate fault
// and KVM mapping, and in the test host that made every restored cell's work after the
// restore ~17 s slower (a cell 40 s either way) where reading costs ~1.4 s (cell 25.7 s
// against 48.1 s cold; bench:snapshot). Pages the caller names as free (the guest's buddy
// allocator's, read by the cell) are left holes too: their stale contents are never read by
// the guest before it writes them, and a restored guest finds them zero.

import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { GuestMemory } from '../memory.js';

/** Granularity of the zero check (and of the holes). */
const BLOCK = 64 * 1024;
const ZERO_BLOCK = new Uint8Array(BLOCK);

/** The RAM file's size for this memory: every region's bytes, in order. */
export function ramFileBytes(memory: GuestMemory): number {
  return memory.regions.reduce((sum, r) => sum + r.size, 0);
}

const PAGE = 4096;

/** The file written: its size, the bytes of data in it, and where they are. */
export interface RamFileWritten {
  bytes: number;
  dataBytes: number;
  /** Bytes not written because the caller named them free (whether or not they were zero). */
  freeBytes: number;
  /** [file offset, length] of each run of data blocks (never across a region's end), in order. */
  extents: [number, number][];
  /** [file offset, length] of each run of pages named free, in order: what refreshRamFile leaves as it finds it. */
  freeExtents: [number, number][];
}

/** One bit per page of the RAM file: set where `free` (guest-physical [start, bytes]) covers the page. */
function freePageMap(memory: GuestMemory, free: readonly (readonly [number, number])[]): Uint8Array {
  const map = new Uint8Array(Math.ceil(ramFileBytes(memory) / PAGE / 8));
  let position = 0;
  for (const r of memory.regions) {
    for (const [start, size] of free) {
      const from = Math.max(start, r.guestPhysAddr);
      const to = Math.min(start + size, r.guestPhysAddr + r.size);
      for (let pa = Math.ceil(from / PAGE) * PAGE; pa + PAGE <= to; pa += PAGE) {
        const page = (position + pa - r.guestPhysAddr) / PAGE;
        map[page >> 3] |= 1 << (page & 7);
      }
    }
    position += r.size;
  }
  return map;
}

/**
 * Writes guest RAM to a new file at `path` (it must not exist) and flushes it to disk, leaving
 * holes for all-zero blocks and for the pages in `free` (guest-physical [start, bytes]).
 * Call with every vCPU paused.
 */
export function writeRamFile(
  path: string,
  memory: GuestMemory,
  free: readonly (readonly [number, number])[] = [],
): RamFileWritten {
  const bytes = ramFileBytes(memory);
  const freeMap = freePageMap(memory, free);
  const isFree = (filePage: number): boolean => (freeMap[filePage >> 3] & (1 << (filePage & 7))) !== 0;
  const fd = openSync(path, 'wx', 0o644);
  let dataBytes = 0;
  let freeBytes = 0;
  const extents: [number, number][] = [];
  const write = (block: Uint8Array, from: number, length: number, at: number): void => {
    for (let done = 0; done < length;) done += writeSync(fd, block, from + done, length - done, at + done);
    dataBytes += length;
    const last = extents[extents.length - 1];
    if (last !== undefined && last[0] + last[1] === at) last[1] += length;
    else extents.push([at, length]);
  };
  try {
    ftruncateSync(fd, bytes);
    let position = 0;
    for (const r of memory.regions) {
      for (let at = 0; at < r.size; at += BLOCK) {
        const length = Math.min(BLOCK, r.size - at);
        const block = new Uint8Array(memory.buffer, r.offset + at, length);
        const fileAt = position + at;
        if (Buffer.compare(block, length === BLOCK ? ZERO_BLOCK : ZERO_BLOCK.subarray(0, length)) === 0) continue;
        // the block's pages that are not free, in runs
        let run = -1;
        for (let p = 0; p <= length; p += PAGE) {
          const keep = p < length && !isFree((fileAt + p) / PAGE);
          if (keep && run < 0) run = p;
          if (!keep && p < length) freeBytes += Math.min(PAGE, length - p);
          if (!keep && run >= 0) {
            write(block, run, Math.min(p, length) - run, fileAt + run);
            run = -1;
          }
        }
      }
      // an extent never runs across a region's end
      extents.push([-1, 0]);
      position += r.size;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return {
    bytes,
    dataBytes,
    freeBytes,
    extents: extents.filter((e) => e[0] >= 0),
    freeExtents: pageRuns(freeMap, bytes),
  };
}

/** The runs of set bits of a page map, as [file offset, length], in order. */
function pageRuns(map: Uint8Array, bytes: number): [number, number][] {
  const runs: [number, number][] = [];
  const pages = Math.floor(bytes / PAGE);
  for (let page = 0; page < pages; page++) {
    if ((map[page >> 3] & (1 << (page & 7))) === 0) {
      if (map[page >> 3] === 0) page |= 7; // the map's whole byte is clear
      continue;
    }
    const last = runs[runs.length - 1];
    if (last !== undefined && last[0] + last[1] === page * PAGE) last[1] += PAGE;
    else runs.push([page * PAGE, PAGE]);
  }
  return runs;
}

/** Bytes one read takes at most. */
const READ_CHUNK = 16 * 2 ** 20;

/** The RAM file at `path`, open for reading, after checking its size is this memory's RAM size. */
function openRamFile(path: string, memory: GuestMemory): number {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  const expected = ramFileBytes(memory);
  if (size !== expected) {
    closeSync(fd);
    throw new RangeError(
      `snapshot RAM file ${path} is ${size} bytes, guest RAM is ${expected}: truncated or not this VM's`,
    );
  }
  return fd;
}

/** Where RAM file range [offset, offset + length) lies in `memory`; throws when it does not fit one region. */
function extentOffset(memory: GuestMemory, offset: number, length: number): number {
  if (Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length > 0) {
    let start = 0;
    for (const r of memory.regions) {
      if (offset < start + r.size) {
        if (offset + length <= start + r.size) return r.offset + (offset - start);
        break;
      }
      start += r.size;
    }
  }
  throw new RangeError(`snapshot RAM extent [${offset}, +${length}] does not fit guest RAM`);
}

/** Reads exactly `length` bytes at file offset `at` into `into` from `from`. */
function readAll(fd: number, path: string, into: Uint8Array, from: number, length: number, at: number): void {
  for (let done = 0; done < length;) {
    const n = readSync(fd, into, from + done, length - done, at + done);
    if (n === 0) throw new RangeError(`snapshot RAM file ${path} ended at ${at + done}`);
    done += n;
  }
}

/**
 * Copies the RAM file's data `extents` (what writeRamFile returned) into guest memory, which
 * must be fresh (all zero): the holes between them are zeros already. Throws when the file's
 * size is not this memory's RAM size (truncated or foreign) or an extent does not fit it.
 */
export function copyRamFile(path: string, memory: GuestMemory, extents: readonly (readonly [number, number])[]): void {
  const fd = openRamFile(path, memory);
  try {
    for (const [offset, length] of extents) {
      const at = extentOffset(memory, offset, length);
      for (let done = 0; done < length; done += READ_CHUNK) {
        const n = Math.min(READ_CHUNK, length - done);
        readAll(fd, path, memory.bytes, at + done, n, offset + done);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Bytes refreshRamFile reads from the file at a time. */
const REFRESH_CHUNK = 4 * 2 ** 20;
let refreshBuffer: Uint8Array | undefined;

const equal = (a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): boolean =>
  Buffer.compare(a.subarray(aAt, aAt + length), b.subarray(bAt, bAt + length)) === 0;

/**
 * Makes memory that held another guest (memory-pool.ts) hold the RAM file's contents — its data
 * `extents`, zeros elsewhere except in `free` (writeRamFile's freeExtents: the saved guest's
 * free pages, which it writes before it reads, so whatever they hold will do) — writing only
 * the pages that differ: a page already right is read, never written. Writing costs more than
 * it seems under emulation: in the test host, QEMU TCG drops the code it translated from a
 * page at its first write, and a restore into the last guest's RAM writing every page paid
 * that for all of them. Checks as copyRamFile, and that `free` is in order and fits. Returns
 * the bytes written.
 */
export function refreshRamFile(
  path: string,
  memory: GuestMemory,
  extents: readonly (readonly [number, number])[],
  free: readonly (readonly [number, number])[] = [],
): number {
  const bytes = ramFileBytes(memory);
  let previous = 0;
  for (const [offset, length] of free) {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < previous || length <= 0)
      throw new RangeError(`snapshot RAM free range [${offset}, +${length}] is out of order`);
    if (offset + length > bytes)
      throw new RangeError(`snapshot RAM free range [${offset}, +${length}] does not fit guest RAM`);
    previous = offset + length;
  }
  const fd = openRamFile(path, memory);
  const mem = memory.bytes;
  const chunk = (refreshBuffer ??= new Uint8Array(REFRESH_CHUNK));
  let written = 0;
  /** memory [at, at + length) := source [from, from + length), page by page where a block differs. */
  const sync = (at: number, source: Uint8Array, from: number, length: number): void => {
    for (let b = 0; b < length; b += BLOCK) {
      const n = Math.min(BLOCK, length - b);
      if (equal(mem, at + b, source, from + b, n)) continue;
      for (let p = b; p < b + n; p += PAGE) {
        const m = Math.min(PAGE, b + n - p);
        if (equal(mem, at + p, source, from + p, m)) continue;
        mem.set(source.subarray(from + p, from + p + m), at + p);
        written += m;
      }
    }
  };
  /** memory [at, at + length) := zeros. */
  const zero = (at: number, length: number): void => {
    for (let b = 0; b < length; b += BLOCK) sync(at + b, ZERO_BLOCK, 0, Math.min(BLOCK, length - b));
  };
  let nextFree = 0; // the first free range not wholly before the hole being zeroed
  /** RAM file [from, to), at memory offset `at`, := zeros outside the free ranges. */
  const zeroHole = (at: number, from: number, to: number): void => {
    while (nextFree < free.length && free[nextFree][0] + free[nextFree][1] <= from) nextFree++;
    let file = from;
    for (let i = nextFree; i < free.length && free[i][0] < to && file < to; i++) {
      const start = Math.max(free[i][0], file);
      zero(at + (file - from), start - file);
      file = Math.max(file, Math.min(free[i][0] + free[i][1], to));
    }
    zero(at + (file - from), to - file);
  };
  try {
    let position = 0;
    let next = 0; // the first extent not yet done
    for (const r of memory.regions) {
      const end = position + r.size;
      let file = position; // RAM file offset done up to, in this region
      for (; next < extents.length && extents[next][0] < end; next++) {
        const [offset, length] = extents[next];
        const at = extentOffset(memory, offset, length);
        if (offset < file) throw new RangeError(`snapshot RAM extent [${offset}, +${length}] overlaps the one before`);
        zeroHole(r.offset + (file - position), file, offset);
        for (let done = 0; done < length; done += REFRESH_CHUNK) {
          const n = Math.min(REFRESH_CHUNK, length - done);
          readAll(fd, path, chunk, 0, n, offset + done);
          sync(at + done, chunk, 0, n);
        }
        file = offset + length;
      }
      zeroHole(r.offset + (file - position), file, end);
      position = end;
    }
    if (next < extents.length) extentOffset(memory, extents[next][0], extents[next][1]); // throws
  } finally {
    closeSync(fd);
  }
  return written;
}
