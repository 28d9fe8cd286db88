// Kept guest RAM (src/vmm/memory-pool.ts): a finished VM's memory is kept for the thread's next
// restore of the same size — one at a time, the older one released (its pages given back: they
// read zero) — and releaseKeptGuestMemory gives every kept one back.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../src/kvm/native.js';
import { GuestMemory } from '../../src/vmm/memory.js';
import {
  keepGuestMemory,
  keptGuestMemories,
  releaseKeptGuestMemory,
  takeKeptGuestMemory,
} from '../../src/vmm/memory-pool.js';

const memory = (mib: number): GuestMemory => {
  const n = native();
  const m = new GuestMemory(mib * 2 ** 20, (b) => n.sharedBufferAddress(b));
  m.fill(0x1000, 0x1000, 0xab);
  return m;
};

test('kept for the next restore of its size only; a newer one replaces it, whose pages go back', () => {
  const a = memory(4);
  keepGuestMemory(a);
  keepGuestMemory(a);
  assert.is(keptGuestMemories(), 1, 'kept once');
  assert.is(takeKeptGuestMemory(8 * 2 ** 20), undefined, 'not for another size');
  assert.is(takeKeptGuestMemory(4 * 2 ** 20), a, 'the same memory, contents and all');
  assert.is(a.read(0x1000, 1)[0], 0xab);
  assert.is(takeKeptGuestMemory(4 * 2 ** 20), undefined, 'taken once');
  keepGuestMemory(a);
  const b = memory(4);
  keepGuestMemory(b);
  assert.is(keptGuestMemories(), 1);
  assert.is(a.read(0x1000, 1)[0], 0, 'the older one was released: its pages read zero');
  releaseKeptGuestMemory();
  assert.is(keptGuestMemories(), 0);
  assert.is(b.read(0x1000, 1)[0], 0);
  assert.is(takeKeptGuestMemory(4 * 2 ** 20), undefined);
});

test.run();
