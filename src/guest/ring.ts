// The bulk-data region host and guest share (docs/guest-protocol.md, "Bulk data"): a range of
// guest RAM the guest kernel leaves alone (e820 reserved, bootVm's sharedRegionMiB). The
// agent maps it through /dev/mem, writes a record's bytes into it and names the record
// `{key, offset, length, crc}` in a small COM2 frame (its `result`: the facts as JSON); the
// host reads the bytes straight out of guest RAM (no serial transfer) and checks bounds and
// CRC. A cell writes one record, at the start of the data area. Pure logic over a
// Uint8Array: used by the agent and by the host.

import { bulkCrc32 } from './bulk-crc32.js';

/** Where the records start (the first page holds the header). */
export const RING_DATA_START = 4096;
export const RING_MAGIC = 0x4752544b; // 'KTRG'
export const RING_VERSION = 1;

export interface BulkRecord {
  key: string;
  offset: number;
  length: number;
  crc: number;
}

export class RingError extends Error {}

/** Writes the header the host can check (magic, version, data capacity). */
export function initRing(region: Uint8Array): void {
  if (region.length < RING_DATA_START * 2) throw new RingError(`ring region of ${region.length} bytes is too small`);
  const dv = new DataView(region.buffer, region.byteOffset, 16);
  dv.setUint32(0, RING_MAGIC, true);
  dv.setUint32(4, RING_VERSION, true);
  dv.setUint32(8, region.length - RING_DATA_START, true);
}

/**
 * The agent's writer: puts `bytes` at the start of the data area (a cell writes one record, its
 * result, so nothing earlier needs keeping) behind a fresh header, and names the record.
 * Throws RingError when the record is larger than the data area.
 */
export function writeRecord(region: Uint8Array, key: string, bytes: Uint8Array): BulkRecord {
  initRing(region);
  const capacity = region.length - RING_DATA_START;
  if (bytes.length > capacity)
    throw new RingError(`a record of ${bytes.length} bytes exceeds the region (${capacity} bytes)`);
  region.set(bytes, RING_DATA_START);
  return { key, offset: RING_DATA_START, length: bytes.length, crc: bulkCrc32(bytes) };
}

/** The host's reader: checks the header once, then each record's bounds and CRC. */
export function readRecord(region: Uint8Array, r: BulkRecord): Uint8Array {
  const dv = new DataView(region.buffer, region.byteOffset, 16);
  if (dv.getUint32(0, true) !== RING_MAGIC || dv.getUint32(4, true) !== RING_VERSION)
    throw new RingError('the shared region holds no ring header');
  if (
    !Number.isSafeInteger(r.offset) ||
    !Number.isSafeInteger(r.length) ||
    r.offset < RING_DATA_START ||
    r.length < 0 ||
    r.offset + r.length > region.length
  ) {
    throw new RingError(`bulk record ${r.key} at ${r.offset}+${r.length} lies outside the ring`);
  }
  const copy = new Uint8Array(r.length);
  copy.set(region.subarray(r.offset, r.offset + r.length));
  if (bulkCrc32(copy) !== r.crc) throw new RingError(`bulk record ${r.key}: CRC mismatch`);
  return copy;
}
