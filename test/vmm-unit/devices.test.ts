// 16550 register model, CMOS, MSR encoding and the CPUID hook on the host (no KVM: the
// UARTs get an interrupt trigger that drives nothing; device-state.test.ts records it).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createOutputSignal,
  createSerialShared,
  Serial,
  COM1,
  COM2,
  watchOutput,
} from '../../src/vmm/devices/serial.js';
import { Worker } from 'node:worker_threads';
import { cmosRegister, PortBus, EXIT_PORT, type PortEvent } from '../../src/vmm/devices/ports.js';
import {
  bootMsrs,
  MSR,
  pcGsiRoutes,
  vcpuCpuid,
  x2apicBaseMsr,
  CPUID_1_ECX_HYPERVISOR,
  CPUID_1_ECX_TSC_DEADLINE,
  KVM_FEATURE_MSI_EXT_DEST_ID,
} from '../../src/vmm/kvm-setup.js';
import { encodeMsrs, KvmCpuid2 } from '../../src/kvm/structs.js';

const B = COM1.base;
/** The UARTs' interrupt line, unconnected: no VM here. */
const noIrq = (): void => {};

test('16550: transmit, divisor latch, scratch, FIFO id, loopback MSR', () => {
  const s = new Serial(createSerialShared(COM1), noIrq);
  for (const c of Buffer.from('hi\n')) s.write(B, c);
  assert.equal(Buffer.from(s.drainOutput()).toString(), 'hi\n');
  assert.is(s.read(B + 5) & 0x60, 0x60, 'THRE and TEMT');
  s.write(B + 3, 0x83); // DLAB
  s.write(B, 1);
  s.write(B + 1, 0);
  assert.is(s.read(B), 1);
  s.write(B + 3, 0x03);
  assert.equal(s.drainOutput().length, 0, 'divisor writes are not data');
  s.write(B + 7, 0x5a);
  assert.is(s.read(B + 7), 0x5a);
  s.write(B + 2, 0x01);
  assert.is(s.read(B + 2) >> 6, 3, '16550A FIFO bits');
  s.write(B + 4, 0x10 | 0x0a); // loop + RTS + OUT2
  assert.is(s.read(B + 6) & 0xf0, 0x90);
  s.write(B, 0x41);
  assert.is(s.read(B + 5) & 1, 1, 'loopback byte received');
  assert.is(s.read(B), 0x41);
  s.write(B + 4, 0x08);
  assert.is(s.read(B + 6), 0xb0);
});

test('16550: received bytes', () => {
  const s = new Serial(createSerialShared(COM1), noIrq);
  assert.is(s.inject(Buffer.from('ab')), 2);
  assert.is(s.read(B + 5) & 1, 1);
  assert.is(s.read(B), 0x61);
  assert.is(s.read(B), 0x62);
  assert.is(s.read(B + 5) & 1, 0);
});

test('output signal: a burst from another thread wakes the host once; silence costs nothing; stop ends it', async () => {
  const pending = createOutputSignal();
  const com1 = createSerialShared(COM1, pending);
  const com2 = createSerialShared(COM2, pending);
  const host = [new Serial(com1, noIrq), new Serial(com2, noIrq)];
  let calls = 0;
  let text = '';
  const watch = watchOutput(
    pending,
    () => {
      calls++;
      for (const s of host) text += Buffer.from(s.drainOutput()).toString();
    },
    50,
  );
  try {
    await new Promise((r) => setTimeout(r, 60));
    assert.is(calls, 0, 'no output, no wake-up');
    // A worker (like a vCPU thread) transmits a burst on each UART.
    const url = new URL('../../src/vmm/devices/serial.js', import.meta.url).href;
    const code = `import(${JSON.stringify(url)}).then(({ Serial }) => { const { workerData: w } = require('node:worker_threads');
      const a = new Serial(w.com1, () => {}), b = new Serial(w.com2, () => {});
      for (const c of Buffer.from('hello ')) a.write(${COM1.base}, c);
      for (const c of Buffer.from('world')) b.write(${COM2.base}, c); });`;
    await new Promise((res, rej) => {
      const w = new Worker(code, { eval: true, workerData: { com1, com2 } });
      w.on('error', rej);
      w.on('exit', res);
    });
    for (let i = 0; i < 100 && text.length < 11; i++) await new Promise((r) => setTimeout(r, 10));
    assert.is(text, 'hello world');
    assert.is(calls, 1, 'one wake-up for the burst (batched)');
    for (const c of Buffer.from('!')) host[0].write(COM1.base, c);
    for (let i = 0; i < 100 && calls < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.is(text, 'hello world!');
    watch.stop();
    host[0].write(COM1.base, 0x41);
    await new Promise((r) => setTimeout(r, 60));
    assert.is(calls, 2, 'nothing after stop()');
  } finally {
    watch.stop();
  }
});

test('ports: exit port and i8042 reset raise events; CMOS time in BCD', () => {
  const events: unknown[] = [];
  const bus = new PortBus([], (e) => events.push(e));
  bus.out(EXIT_PORT, Uint8Array.of(3));
  bus.out(0x64, Uint8Array.of(0xfe));
  assert.equal(events, [
    { kind: 'exit', code: 3 },
    { kind: 'reset', why: 'i8042 reset (0xfe to port 0x64)' },
  ]);
  const d = new Date(Date.UTC(2026, 10, 21, 23, 45, 12));
  assert.is(cmosRegister(0, d), 0x12);
  assert.is(cmosRegister(4, d), 0x23);
  assert.is(cmosRegister(8, d), 0x11);
  assert.is(cmosRegister(0x0a, d) & 0x80, 0, 'no update in progress');
  const data = new Uint8Array(1);
  bus.in(0x1234, data);
  assert.is(data[0], 0xff);
});

test('ports: ACPI PM1a (SCI_EN reads, S5 power-off on SLP_EN only) and reset control 0xcf9', () => {
  const events: PortEvent[] = [];
  const bus = new PortBus([], (e) => events.push(e));
  const cnt = new Uint8Array(2);
  bus.in(0x604, cnt);
  assert.equal([...cnt], [1, 0], 'PM1a_CNT reads SCI_EN: ACPI mode');
  const evt = new Uint8Array(4);
  bus.in(0x600, evt);
  assert.equal([...evt], [0, 0, 0, 0], 'no fixed events pending');
  // ACPICA enables the global lock event (GBL_EN, bit 5 of PM1_EN) and reads it back
  bus.out(0x602, Uint8Array.of(0x20, 0x00));
  const en = new Uint8Array(2);
  bus.in(0x602, en);
  assert.equal([...en], [0x20, 0], 'PM1_EN reads back what was written');
  bus.in(0x600, evt);
  assert.equal([...evt], [0, 0, 0x20, 0], 'PM1_STS stays 0; PM1_EN in bytes 2-3');
  const slpTyp5 = 5 << 10;
  bus.out(0x604, Uint8Array.of(slpTyp5 & 0xff, slpTyp5 >> 8));
  assert.equal(events, [], 'SLP_TYP alone is not the power-off write');
  const off = slpTyp5 | (1 << 13);
  bus.out(0x604, Uint8Array.of(off & 0xff, off >> 8));
  bus.out(0xcf9, Uint8Array.of(0x02));
  bus.out(0xcf9, Uint8Array.of(0x06));
  assert.equal(
    events.map((e) => e.kind),
    ['poweroff', 'reset'],
  );
});

test('MSRs: kvm_msrs encoding', () => {
  const b = encodeMsrs(bootMsrs());
  const dv = new DataView(b.buffer);
  assert.is(dv.getUint32(0, true), bootMsrs().length);
  const idx = bootMsrs().findIndex(([i]) => i === MSR.IA32_MISC_ENABLE);
  assert.is(dv.getUint32(8 + 16 * idx, true), 0x1a0);
  assert.is(dv.getBigUint64(8 + 16 * idx + 8, true), 1n);
});

test('CPUID: APIC ID and hypervisor bit patched, then the hook', () => {
  const sup = KvmCpuid2.from([
    { function: 1, index: 0, flags: 0, eax: 0, ebx: 0xff000800, ecx: 0, edx: 0 },
    { function: 0xb, index: 0, flags: 1, eax: 1, ebx: 1, ecx: 0x100, edx: 0 },
  ]);
  const c = vcpuCpuid(sup, 5, (entries, id) => entries.map((e) => (e.function === 0xb ? { ...e, ebx: id } : e)));
  assert.is(c.entry(0).ebx >>> 24, 5);
  assert.is((c.entry(0).ecx & CPUID_1_ECX_HYPERVISOR) >>> 0, CPUID_1_ECX_HYPERVISOR);
  assert.is(c.entry(1).edx, 5);
  assert.is(c.entry(1).ebx, 5);
});

test('vcpuCpuid: TSC-deadline and MSI extended destination IDs only when the VMM provides them', () => {
  const sup = KvmCpuid2.from([
    { function: 1, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0x00200000 /* x2APIC */, edx: 0 },
    { function: 0x40000001, index: 0, flags: 0, eax: 0x01fb, ebx: 0, ecx: 0, edx: 0 },
  ]);
  const plain = vcpuCpuid(sup, 0);
  assert.is(plain.entry(0).ecx & CPUID_1_ECX_TSC_DEADLINE, 0, 'not asked: no TSC-deadline');
  assert.is(plain.entry(1).eax, 0x01fb, 'KVM features untouched');
  const full = vcpuCpuid(sup, 300, undefined, { tscDeadline: true, msiExtDestId: true });
  assert.is((full.entry(0).ecx & CPUID_1_ECX_TSC_DEADLINE) >>> 0, CPUID_1_ECX_TSC_DEADLINE);
  assert.is((full.entry(0).ecx & 0x00200000) >>> 0, 0x00200000, 'x2APIC bit kept');
  assert.is(full.entry(1).eax, (0x01fb | KVM_FEATURE_MSI_EXT_DEST_ID) >>> 0);
  assert.is(full.entry(0).ebx >>> 24, 300 & 0xff, 'leaf 1 holds the low 8 bits of the APIC ID');
});

test('x2apicBaseMsr: IA32_APIC_BASE at 0xFEE00000, enabled, x2APIC, BSP flag on the boot CPU only', () => {
  assert.equal(x2apicBaseMsr(true), [0x1b, 0xfee00d00n]);
  assert.equal(x2apicBaseMsr(false), [0x1b, 0xfee00c00n]);
});

test('GSI routing: ISA IRQs to both 8259s and the I/O APIC, the PIT (GSI 0) to I/O APIC pin 2', () => {
  const routes = pcGsiRoutes();
  const to = (gsi: number) => routes.filter((r) => r.gsi === gsi).map((r) => [r.chip, r.pin]);
  assert.equal(
    to(0),
    [
      [0, 0],
      [2, 2],
    ],
    'PIT: PIC master pin 0 and I/O APIC pin 2 (MADT override IRQ0 -> GSI2)',
  );
  assert.equal(to(2), [], 'IRQ2 is the cascade');
  assert.equal(
    to(4),
    [
      [0, 4],
      [2, 4],
    ],
    'COM1',
  );
  assert.equal(
    to(9),
    [
      [1, 1],
      [2, 9],
    ],
    'SCI on the slave 8259',
  );
  assert.equal(to(23), [[2, 23]]);
  assert.is(routes.length, 15 + 23);
});

test.run();
