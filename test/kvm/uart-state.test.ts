// Issue 18, item 3, acceptance: a UART saved mid-boot restores into a fresh device with
// identical output. Our VMM boots the test kernel; at three points (the kernel's first
// console output, /init's marker with the console tty open, and the guest's own command
// writing to /dev/console) the vCPUs are held, COM1 is saved (plain data, through JSON) and
// restored into a fresh device with a recording trigger. That device transmits exactly the
// bytes the VM's console delivered after the save point — the undrained bytes at once, and
// the rest of the boot's console output when the guest's console writes are replayed on it —
// and a byte received but not yet read is read the same. Meanwhile every console chunk saves
// both UARTs with the guest running and checks they restore to the same state.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findTestKernel } from '../helpers/test-kernel.js';
import { COM1, COM2, Serial, type SerialState } from '../../src/vmm/devices/serial.js';
import { bootVm, DEFAULT_CMDLINE, type LiveVm } from '../../src/vmm/index.js';
import { buildShellInitramfs, INIT_MARKER } from '../../src/guest/shell-initramfs.js';

const kernel = findTestKernel();
const THR = COM1.base,
  IIR = COM1.base + 2,
  LCR = COM1.base + 3,
  LSR = COM1.base + 5;
const LSR_DR = 0x01,
  LSR_THRE = 0x20;
const SAVE_MARK = 'uart-save-point';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Save {
  name: string;
  /** Console bytes the host had when the state was saved. */
  at: number;
  state: SerialState;
  fresh: Serial;
  irq: number[];
  /** The bytes the VM delivered while held after the save (the undrained ones). */
  pendingOut: number[];
  /** The byte received at the save, read back from the fresh device. */
  received?: { lsr: number; iir: number; byte: number; lsrAfter: number };
}

const append = (to: number[], bytes: Uint8Array): void => {
  for (const b of bytes) to.push(b);
};

/** The guest's console driver, as far as output goes: wait for THR empty, write the byte. */
function transmit(s: Serial, bytes: number[]): number[] {
  const out: number[] = [];
  if (s.read(LCR) & 0x80) s.write(LCR, s.read(LCR) & 0x7f); // saved inside a divisor update: the driver ends it
  bytes.forEach((b, i) => {
    while ((s.read(LSR) & LSR_THRE) === 0) {
      /* THR is empty at once */
    }
    s.write(THR, b);
    if (i % 4096 === 4095) append(out, s.drainOutput());
  });
  append(out, s.drainOutput());
  return out;
}

test('a UART saved mid-boot restores into a fresh device with identical output', async () => {
  if (!kernel) {
    console.log('  SKIPPED: no kernel (set KTSTR_KERNEL)');
    return;
  }
  const lines = Array.from({ length: 20 }, (_, i) => `console line ${i + 1}`);
  const exec = `echo ${SAVE_MARK} >/dev/console; sleep 1; for l in ${lines.map((l) => `'${l}'`).join(' ')}; do echo "$l" >/dev/console; done; exit 0`;
  const initrd = await buildShellInitramfs({ exec });
  const consoleBytes: number[] = [];
  let text = ''; // the recent console, for the markers across chunk boundaries
  let initSeen = false;
  let markSeen = false;
  let live: LiveVm | undefined;
  const saves: Save[] = [];
  const points = [
    { name: 'first console output', when: (): boolean => consoleBytes.length > 0, inject: false },
    { name: 'init marker (console tty open)', when: (): boolean => initSeen, inject: false },
    { name: 'guest command (a byte received)', when: (): boolean => markSeen, inject: true },
  ];
  let saving: Promise<void> | undefined;
  const failures: string[] = [];
  let liveRoundTrips = 0;

  const save = async (vm: LiveVm, p: (typeof points)[number]): Promise<void> => {
    await vm.pause(10_000);
    try {
      if (p.inject) vm.console(Uint8Array.of(0x0a));
      const at = consoleBytes.length;
      const state = JSON.parse(JSON.stringify(vm.serialState().com1)) as SerialState;
      const irq: number[] = [];
      const fresh = Serial.fromState(COM1, state, (level) => {
        irq.push(level);
      });
      await sleep(200); // the host drains what the guest had sent (the vCPUs are held: nothing new)
      const pendingOut = consoleBytes.slice(at);
      const s: Save = { name: p.name, at, state, fresh, irq, pendingOut };
      assert.equal(fresh.state(), state, `${p.name}: the fresh device holds the saved state`);
      if (p.inject) {
        const lsr = fresh.read(LSR);
        const iir = fresh.read(IIR);
        s.received = { lsr, iir, byte: fresh.read(THR), lsrAfter: fresh.read(LSR) };
      }
      saves.push(s);
    } finally {
      vm.resume();
    }
  };

  const r = await bootVm({
    kernel,
    initrd,
    cmdline: DEFAULT_CMDLINE,
    memoryMiB: 256,
    timeoutMs: 240_000,
    markers: [INIT_MARKER],
    onStart: (vm) => {
      live = vm;
    },
    onConsole: (chunk) => {
      append(consoleBytes, chunk);
      text = (text + Buffer.from(chunk).toString('latin1')).slice(-4096);
      initSeen ||= text.includes(INIT_MARKER);
      markSeen ||= text.includes(SAVE_MARK);
      if (live === undefined) return;
      // a save while the guest runs: consistent (under the UART's lock) and restorable
      try {
        const { com1, com2 } = live.serialState();
        for (const [port, st] of [
          [COM1, com1],
          [COM2, com2],
        ] as const) {
          const copy = structuredClone(st);
          assert.equal(Serial.fromState(port, copy, () => {}).state(), st);
        }
        liveRoundTrips++;
      } catch (e) {
        failures.push(`live round trip: ${(e as Error).message}`);
      }
      const next = points[saves.length];
      if (next !== undefined && saving === undefined && next.when()) {
        saving = save(live, next)
          .catch((e: Error) => {
            failures.push(`${next.name}: ${e.message}`);
          })
          .finally(() => {
            saving = undefined;
          });
      }
    },
  });
  await saving;
  console.log(
    `  ${r.reason}: ${consoleBytes.length} console bytes, ${liveRoundTrips} live round trips, saves at ${saves.map((s) => `${s.at}+${s.pendingOut.length}`).join(', ')}`,
  );
  assert.equal(failures, []);
  assert.is(r.reason, 'exit', r.consoleTail.slice(-2000));
  assert.is(r.exitCode, 0);
  assert.equal(
    saves.map((s) => s.name),
    points.map((p) => p.name),
    'every save point reached',
  );
  for (const s of saves) {
    const after = consoleBytes.slice(s.at);
    const freshOut = [...s.fresh.drainOutput()];
    assert.equal(freshOut, s.state.tx, `${s.name}: the fresh device's undrained output is the saved one`);
    assert.equal(freshOut, s.pendingOut, `${s.name}: and what the VM delivered after the save`);
    const rest = after.slice(freshOut.length);
    assert.equal(
      transmit(s.fresh, rest),
      rest,
      `${s.name}: the rest of the boot's console output, sent through the fresh device`,
    );
  }
  const tty = saves[2];
  assert.ok((tty.state.ier & 0x01) !== 0, 'the console tty has receive interrupts on');
  assert.equal(tty.state.rx, [0x0a], 'the byte received at the save point is in the saved state');
  assert.is(tty.state.irqLevel, 1, 'and its interrupt raised');
  const got = tty.received!;
  assert.is(got.lsr & LSR_DR, LSR_DR, 'LSR: data ready');
  assert.is(got.iir & 0x0f, 0x04, 'IIR: received data');
  assert.is(got.byte, 0x0a, 'RBR: the byte');
  assert.is(got.lsrAfter & LSR_DR, 0, 'LSR: nothing more');
  assert.ok(Buffer.from(consoleBytes).toString('latin1').includes(lines[19]), 'the guest wrote its last console line');
});

test.run();
