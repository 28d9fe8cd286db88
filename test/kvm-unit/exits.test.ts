// kvm_run decoded into the VcpuExit union, on a hand-filled page (no KVM): each exit reason
// the run loop handles gives its kind and fields; I/O and MMIO data are the bytes in place.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KVM_EXIT, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT, KVM_SYSTEM_EVENT } from '../../src/kvm/constants.js';
import { KVM_RUN } from '../../src/kvm/layout.js';
import { KvmRun } from '../../src/kvm/run.js';

const R = KVM_RUN.offsets;

function page(reason: number): KvmRun {
  const run = new KvmRun(new ArrayBuffer(4096));
  run.view.setUint32(R.exit_reason, reason, true);
  return run;
}

test('port I/O: io-out and io-in with the data in the page', () => {
  const run = page(KVM_EXIT.KVM_EXIT_IO);
  run.view.setUint8(R['io.direction'], KVM_EXIT_IO_OUT);
  run.view.setUint8(R['io.size'], 1);
  run.view.setUint16(R['io.port'], 0x3f8, true);
  run.view.setUint32(R['io.count'], 2, true);
  run.view.setBigUint64(R['io.data_offset'], 0x800n, true);
  run.bytes.set([0x4b, 0x54], 0x800);
  const out = run.exit();
  assert.is(out.kind, 'io-out');
  if (out.kind !== 'io-out') return;
  assert.is(out.port, 0x3f8);
  assert.is(out.count, 2);
  assert.equal([...out.data], [0x4b, 0x54]);
  run.view.setUint8(R['io.direction'], KVM_EXIT_IO_IN);
  const inp = run.exit();
  assert.is(inp.kind, 'io-in');
  if (inp.kind !== 'io-in') return;
  inp.data.fill(0xff);
  assert.equal([...run.bytes.subarray(0x800, 0x802)], [0xff, 0xff], 'io-in data is the page itself');
});

test('mmio, debug, system event and the exits without a payload', () => {
  const mmio = page(KVM_EXIT.KVM_EXIT_MMIO);
  mmio.view.setBigUint64(R['mmio.phys_addr'], 0xfee00000n, true);
  mmio.view.setUint32(R['mmio.len'], 4, true);
  const m = mmio.exit();
  assert.equal(m.kind === 'mmio' && [m.physAddr, m.len, m.isWrite, m.data.length], [0xfee00000n, 4, false, 8]);

  const dbg = page(KVM_EXIT.KVM_EXIT_DEBUG);
  dbg.view.setUint32(R['debug.arch.exception'], 1, true);
  dbg.view.setBigUint64(R['debug.arch.pc'], 0xffffffff81000000n, true);
  dbg.view.setBigUint64(R['debug.arch.dr6'], 1n, true);
  const d = dbg.exit();
  assert.equal(d.kind === 'debug' && [d.exception, d.pc, d.dr6], [1, 0xffffffff81000000n, 1n]);

  const se = page(KVM_EXIT.KVM_EXIT_SYSTEM_EVENT);
  se.view.setUint32(R['system_event.type'], KVM_SYSTEM_EVENT.KVM_SYSTEM_EVENT_RESET, true);
  const e = se.exit();
  assert.equal(e.kind === 'system-event' && e.type, KVM_SYSTEM_EVENT.KVM_SYSTEM_EVENT_RESET);

  assert.equal(page(KVM_EXIT.KVM_EXIT_HLT).exit(), { kind: 'hlt' });
  assert.equal(page(KVM_EXIT.KVM_EXIT_SHUTDOWN).exit(), { kind: 'shutdown' });
  assert.equal(page(KVM_EXIT.KVM_EXIT_INTR).exit(), { kind: 'intr' });
});

test('an exit the union does not model is unknown, with its reason', () => {
  assert.equal(page(KVM_EXIT.KVM_EXIT_EXCEPTION).exit(), { kind: 'unknown', reason: KVM_EXIT.KVM_EXIT_EXCEPTION });
  assert.equal(page(0x7777).exit(), { kind: 'unknown', reason: 0x7777 });
});

test.run();
