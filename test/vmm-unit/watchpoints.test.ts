// x86 watchpoint encoding (src/vmm/watchpoints.ts): DR7 enable, R/W and LEN fields per slot as
// the SDM lays them out, alignment and size rules, DR6's fired slots, and the test host's
// QEMU version rule. The VM side (KVM_SET_GUEST_DEBUG, KVM_EXIT_DEBUG) runs in
// test/kvm/monitor-tests.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  encodeWatchpoints,
  firedSlots,
  watchFor,
  watchpointProblem,
  WatchpointError,
} from '../../src/vmm/watchpoints.js';

const bits = (v: bigint, lo: number, n: number): number => Number((v >> BigInt(lo)) & ((1n << BigInt(n)) - 1n));

test('one 8-byte write watch: G0, R/W0 = 01, LEN0 = 10, GE and the fixed bit 10', () => {
  const { addresses, dr7 } = encodeWatchpoints([{ address: 0xffffffff81000008n, length: 8, kind: 'write' }]);
  assert.equal(addresses, [0xffffffff81000008n]);
  assert.is(bits(dr7, 0, 1), 0, 'L0 off');
  assert.is(bits(dr7, 1, 1), 1, 'G0 on');
  assert.is(bits(dr7, 16, 2), 0b01, 'R/W0: writes');
  assert.is(bits(dr7, 18, 2), 0b10, 'LEN0: 8 bytes');
  assert.is(bits(dr7, 9, 1), 1, 'GE');
  assert.is(bits(dr7, 10, 1), 1, 'bit 10');
  assert.is(bits(dr7, 2, 6), 0, 'slots 1-3 off');
});

test('every slot and length: fields land at 16 + 4i and 18 + 4i; a null slot stays off', () => {
  const { addresses, dr7 } = encodeWatchpoints([
    { address: 0x1000n, length: 1, kind: 'write' },
    null,
    { address: 0x2002n, length: 2, kind: 'access' },
    { address: 0x3004n, length: 4, kind: 'write' },
  ]);
  assert.equal(addresses, [0x1000n, 0n, 0x2002n, 0x3004n]);
  assert.equal(
    [0, 1, 2, 3].map((i) => bits(dr7, 2 * i + 1, 1)),
    [1, 0, 1, 1],
  );
  assert.equal(
    [0, 2, 3].map((i) => bits(dr7, 16 + 4 * i, 2)),
    [0b01, 0b11, 0b01],
  );
  assert.equal(
    [0, 2, 3].map((i) => bits(dr7, 18 + 4 * i, 2)),
    [0b00, 0b01, 0b11],
  );
});

test('nothing to watch clears DR7; a fifth slot, a bad length or a misaligned address is refused', () => {
  assert.equal(encodeWatchpoints([]), { addresses: [], dr7: 0n });
  assert.equal(encodeWatchpoints([null, null]).dr7, 0n);
  const w = { address: 0n, length: 4 as const, kind: 'write' as const };
  assert.throws(
    () => encodeWatchpoints([w, w, w, w, w]),
    (e: Error) => e instanceof WatchpointError && /4 hardware watchpoints/.test(e.message),
  );
  assert.throws(() => encodeWatchpoints([{ address: 0x1002n, length: 4, kind: 'write' }]), /not aligned/);
  assert.throws(() => encodeWatchpoints([{ address: 0n, length: 3 as 4, kind: 'write' }]), /1, 2, 4 or 8 bytes/);
});

test('watchFor: a 16-byte struct or a misaligned u32 says what to do', () => {
  assert.equal(watchFor(0x1000n, 4, 'write', 'x'), { address: 0x1000n, length: 4, kind: 'write' });
  assert.throws(() => watchFor(0x1000n, 16, 'write', 'stats'), /stats is 16 bytes; .*watch one of its fields/);
  assert.throws(() => watchFor(0x1002n, 4, 'write', 'knob'), /knob at 0x1002 is not aligned/);
});

test('DR6: B0-B3 name the fired slots; the other bits do not', () => {
  assert.equal(firedSlots(0xffff0ff1n), [0]);
  assert.equal(firedSlots(0xffff0ffan), [1, 3]);
  assert.equal(firedSlots(0xffff0ff0n), []);
});

test('watchpointProblem: only inside the test host, with a QEMU before 9.1', () => {
  assert.is(watchpointProblem({}), null);
  assert.is(watchpointProblem({ KTSTR_IN_TEST_HOST: '1', KTSTR_TEST_HOST_QEMU: '10.0.2' }), null);
  assert.is(watchpointProblem({ KTSTR_IN_TEST_HOST: '1', KTSTR_TEST_HOST_QEMU: '9.1.0' }), null);
  assert.match(
    watchpointProblem({ KTSTR_IN_TEST_HOST: '1', KTSTR_TEST_HOST_QEMU: '7.2.22' }) ?? '',
    /QEMU 7\.2\.22 .*bookworm-backports/,
  );
  assert.match(watchpointProblem({ KTSTR_IN_TEST_HOST: '1', KTSTR_TEST_HOST_QEMU: '9.0' }) ?? '', /before 9\.1/);
  assert.is(watchpointProblem({ KTSTR_IN_TEST_HOST: '1' }), null, 'unknown version: try');
});

test.run();
