// The shared bulk ring: records round-trip with their CRC, wrap to the start, never
// overwrite unacknowledged bytes, and a hostile record (out of bounds, bad CRC, no header)
// is refused by the host's reader.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readRecord, RING_DATA_START, RingWriter } from '../../src/guest/ring.js';

const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);

test('records round-trip and wrap only over acknowledged bytes', () => {
  const region = new Uint8Array(RING_DATA_START + 10_000);
  const w = new RingWriter(region);
  const a = w.write('a', bytes(6000, 1))!;
  assert.is(a.offset, RING_DATA_START);
  assert.equal(readRecord(region, a), bytes(6000, 1));
  assert.is(w.write('b', bytes(6000, 2)), null, 'would overwrite the unacknowledged record a');
  w.acked = w.total;
  const b = w.write('b', bytes(6000, 2))!;
  assert.is(b.offset, RING_DATA_START, 'wrapped to the start');
  assert.equal(readRecord(region, b), bytes(6000, 2));
  assert.throws(() => w.write('c', bytes(20_000, 3)), /exceeds the ring/);
});

test('the host refuses records outside the ring, with a bad CRC, or without a header', () => {
  const region = new Uint8Array(RING_DATA_START * 4);
  const w = new RingWriter(region);
  const r = w.write('x', bytes(100, 7))!;
  assert.throws(() => readRecord(region, { ...r, offset: region.length - 10 }), /outside the ring/);
  assert.throws(() => readRecord(region, { ...r, offset: 0 }), /outside the ring/);
  assert.throws(() => readRecord(region, { ...r, length: -1 }), /outside the ring/);
  assert.throws(() => readRecord(region, { ...r, crc: r.crc ^ 1 }), /CRC mismatch/);
  assert.throws(() => readRecord(new Uint8Array(RING_DATA_START * 4), r), /no ring header/);
});

test.run();
