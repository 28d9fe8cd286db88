// The shared region's record: it round-trips with its CRC (a second record replaces the
// first), one larger than the region is refused, and a hostile record (out of bounds, bad
// CRC, no header) is refused by the host's reader.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readRecord, RING_DATA_START, writeRecord } from '../../src/guest/ring.js';

const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);

test('a record round-trips; the next replaces it; one larger than the region is refused', () => {
  const region = new Uint8Array(RING_DATA_START + 10_000);
  const a = writeRecord(region, 'a', bytes(6000, 1));
  assert.is(a.offset, RING_DATA_START);
  assert.equal(readRecord(region, a), bytes(6000, 1));
  const b = writeRecord(region, 'b', bytes(10_000, 2));
  assert.is(b.offset, RING_DATA_START);
  assert.equal(readRecord(region, b), bytes(10_000, 2));
  assert.throws(() => readRecord(region, a), /CRC mismatch/, 'the first record is gone');
  assert.throws(() => writeRecord(region, 'c', bytes(10_001, 3)), /exceeds the region/);
});

test('the host refuses records outside the ring, with a bad CRC, or without a header', () => {
  const region = new Uint8Array(RING_DATA_START * 4);
  const r = writeRecord(region, 'x', bytes(100, 7));
  assert.throws(() => readRecord(region, { ...r, offset: region.length - 10 }), /outside the ring/);
  assert.throws(() => readRecord(region, { ...r, offset: 0 }), /outside the ring/);
  assert.throws(() => readRecord(region, { ...r, length: -1 }), /outside the ring/);
  assert.throws(() => readRecord(region, { ...r, crc: r.crc ^ 1 }), /CRC mismatch/);
  assert.throws(() => readRecord(new Uint8Array(RING_DATA_START * 4), r), /no ring header/);
});

test.run();
