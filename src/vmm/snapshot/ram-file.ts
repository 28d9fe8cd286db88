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
  return { bytes, dataBytes, freeBytes, extents: extents.filter((e) => e[0] >= 0) };
}

/** Bytes one read takes at most. */
const READ_CHUNK = 16 * 2 ** 20;

/**
 * Copies the RAM file's data `extents` (what writeRamFile returned) into guest memory, which
 * must be fresh (all zero): the holes between them are zeros already. Throws when the file's
 * size is not this memory's RAM size (truncated or foreign) or an extent does not fit it.
 */
export function copyRamFile(path: string, memory: GuestMemory, extents: readonly (readonly [number, number])[]): void {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const expected = ramFileBytes(memory);
    if (size !== expected) {
      throw new RangeError(
        `snapshot RAM file ${path} is ${size} bytes, guest RAM is ${expected}: truncated or not this VM's`,
      );
    }
    for (const [offset, length] of extents) {
      // the region holding the extent, and where it starts in the file
      let start = 0;
      const region = memory.regions.find((r) => {
        if (offset < start + r.size) return true;
        start += r.size;
        return false;
      });
      if (
        region === undefined ||
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(length) ||
        offset < 0 ||
        length <= 0 ||
        offset + length > start + region.size
      )
        throw new RangeError(`snapshot RAM extent [${offset}, +${length}] does not fit guest RAM`);
      const into = new Uint8Array(memory.buffer, region.offset + (offset - start), length);
      for (let done = 0; done < length;) {
        const n = readSync(fd, into, done, Math.min(READ_CHUNK, length - done), offset + done);
        if (n === 0) throw new RangeError(`snapshot RAM file ${path} ended at ${offset + done}`);
        done += n;
      }
    }
  } finally {
    closeSync(fd);
  }
}
