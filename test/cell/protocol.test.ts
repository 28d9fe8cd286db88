// The COM2 frame protocol (and bulkCrc32, the same CRC by zlib): round trips split at every offset, and what must never count as a
// message (wrong nonce, damaged length/CRC, gaps in sequence, non-objects, over-long lines).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  crc32,
  encodeFrame,
  FrameReader,
  FrameWriter,
  MAX_FRAME_BYTES,
  newNonce,
  type FrameEvent,
} from '../../src/guest/protocol.js';
import { bulkCrc32 } from '../../src/guest/bulk-crc32.js';

const enc = new TextEncoder();
const messages = (evs: FrameEvent[]) =>
  evs.filter((e) => e.kind === 'message').map((e) => (e as { message: unknown }).message);

test('crc32 matches the IEEE check value', () => {
  assert.is(crc32(enc.encode('123456789')), 0xcbf43926);
  assert.is(crc32(new Uint8Array(0)), 0);
});

test('bulkCrc32 (zlib where Node has it) gives the table-driven crc32 on every length and alignment', () => {
  assert.is(bulkCrc32(enc.encode('123456789')), 0xcbf43926);
  const bytes = new Uint8Array(70_001);
  globalThis.crypto.getRandomValues(bytes.subarray(0, 65_536));
  bytes.copyWithin(65_536, 0, 4465);
  for (const [start, end] of [
    [0, 0],
    [0, 1],
    [3, 17],
    [1, 4096],
    [5, 70_001],
    [0, 70_001],
  ]) {
    const view = bytes.subarray(start, end);
    assert.is(bulkCrc32(view), crc32(view), `bytes ${start}..${end}`);
  }
});

test('frames survive being split at every offset, with stray output around them', () => {
  const nonce = newNonce();
  assert.match(nonce, /^[0-9a-f]{16}$/);
  const out: Uint8Array[] = [];
  const w = new FrameWriter(nonce, (b) => out.push(b));
  w.send({ type: 'hello', text: 'ünïcode \n and "quotes"' });
  w.send({ type: 'result', n: [1, 2, 3] });
  const stream = Buffer.concat([
    Buffer.from('\xff\r\nkernel noise\n'),
    out[0],
    Buffer.from('more noise'),
    Buffer.from('\n'),
    out[1],
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new FrameReader(nonce);
    const evs = [...r.feed(stream.subarray(0, cut)), ...r.feed(stream.subarray(cut))];
    assert.equal(
      messages(evs),
      [
        { type: 'hello', text: 'ünïcode \n and "quotes"' },
        { type: 'result', n: [1, 2, 3] },
      ],
      `cut at ${cut}`,
    );
  }
});

test('a frame with another nonce, a bad CRC, a bad length or out of sequence is not a message', () => {
  const nonce = 'abcdef0123456789';
  const good = encodeFrame(nonce, 0, { type: 'a' });
  const r1 = new FrameReader(nonce);
  assert.equal(messages(r1.feed(encodeFrame('0000000000000000', 0, { type: 'forged' }))), []);
  const text = Buffer.from(good).toString('latin1');
  const badCrc = Buffer.from(
    text.replace(/ ([0-9a-f]{8}) /, (_, c: string) => ` ${(parseInt(c, 16) ^ 1).toString(16).padStart(8, '0')} `),
    'latin1',
  );
  const evs = new FrameReader(nonce).feed(badCrc);
  assert.is(evs[0].kind, 'corrupt');
  const badLen = Buffer.from(text.replace(' 0 12 ', ' 0 13 '), 'latin1');
  assert.is(new FrameReader(nonce).feed(badLen)[0].kind, 'corrupt');
  const r2 = new FrameReader(nonce);
  assert.is(r2.feed(encodeFrame(nonce, 1, { type: 'skipped-0' }))[0].kind, 'corrupt');
  assert.equal(messages(r2.feed(good)), [{ type: 'a' }]);
  const arr = Buffer.from(`@KTSTR1 ${nonce} 0 2 ${crc32(enc.encode('[]')).toString(16).padStart(8, '0')} []\n`);
  assert.is(new FrameReader(nonce).feed(arr)[0].kind, 'corrupt');
});

test('an over-long line is dropped without being held, and the reader goes on', () => {
  const nonce = newNonce();
  const r = new FrameReader(nonce);
  const big = Buffer.alloc(MAX_FRAME_BYTES + 4096, 0x41);
  const evs = [...r.feed(big.subarray(0, 1000)), ...r.feed(big.subarray(1000)), ...r.feed(Buffer.from('\n'))];
  assert.equal(messages(evs), []);
  assert.equal(messages(r.feed(encodeFrame(nonce, 0, { type: 'after' }))), [{ type: 'after' }]);
  assert.throws(() => encodeFrame(nonce, 0, { type: 'x', s: 'y'.repeat(MAX_FRAME_BYTES) }), /send it by the ring/);
});

test.run();
