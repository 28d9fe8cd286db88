// A snapshot's guest RAM: one file holding the RAM regions back to back in guest-physical
// order (low RAM, then RAM above 4 GiB), written sparse — an all-zero block is left a hole, so
// a freshly booted guest's mostly untouched RAM costs little disk — and restored by copying
// its data blocks into the new VM's own (huge-page) memory. Not by mapping the file private
// copy-on-write, which would share the page cache between restored VMs: a file mapping gives
// the guest 4 KiB pages, each first touch a separate fault and KVM mapping, and in the test
// host that made every restored cell's work after the restore ~17 s slower (a cell 40 s
// either way) where the copy costs ~1.9 s (cell 17.5 s against 32.9 s cold; bench:snapshot).

import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
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
 * Copies the RAM file into guest memory (fresh, all zero): block by block, an all-zero block
 * (a hole) left untouched. The memory stays the VM's own anonymous pages, huge pages included.
 */
export function copyRamFile(path: string, memory: GuestMemory): void {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const expected = ramFileBytes(memory);
    if (size !== expected) {
      throw new RangeError(
        `snapshot RAM file ${path} is ${size} bytes, guest RAM is ${expected}: truncated or not this VM's`,
      );
    }
    const block = Buffer.alloc(BLOCK);
    let position = 0;
    for (const r of memory.regions) {
      for (let at = 0; at < r.size; at += BLOCK) {
        const length = Math.min(BLOCK, r.size - at);
        let got = 0;
        while (got < length) {
          const n = readSync(fd, block, got, length - got, position + at + got);
          if (n === 0) throw new RangeError(`snapshot RAM file ${path} ended at ${position + at + got}`);
          got += n;
        }
        const data = block.subarray(0, length);
        if (data.compare(length === BLOCK ? ZERO_BLOCK : ZERO_BLOCK.subarray(0, length)) !== 0)
          new Uint8Array(memory.buffer, r.offset + at, length).set(data);
      }
      position += r.size;
    }
  } finally {
    closeSync(fd);
  }
}
