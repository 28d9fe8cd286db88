// The typed struct views of src/kvm on the plain host (no KVM): fields land at the
// layout offsets, little-endian, 64-bit values as bigints; kvm_run exits decode from a
// synthetic page; the cpuid2 array round-trips.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KVM_EXIT, KVM_EXIT_IO_OUT, KVM_INTERNAL_ERROR } from '../../src/kvm/constants.js';
import {
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_REGS,
  KVM_RUN,
  KVM_SEGMENT,
  KVM_SREGS,
  KVM_USERSPACE_MEMORY_REGION,
} from '../../src/kvm/layout.js';
import { KvmRun } from '../../src/kvm/run.js';
import { KvmCpuid2, KvmRegs, KvmSregs, REG_NAMES, UserspaceMemoryRegion } from '../../src/kvm/structs.js';
import { code64Segment } from '../../src/kvm/x86.js';

test('kvm_userspace_memory_region fields at their offsets', () => {
  const r = new UserspaceMemoryRegion({
    slot: 3,
    flags: 2,
    guestPhysAddr: 0x1_0000_0000n,
    memorySize: 0x20_0000n,
    userspaceAddr: 0x7f00_1234_5000n,
  });
  assert.is(r.bytes.length, KVM_USERSPACE_MEMORY_REGION.size);
  const v = r.view;
  assert.is(v.getUint32(0, true), 3);
  assert.is(v.getUint32(4, true), 2);
  assert.is(v.getBigUint64(8, true), 0x1_0000_0000n);
  assert.is(v.getBigUint64(16, true), 0x20_0000n);
  assert.is(v.getBigUint64(24, true), 0x7f00_1234_5000n);
  assert.is(r.userspaceAddr, 0x7f00_1234_5000n);
});

test('kvm_regs: every register by name, 64-bit', () => {
  const r = new KvmRegs();
  assert.is(r.bytes.length, KVM_REGS.size);
  REG_NAMES.forEach((n, i) => r.set(n, (1n << 63n) | BigInt(i)));
  REG_NAMES.forEach((n, i) => {
    assert.is(r.get(n), (1n << 63n) | BigInt(i), n);
    assert.is(r.view.getBigUint64(KVM_REGS.offsets[n], true), (1n << 63n) | BigInt(i));
  });
  r.set('rip', -1);
  assert.is(r.get('rip'), 0xffff_ffff_ffff_ffffn);
  assert.is(Object.keys(r.toObject()).length, 18);
});

test('kvm_sregs: segments, descriptor tables and control registers round-trip', () => {
  const s = new KvmSregs();
  assert.is(s.bytes.length, KVM_SREGS.size);
  const cs = { ...code64Segment(8), base: 0xffff_8000_0000_0000n, avl: 1 };
  s.setSegment('cs', cs);
  assert.equal(s.segment('cs'), cs);
  assert.is(s.view.getUint16(KVM_SREGS.offsets.cs + KVM_SEGMENT.offsets.selector, true), 8);
  assert.is(s.view.getUint8(KVM_SREGS.offsets.cs + KVM_SEGMENT.offsets.l), 1);
  s.setDtable('idt', { base: 0x1234n, limit: 0xfff });
  assert.equal(s.dtable('idt'), { base: 0x1234n, limit: 0xfff });
  s.set('efer', 0x500n).set('cr3', 0x2000);
  assert.is(s.view.getBigUint64(KVM_SREGS.offsets.efer, true), 0x500n);
  assert.is(s.get('cr3'), 0x2000n);
  assert.is(s.interruptBitmap(3), 0n);
  assert.throws(() => s.interruptBitmap(4), RangeError);
});

test('kvm_cpuid2: entries round-trip; find honours significant indexes', () => {
  const c = KvmCpuid2.from([
    { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0x68747541, ecx: 0x444d4163, edx: 0x69746e65 },
    { function: 7, index: 0, flags: 1, eax: 0, ebx: 0xffffffff, ecx: 1, edx: 2 },
    { function: 7, index: 1, flags: 1, eax: 5, ebx: 0, ecx: 0, edx: 0 },
  ]);
  assert.is(c.bytes.length, KVM_CPUID2.size + 3 * KVM_CPUID_ENTRY2.size);
  assert.is(c.nent, 3);
  assert.is(c.entry(1).ebx, 0xffffffff);
  assert.is(c.find(7, 1)?.eax, 5);
  assert.is(c.find(0, 9)?.eax, 0xd, 'index ignored when not significant');
  assert.is(c.find(0x80000001), undefined);
  assert.throws(() => c.entry(3), RangeError);
  assert.throws(() => {
    c.nent = 4;
  }, RangeError);
});

test('kvm_run: io exit decode and its data inside the page', () => {
  const page = new ArrayBuffer(4096);
  const v = new DataView(page);
  v.setUint32(KVM_RUN.offsets.exit_reason, KVM_EXIT.KVM_EXIT_IO, true);
  v.setUint8(KVM_RUN.offsets['io.direction'], KVM_EXIT_IO_OUT);
  v.setUint8(KVM_RUN.offsets['io.size'], 1);
  v.setUint16(KVM_RUN.offsets['io.port'], 0x3f8, true);
  v.setUint32(KVM_RUN.offsets['io.count'], 2, true);
  v.setBigUint64(KVM_RUN.offsets['io.data_offset'], 4000n, true);
  new Uint8Array(page, 4000, 2).set([0x68, 0x69]);
  const run = new KvmRun(page);
  assert.is(run.exitReason, KVM_EXIT.KVM_EXIT_IO);
  assert.equal(run.io(), { direction: 1, size: 1, port: 0x3f8, count: 2, dataOffset: 4000 });
  assert.equal([...run.ioData()], [0x68, 0x69]);
  assert.is(run.describeExit(), 'KVM_EXIT_IO: out port 0x3f8 size 1 count 2');
  v.setBigUint64(KVM_RUN.offsets['io.data_offset'], 4095n, true);
  assert.throws(() => run.ioData(), RangeError);
  run.immediateExit = 1;
  assert.is(v.getUint8(1), 1);
  assert.throws(() => new KvmRun(new ArrayBuffer(100)), RangeError);
});

test('kvm_run: internal error with emulation-failure instruction bytes', () => {
  const page = new ArrayBuffer(4096);
  const v = new DataView(page);
  v.setUint32(KVM_RUN.offsets.exit_reason, KVM_EXIT.KVM_EXIT_INTERNAL_ERROR, true);
  v.setUint32(KVM_RUN.offsets['internal.suberror'], KVM_INTERNAL_ERROR.KVM_INTERNAL_ERROR_EMULATION, true);
  v.setUint32(KVM_RUN.offsets['internal.ndata'], 3, true);
  v.setBigUint64(KVM_RUN.offsets['emulation_failure.flags'], 1n, true);
  v.setUint8(KVM_RUN.offsets['emulation_failure.insn_size'], 3);
  new Uint8Array(page, KVM_RUN.offsets['emulation_failure.insn_bytes'], 3).set([0x0f, 0xae, 0x2f]); // xrstor
  const run = new KvmRun(page);
  assert.equal([...run.emulationFailureBytes()!], [0x0f, 0xae, 0x2f]);
  assert.match(run.describeExit(), /^KVM_EXIT_INTERNAL_ERROR: KVM_INTERNAL_ERROR_EMULATION insn 0fae2f data \[0x1, /);
  v.setUint32(KVM_RUN.offsets.exit_reason, 99, true);
  assert.is(run.describeExit(), 'KVM_EXIT_99');
});

test.run();
