// CRC-32 of bulk bytes (a cell's plan and archive in the mailbox, the result record, host
// replies): zlib's native crc32 where Node has it (20.15 and later: ~10x the table loop,
// which a nested guest pays for every byte of a multi-megabyte archive), else protocol.ts's
// table-driven one. Both give zlib's value (IEEE 802.3), so either side may use either.

import * as zlib from 'node:zlib';
import { crc32 } from './protocol.js';

const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `bytes`, by zlib when this Node has it. */
export function bulkCrc32(bytes: Uint8Array): number {
  return zlibCrc32 !== undefined ? zlibCrc32(bytes) : crc32(bytes);
}
