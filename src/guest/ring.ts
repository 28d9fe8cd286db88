// The bulk-data region host and guest share (docs/guest-protocol.md, "Bulk data"): a range of
// guest RAM the guest kernel leaves alone (e820 reserved, bootVm's sharedRegionMiB). The
// agent maps it through /dev/mem, writes a record's bytes into it and names the record
// `{key, offset, length, crc}` in a small COM2 frame (its `result`: the facts as JSON); the
// host reads the bytes straight out of guest RAM (no serial transfer) and checks bounds and
// CRC. Records are written one after another and wrap to the start; the writer never
// overwrites bytes not yet acknowledged (`acked`). Pure logic over a Uint8Array: used by the
// agent and by the host.

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

/** The agent's writer. `acked` is how far (in bytes written, ever) the host has confirmed. */
export class RingWriter {
  private cursor = RING_DATA_START;
  /** Bytes written in all; the host acknowledges in the same unit. */
  private written = 0;
  acked = 0;

  constructor(private readonly region: Uint8Array) {
    initRing(region);
  }

  get capacity(): number {
    return this.region.length - RING_DATA_START;
  }

  /** Where `length` bytes would go, or null when that would overwrite unacknowledged bytes. */
  private place(length: number): number | null {
    if (length > this.capacity)
      throw new RingError(`a record of ${length} bytes exceeds the ring (${this.capacity} bytes)`);
    const start = this.cursor + length <= this.region.length ? this.cursor : RING_DATA_START;
    const skipped = start === this.cursor ? 0 : this.region.length - this.cursor;
    // unacknowledged bytes are the last (written - acked) bytes before the cursor, in ring order
    const unacked = this.written - this.acked;
    const free = this.capacity - unacked - skipped;
    return length <= free ? start : null;
  }

  /** Writes a record; null when the host must acknowledge earlier records first. */
  write(key: string, bytes: Uint8Array): BulkRecord | null {
    const start = this.place(bytes.length);
    if (start === null) return null;
    if (start !== this.cursor) this.written += this.region.length - this.cursor; // the skipped tail counts as consumed once acked
    this.region.set(bytes, start);
    this.cursor = start + bytes.length;
    this.written += bytes.length;
    return { key, offset: start, length: bytes.length, crc: bulkCrc32(bytes) };
  }

  /** Bytes written in all so far (what the host's ack for the latest record says). */
  get total(): number {
    return this.written;
  }
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
