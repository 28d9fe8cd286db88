// KVM calibration: how fast does this /dev/kvm run guest code? The loop of loop-code.ts
// runs as a raw image (vmm/boot/raw-image.ts) on the VMM's own Machine: one vCPU, no
// in-kernel irqchip (so its HLT leaves KVM_RUN), guest RAM in shared WebAssembly memory.
// The time is the vCPU thread's run loop, from the go signal to the halt. On timeout the
// registers are read from the running vCPU, then the Machine stops it; every fd is closed
// either way. Hardware KVM runs this at hundreds of millions of instructions/s; PVM
// (kvm_pvm), which emulates such guests, at about 2 million.

import { native } from '../kvm/native.js';
import { RAW_LAYOUT, writeRawImage } from '../vmm/boot/raw-image.js';
import { GuestMemory } from '../vmm/memory.js';
import type { VmEventKind } from '../vmm/vcpu-protocol.js';
import { Machine, type VmEvent } from '../vmm/vm.js';
import { guestLoopCode, LOOP_BODY_OFFSET, LOOP_FIXED_INSTRUCTIONS, LOOP_MARKER } from './loop-code.js';

export interface GuestLoopOptions {
  /** Loop iterations N (>= 1); the guest runs 2N + 7 instructions. */
  iterations: number | bigint;
  /** Limit on guest run time, counted from when the vCPU thread is let into KVM_RUN. Default 30 s. */
  timeoutMs?: number;
  /** Limit on starting the vCPU worker thread. Default 30 s. */
  startTimeoutMs?: number;
  /** KVM device. Default /dev/kvm. */
  device?: string;
  /** After a timeout, how long to keep kicking the vCPU thread before terminating it. Default 5 s. */
  stopGraceMs?: number;
}

/** How the run ended: the Machine's event, or `timeout` when it had to be stopped. */
export type GuestLoopExitKind = VmEventKind | 'timeout';

export interface GuestLoopExit {
  kind: GuestLoopExitKind;
  /** One line: why the run ended. */
  detail: string;
  /** Guest rip and rcx after the run. */
  rip: bigint;
  rcx: bigint;
}

export interface GuestLoopResult {
  iterations: bigint;
  /** Guest instructions executed (exact when the guest halted, else from rcx). */
  instructions: number;
  /** Time the vCPU thread spent in its run loop. */
  seconds: number;
  instructionsPerSecond: number;
  exit: GuestLoopExit;
  /** Bytes the guest wrote to COM1 (port 0x3f8). */
  serial: Uint8Array;
  /** The 64-bit word at LOOP_MARKER after the run, read from the shared memory (LOOP_MAGIC when done). */
  marker: bigint;
  /** Byte offset of guest physical 0 in the WASM memory (the WASM core's GUEST_BASE and more). */
  guestOffset: number;
  /** KVM_RUN calls and the I/O exits among their returns. */
  kvmRuns: number;
  ioExits: number;
  /** True when the timeout stopped the run (the vCPU thread was kicked out of KVM_RUN). */
  timedOut: boolean;
}

/** A timer to race against, cleared when the race is over. */
function deadline(ms: number): { expired: Promise<undefined>; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((res) => {
    timer = setTimeout(() => res(undefined), ms);
  });
  return { expired, clear: () => clearTimeout(timer) };
}

/** Starts the Machine and waits for its first event, or says which limit ran out. */
async function runToEnd(
  machine: Machine,
  startTimeoutMs: number,
  timeoutMs: number,
): Promise<{ event: VmEvent } | { stoppedWhy: string }> {
  let onEvent!: (e: VmEvent) => void;
  const ended = new Promise<VmEvent>((res) => {
    onEvent = res;
  });
  const startLimit = deadline(startTimeoutMs);
  const started = await Promise.race([machine.start(onEvent).then(() => true), startLimit.expired]).finally(
    startLimit.clear,
  );
  if (started !== true) return { stoppedWhy: `the vCPU thread did not start within ${startTimeoutMs} ms` };
  const runLimit = deadline(timeoutMs);
  const event = await Promise.race([ended, runLimit.expired]).finally(runLimit.clear);
  return event === undefined ? { stoppedWhy: `the guest did not halt within ${timeoutMs} ms` } : { event };
}

/** Guest instructions executed, from where the vCPU stopped. */
function instructionsDone(kind: GuestLoopExitKind, iterations: bigint, rip: bigint, rcx: bigint): number {
  const code = BigInt(RAW_LAYOUT.code);
  if (kind === 'hlt') return Number(2n * iterations) + LOOP_FIXED_INSTRUCTIONS;
  if (rip === code) return 0; // never started
  const inLoop = rip >= code + BigInt(LOOP_BODY_OFFSET) && rip < code + BigInt(LOOP_BODY_OFFSET + 5);
  const left = inLoop && rcx <= iterations ? rcx : 0n;
  return 1 + Number(2n * (iterations - left));
}

/** Runs the calibration loop once; see the header. Every fd is closed before this settles. */
export async function runGuestLoop(options: GuestLoopOptions): Promise<GuestLoopResult> {
  const iterations = BigInt(options.iterations);
  const code = guestLoopCode(iterations);
  const memory = new GuestMemory(RAW_LAYOUT.ramSize, (b) => native().sharedBufferAddress(b));
  const machine = new Machine({
    memory,
    vcpus: 1,
    boot: writeRawImage(memory, code),
    device: options.device,
    irqchip: false,
  });
  try {
    const end = await runToEnd(machine, options.startTimeoutMs ?? 30_000, options.timeoutMs ?? 30_000);
    // A halted vCPU's registers are read on its fd once its thread has left the run loop; a
    // running one's by its thread, between two KVM_RUNs.
    if ('event' in end) await machine.exited(0);
    const regs = await machine.readRegs(0).catch(() => undefined);
    await machine.stop(options.stopGraceMs ?? 5000);
    const rip = regs?.gprs.rip ?? 0n;
    const rcx = regs?.gprs.rcx ?? 0n;
    const kind: GuestLoopExitKind = 'event' in end ? end.event.kind : 'timeout';
    const instructions = instructionsDone(kind, iterations, rip, rcx);
    const seconds = machine.runNanoseconds / 1e9;
    return {
      iterations,
      instructions,
      seconds,
      instructionsPerSecond: seconds > 0 ? instructions / seconds : 0,
      exit: { kind, detail: 'event' in end ? end.event.detail : `timeout: ${end.stoppedWhy}`, rip, rcx },
      serial: machine.com1.drainOutput(),
      marker: memory.readU64(LOOP_MARKER),
      guestOffset: memory.regions[0].offset,
      kvmRuns: machine.stats.runs,
      ioExits: machine.stats.ioExits,
      timedOut: kind === 'timeout',
    };
  } finally {
    await machine.stop();
  }
}

export interface CalibrateOptions {
  /** Wanted duration of the measured run. Default 200 ms. */
  targetMs?: number;
  /** Iterations of the probe run that sizes the measured one. Default 200 000. */
  probeIterations?: number;
  /** Upper bound on the measured run's iterations. Default 10^9. */
  maxIterations?: number;
  device?: string;
  timeoutMs?: number;
}

/**
 * Instructions/s of this /dev/kvm without knowing its speed up front: a short probe, then a
 * run sized to take about `targetMs` (small N under-reports hardware KVM, whose fixed
 * per-run cost is milliseconds; large N takes minutes on an emulating one). Returns the
 * last run (the probe itself when it already took half of `targetMs`).
 */
export async function calibrateGuestLoop(o: CalibrateOptions = {}): Promise<GuestLoopResult> {
  const targetMs = o.targetMs ?? 200;
  const maxIterations = o.maxIterations ?? 1e9;
  const base = { device: o.device, timeoutMs: o.timeoutMs ?? 60_000 };
  let r = await runGuestLoop({ ...base, iterations: o.probeIterations ?? 200_000 });
  // The fixed cost makes short runs under-report, so resize up to 3 times until the run is
  // at least half the target.
  for (let round = 0; round < 3 && r.exit.kind === 'hlt' && r.seconds * 1e3 < targetMs / 2; round++) {
    const current = Number(r.iterations);
    const next = Math.min(maxIterations, Math.round((current * targetMs) / Math.max(r.seconds * 1e3, 0.01)));
    if (next <= current) break;
    r = await runGuestLoop({ ...base, iterations: next });
  }
  return r;
}
