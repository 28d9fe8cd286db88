// A snapshot's guest RAM: one file holding the RAM regions back to back in guest-physical
// order (low RAM, then RAM above 4 GiB), written sparse — an all-zero block is left a hole, so
// a freshly booted guest's mostly untouched RAM costs little disk — and restored by mapping
// the file private (copy-on-write) over guest memory: restored VMs of one snapshot share its
// pages in the page cache, and each one's writes stay its own.

import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { native } from '../../kvm/native.js';
import type { GuestMemory } from '../memory.js';

/** Granularity of the zero check (and of the holes). */
const BLOCK = 64 * 1024;
const ZERO_BLOCK = new Uint8Array(BLOCK);

/** The RAM file's size for this memory: every region's bytes, in order. */
export function ramFileBytes(memory: GuestMemory): number {
  return memory.regions.reduce((sum, r) => sum + r.size, 0);
}

/**
 * Writes guest RAM to a new file at `path` (it must not exist) and flushes it to disk.
 * Call with every vCPU paused. Returns the file size and the bytes actually written.
 */
export function writeRamFile(path: string, memory: GuestMemory): { bytes: number; dataBytes: number } {
  const bytes = ramFileBytes(memory);
  const fd = openSync(path, 'wx', 0o644);
  let dataBytes = 0;
  try {
    ftruncateSync(fd, bytes);
    let position = 0;
    for (const r of memory.regions) {
      for (let at = 0; at < r.size; at += BLOCK) {
        const length = Math.min(BLOCK, r.size - at);
        const block = new Uint8Array(memory.buffer, r.offset + at, length);
        if (Buffer.compare(block, length === BLOCK ? ZERO_BLOCK : ZERO_BLOCK.subarray(0, length)) !== 0) {
          for (let done = 0; done < length;) done += writeSync(fd, block, done, length - done, position + at + done);
          dataBytes += length;
        }
      }
      position += r.size;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { bytes, dataBytes };
}

/**
 * Maps the RAM file over guest memory, region by region, private copy-on-write (call before
 * any vCPU runs). Throws when the file's size is not this memory's RAM size (a truncated or
 * foreign file).
 */
export function mapRamFile(path: string, memory: GuestMemory): void {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const expected = ramFileBytes(memory);
    if (size !== expected) {
      throw new RangeError(
        `snapshot RAM file ${path} is ${size} bytes, guest RAM is ${expected}: truncated or not this VM's`,
      );
    }
    let position = 0;
    for (const r of memory.regions) {
      native().mapFileInto(memory.buffer, r.offset, r.size, fd, position);
      position += r.size;
    }
  } finally {
    closeSync(fd); // the mappings keep the file
  }
}
