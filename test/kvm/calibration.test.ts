// Issue 3, acceptance 1: a VM whose RAM is shared WebAssembly memory runs a 64-bit guest
// loop at more than 100 M instructions/s -- hardware (SVM/VMX) KVM, not PVM's ~2 M. The
// loop is the doctor's calibration, a raw image on the VMM's Machine. Runs where /dev/kvm
// is real; on this machine kind the test runner sends test/kvm/ into the emulated KVM test
// host. Also: the guest's serial byte and memory store arrive, a hung guest is stopped by
// the timeout, and no fd is left open afterwards.

import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { calibrateGuestLoop, runGuestLoop, type GuestLoopResult } from '../../src/doctor/calibration.js';
import { LOOP_MAGIC, LOOP_SERIAL_BYTE } from '../../src/doctor/loop-code.js';
import { native } from '../../src/kvm/native.js';
import { RAW_LAYOUT } from '../../src/vmm/boot/raw-image.js';
import { GUEST_BASE } from '../../src/vmm/memory.js';
import { closeIdleVcpuThreads } from '../../src/vmm/vcpu-thread-pool.js';

const MIN_RATE = 100e6;
/** Below this the probe already shows an emulating /dev/kvm (PVM runs ~2 M): skip the long run. */
const PROBE_FLOOR = 20e6;
const PROBE_ITERATIONS = 1_000_000; // ~10 ms on hardware KVM (start-up cost included), ~1.3 s on PVM
const MEASURE_ITERATIONS = 50_000_000; // 100 M instructions: ~0.16 s at 640 M/s

const openFds = (): string[] => readdirSync('/proc/self/fd');
let fdsBefore: string[] = [];
let probeRate = 0;

const mips = (r: GuestLoopResult): string => (r.instructionsPerSecond / 1e6).toFixed(1);

function report(label: string, r: GuestLoopResult): void {
  console.log(
    `  ${label}: ${mips(r)} M instructions/s (${r.instructions} instructions in ${(r.seconds * 1e3).toFixed(1)} ms, ${r.kvmRuns} KVM_RUN, exit ${r.exit.kind})`,
  );
}

function assertHalted(r: GuestLoopResult): void {
  assert.is(r.exit.kind, 'hlt', r.exit.detail);
  assert.equal(
    [...r.serial],
    [LOOP_SERIAL_BYTE],
    'the byte the guest wrote to port 0x3f8 arrived through the kvm_run page',
  );
  assert.is(r.ioExits, 1);
  assert.is(r.marker, LOOP_MAGIC, 'the guest store is visible in the shared WASM memory');
  assert.is(r.exit.rcx, 0n);
}

test.before(async () => {
  native(); // load the addon before counting fds
  await closeIdleVcpuThreads(); // an earlier test file's warm vCPU threads (their event loops' fds)
  fdsBefore = openFds();
});

test('probe: the loop halts after its serial write and memory store', async () => {
  const r = await runGuestLoop({ iterations: PROBE_ITERATIONS, timeoutMs: 60_000 });
  report(`probe (N=${PROBE_ITERATIONS})`, r);
  assertHalted(r);
  assert.is(r.instructions, 2 * PROBE_ITERATIONS + 7);
  probeRate = r.instructionsPerSecond;
});

test(`guest loop runs at more than ${MIN_RATE / 1e6} M instructions/s`, async () => {
  if (probeRate < PROBE_FLOOR) {
    assert.unreachable(
      `this /dev/kvm ran the probe at ${(probeRate / 1e6).toFixed(2)} M instructions/s: it emulates guests (PVM?) -- ` +
        `run test/kvm/ on hardware KVM or inside the emulated KVM test host`,
    );
  }
  const r = await runGuestLoop({ iterations: MEASURE_ITERATIONS, timeoutMs: 60_000 });
  report(`guest loop (N=${MEASURE_ITERATIONS})`, r);
  assertHalted(r);
  assert.ok(r.instructionsPerSecond > MIN_RATE, `${mips(r)} M instructions/s is not above ${MIN_RATE / 1e6} M`);
});

test('guest RAM at a non-zero offset of the WASM memory (GUEST_BASE)', async () => {
  const r = await runGuestLoop({ iterations: 1000, timeoutMs: 60_000 });
  assert.ok(r.guestOffset >= GUEST_BASE, `guest physical 0 at offset ${r.guestOffset}`);
  assertHalted(r);
});

test('calibrateGuestLoop sizes its run to the target duration', async () => {
  const r = await calibrateGuestLoop({ targetMs: 200 });
  report(`calibrate (N=${r.iterations})`, r);
  assertHalted(r);
  assert.ok(r.seconds >= 0.05, `the sized run took ${(r.seconds * 1e3).toFixed(1)} ms`);
});

test('a guest that does not halt is stopped by the timeout; the host does not hang', async () => {
  const t0 = Date.now();
  const n = 1n << 62n;
  const r = await runGuestLoop({ iterations: n, timeoutMs: 300 });
  const elapsed = Date.now() - t0;
  console.log(`  timeout: stopped after ${elapsed} ms (${mips(r)} M instructions/s, rip 0x${r.exit.rip.toString(16)})`);
  assert.is(r.exit.kind, 'timeout', r.exit.detail);
  assert.ok(r.timedOut);
  assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
  assert.ok(r.exit.rcx > 0n && r.exit.rcx < n, 'the guest was inside its loop');
  assert.is(r.serial.length, 0);
  assert.is(r.marker, 0n);
  assert.ok(r.exit.rip >= BigInt(RAW_LAYOUT.code) && r.exit.rip < BigInt(RAW_LAYOUT.code + 16));
});

test('no fd is left open after the runs', async () => {
  // the runs' vCPU threads stay warm for a next VM, each with its event loop's own fds: end them first
  await closeIdleVcpuThreads();
  assert.equal(openFds(), fdsBefore);
});

test.run();
