// The VM-wide event kinds and their codes in the shared Int32 event word: every kind has
// its own non-zero code (0 means still running) and the code maps back to the kind.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventCode, eventKind, type VmEventKind } from '../../src/vmm/vcpu-protocol.js';

const KINDS: VmEventKind[] = ['exit', 'reset', 'triple-fault', 'poweroff', 'error', 'hlt'];

test('each event kind has a distinct non-zero code that maps back', () => {
  const codes = KINDS.map(eventCode);
  assert.ok(
    codes.every((c) => Number.isInteger(c) && c !== 0),
    codes.join(','),
  );
  assert.is(new Set(codes).size, KINDS.length);
  for (const k of KINDS) assert.is(eventKind(eventCode(k)), k);
  assert.is(eventKind(0), undefined, '0: still running');
});

test.run();
