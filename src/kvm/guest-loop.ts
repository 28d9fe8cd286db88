// KVM calibration: how fast does this /dev/kvm run guest code? Builds a one-vCPU VM whose
// RAM is a shared WebAssembly.Memory, puts the vCPU straight into 64-bit long mode
// (identity-mapped 2 MiB pages, a flat GDT, KVM's supported CPUID, CR0/CR4/EFER through
// KVM_SET_SREGS) and runs
//
//     mov rcx, N ; 1: dec rcx ; jnz 1b ; mov rax, MAGIC ; mov [MARKER], rax
//     mov dx, 0x3f8 ; mov al, 'K' ; out dx, al ; hlt
//
// i.e. 2N + 7 instructions. KVM_RUN runs on a worker thread; the `out` comes back to JS as a
// KVM_EXIT_IO read from the kvm_run page, the store shows up in the shared memory. On
// timeout the worker is stopped with a signal (kick.ts) and every fd is closed either way.
// Hardware KVM runs this at hundreds of millions of instructions/s; PVM (kvm_pvm), which
// emulates such guests, at about 2 million.

import { Worker } from 'node:worker_threads';
import { exitReasonName, KVM_EXIT } from './constants.js';
import { installKickHandler, kick } from './kick.js';
import { Kvm } from './kvm.js';
import { KvmRegs, KvmSregs } from './structs.js';
import {
  code64Segment, CR0_ET, CR0_MP, CR0_NE, CR0_PE, CR0_PG, CR0_WP, CR4_PAE, dataSegment, EFER_LMA, EFER_LME, gdtEntry,
  PTE_PRESENT, PTE_PS, PTE_WRITE, RFLAGS_RESERVED, tssSegment, unusableLdt,
} from './x86.js';

/** Guest physical layout of the calibration VM. */
export const LOOP_LAYOUT = {
  gdt: 0x1000,
  tss: 0x1800,
  pml4: 0x2000,
  pdpt: 0x3000,
  pd: 0x4000,
  marker: 0x5000,
  stackTop: 0x8000,
  code: 0x10000,
  /** Guest RAM size: 2 MiB. */
  ramSize: 0x200000,
} as const;

export const LOOP_SELECTORS = { code: 0x08, data: 0x10, tss: 0x18 } as const;
/** What the guest stores at LOOP_LAYOUT.marker when the loop is done. */
export const LOOP_MAGIC = 0x6b747374_72776173n; // "ktstrwas"
export const LOOP_SERIAL_PORT = 0x3f8;
/** The byte the guest writes to the serial port before it halts. */
export const LOOP_SERIAL_BYTE = 0x4b; // 'K'
/** Instructions outside the loop: mov rcx; mov rax; mov [m], rax; mov dx; mov al; out; hlt. */
export const LOOP_FIXED_INSTRUCTIONS = 7;
/** Offset of the loop's first instruction (dec rcx) in the code. */
export const LOOP_BODY_OFFSET = 10;

function u64le(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0n; i < 64n; i += 8n) out.push(Number((v >> i) & 0xffn));
  return out;
}

/** The guest's machine code (64-bit). `iterations` >= 1. */
export function guestLoopCode(iterations: bigint, marker: bigint = BigInt(LOOP_LAYOUT.marker)): Uint8Array {
  if (iterations < 1n || iterations >= 1n << 64n) throw new RangeError('iterations must be in [1, 2^64)');
  return Uint8Array.from([
    0x48, 0xb9, ...u64le(iterations), //       mov rcx, imm64
    0x48, 0xff, 0xc9, //                        1: dec rcx
    0x75, 0xfb, //                              jnz 1b
    0x48, 0xb8, ...u64le(LOOP_MAGIC), //        mov rax, imm64
    0x48, 0xa3, ...u64le(marker), //            mov [moffs64], rax
    0x66, 0xba, LOOP_SERIAL_PORT & 0xff, LOOP_SERIAL_PORT >> 8, // mov dx, 0x3f8
    0xb0, LOOP_SERIAL_BYTE, //                  mov al, 'K'
    0xee, //                                    out dx, al
    0xf4, //                                    hlt
  ]);
}

/**
 * Writes GDT, TSS, page tables (identity map of the first 1 GiB with 2 MiB pages) and the code
 * into guest RAM, which starts at byte `guestBase` of `buf`.
 */
export function writeGuestImage(buf: SharedArrayBuffer | ArrayBuffer, guestBase: number, iterations: bigint): void {
  const L = LOOP_LAYOUT;
  const ram = new DataView(buf, guestBase, L.ramSize);
  new Uint8Array(buf, guestBase, 0x20000).fill(0);
  const gdt = [0n, gdtEntry(code64Segment(LOOP_SELECTORS.code)), gdtEntry(dataSegment(LOOP_SELECTORS.data))];
  gdt.forEach((e, i) => ram.setBigUint64(L.gdt + 8 * i, e, true));
  // 64-bit TSS descriptor: 16 bytes, the upper 8 hold base[63:32].
  ram.setBigUint64(L.gdt + LOOP_SELECTORS.tss, gdtEntry(tssSegment(LOOP_SELECTORS.tss, BigInt(L.tss))), true);
  ram.setBigUint64(L.gdt + LOOP_SELECTORS.tss + 8, 0n, true);
  ram.setBigUint64(L.pml4, BigInt(L.pdpt) | PTE_PRESENT | PTE_WRITE, true);
  ram.setBigUint64(L.pdpt, BigInt(L.pd) | PTE_PRESENT | PTE_WRITE, true);
  for (let i = 0; i < 512; i++) ram.setBigUint64(L.pd + 8 * i, (BigInt(i) << 21n) | PTE_PRESENT | PTE_WRITE | PTE_PS, true);
  new Uint8Array(buf, guestBase + L.code).set(guestLoopCode(iterations));
}

/** Long mode, paging on, flat 64-bit segments: what the loop needs in kvm_sregs. */
export function setLongMode(sregs: KvmSregs): KvmSregs {
  const L = LOOP_LAYOUT;
  sregs.setSegment('cs', code64Segment(LOOP_SELECTORS.code));
  for (const s of ['ds', 'es', 'fs', 'gs', 'ss'] as const) sregs.setSegment(s, dataSegment(LOOP_SELECTORS.data));
  sregs.setSegment('tr', tssSegment(LOOP_SELECTORS.tss, BigInt(L.tss)));
  sregs.setSegment('ldt', unusableLdt());
  sregs.setDtable('gdt', { base: BigInt(L.gdt), limit: LOOP_SELECTORS.tss + 16 - 1 });
  sregs.setDtable('idt', { base: 0n, limit: 0 });
  sregs.set('cr0', CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG);
  sregs.set('cr3', BigInt(L.pml4));
  sregs.set('cr4', CR4_PAE);
  sregs.set('efer', EFER_LME | EFER_LMA);
  return sregs;
}

export interface GuestLoopOptions {
  /** Loop iterations N (>= 1); the guest runs 2N + 7 instructions. */
  iterations: number | bigint;
  /** Limit on guest run time, counted from when the vCPU thread is about to enter KVM_RUN. Default 30 s. */
  timeoutMs?: number;
  /** Limit on starting the vCPU worker thread. Default 30 s. */
  startTimeoutMs?: number;
  /** Byte offset of guest physical 0 in the WASM memory (64 KiB multiple). Default 0. */
  guestBase?: number;
  /** KVM device. Default /dev/kvm. */
  device?: string;
  /** After a timeout, how long to keep kicking the vCPU thread before giving up. Default 5 s. */
  stopGraceMs?: number;
}

export type GuestLoopExitKind = 'hlt' | 'timeout' | 'shutdown' | 'internal-error' | 'fail-entry' | 'error' | 'other';

export interface GuestLoopExit {
  kind: GuestLoopExitKind;
  /** The last KVM exit reason (KVM_EXIT_*), or -1 when KVM_RUN itself failed. */
  exitReason: number;
  exitName: string;
  /** One line: the exit and its details. */
  detail: string;
  /** Guest rip and rcx after the run. */
  rip: bigint;
  rcx: bigint;
}

export interface GuestLoopResult {
  iterations: bigint;
  /** Guest instructions executed (exact when the guest halted, else from rcx). */
  instructions: number;
  /** Time spent in the KVM_RUN loop on the vCPU thread. */
  seconds: number;
  instructionsPerSecond: number;
  exit: GuestLoopExit;
  /** Bytes the guest wrote to port 0x3f8, handled in JS from the kvm_run page. */
  serial: Uint8Array;
  /** The 64-bit word at LOOP_LAYOUT.marker after the run, read from the shared memory (LOOP_MAGIC when done). */
  marker: bigint;
  /** KVM_RUN calls and the I/O exits among their returns. */
  kvmRuns: number;
  ioExits: number;
  /** True when the timeout stopped the run (the vCPU thread was kicked out of KVM_RUN). */
  timedOut: boolean;
}

/** Shared control words between this thread and the vCPU worker. */
export const CTL = { stop: 0, tid: 1, state: 2 } as const;
export const STATE = { starting: 0, running: 1, done: 2 } as const;

/** What the worker posts back (guest-loop-worker.ts). */
export interface WorkerReport {
  exitReason: number;
  detail: string;
  stopped: boolean;
  error?: { message: string; code?: string };
  nanoseconds: bigint;
  kvmRuns: number;
  ioExits: number;
  serial: number[];
  rip: bigint;
  rcx: bigint;
}

export interface WorkerInput {
  vcpuFd: number;
  mmapSize: number;
  control: SharedArrayBuffer;
  serialPort: number;
}

function exitKind(r: WorkerReport): GuestLoopExitKind {
  if (r.stopped) return 'timeout';
  if (r.error) return 'error';
  switch (r.exitReason) {
    case KVM_EXIT.KVM_EXIT_HLT: return 'hlt';
    case KVM_EXIT.KVM_EXIT_SHUTDOWN: return 'shutdown';
    case KVM_EXIT.KVM_EXIT_INTERNAL_ERROR: return 'internal-error';
    case KVM_EXIT.KVM_EXIT_FAIL_ENTRY: return 'fail-entry';
    default: return 'other';
  }
}

/** Messages from the worker: it is about to enter its KVM_RUN loop; its final report. */
export type WorkerMessage = { type: 'running' } | { type: 'report'; report: WorkerReport };

interface WorkerOutcome { report: WorkerReport; startTimedOut: boolean }

/**
 * Runs the vCPU on a worker; resolves with its report once the worker has exited. The guest
 * timeout starts when the worker is about to run the guest; worker start-up has its own limit.
 */
function runOnWorker(input: Omit<WorkerInput, 'control'>, timeoutMs: number, startTimeoutMs: number, stopGraceMs: number): Promise<WorkerOutcome> {
  installKickHandler();
  const control = new SharedArrayBuffer(4 * 4);
  const ctl = new Int32Array(control);
  const workerData: WorkerInput = { ...input, control };
  const worker = new Worker(new URL('./guest-loop-worker.js', import.meta.url), { workerData });
  return new Promise<WorkerOutcome>((resolve, reject) => {
    let report: WorkerReport | undefined;
    let failure: Error | undefined;
    let startTimedOut = false;
    let guestTimer: NodeJS.Timeout | undefined;
    let kicker: NodeJS.Timeout | undefined;
    let giveUp: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      clearTimeout(startTimer);
      clearTimeout(guestTimer);
      clearInterval(kicker);
      clearTimeout(giveUp);
    };
    const kickIfRunning = (): void => {
      if (Atomics.load(ctl, CTL.state) === STATE.running) kick(Atomics.load(ctl, CTL.tid));
    };
    const stop = (): void => {
      if (Atomics.exchange(ctl, CTL.stop, 1) !== 0) return;
      kickIfRunning();
      kicker = setInterval(kickIfRunning, 5);
      giveUp = setTimeout(() => {
        // Last resort: settle now rather than wait for an exit that may never come. The
        // thread may still be inside KVM_RUN, where terminate() cannot reach it.
        cleanup();
        void worker.terminate();
        reject(new Error(`the vCPU thread did not leave KVM_RUN within ${stopGraceMs} ms of being kicked`));
      }, stopGraceMs);
    };
    const startTimer = setTimeout(() => { startTimedOut = true; stop(); }, startTimeoutMs);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'running') {
        clearTimeout(startTimer);
        guestTimer = setTimeout(stop, timeoutMs);
      } else {
        report = m.report;
      }
    });
    worker.on('error', (e: Error) => { failure ??= e; });
    worker.on('exit', (code) => {
      cleanup();
      if (failure) reject(failure);
      else if (report) resolve({ report, startTimedOut });
      else reject(new Error(`the vCPU worker exited with code ${code} without a report`));
    });
  });
}

/** Guest instructions executed, from where the vCPU stopped. */
function instructionsDone(kind: GuestLoopExitKind, iterations: bigint, rip: bigint, rcx: bigint): number {
  const code = BigInt(LOOP_LAYOUT.code);
  if (kind === 'hlt') return Number(2n * iterations) + LOOP_FIXED_INSTRUCTIONS;
  if (rip === code) return 0; // never started
  const inLoop = rip >= code + BigInt(LOOP_BODY_OFFSET) && rip < code + BigInt(LOOP_BODY_OFFSET + 5);
  const left = inLoop && rcx <= iterations ? rcx : 0n;
  return 1 + Number(2n * (iterations - left));
}

/** Runs the calibration loop; see the header. Every fd is closed before this settles. */
export async function runGuestLoop(options: GuestLoopOptions): Promise<GuestLoopResult> {
  const iterations = BigInt(options.iterations);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const guestBase = options.guestBase ?? 0;
  if (iterations < 1n || iterations >= 1n << 64n) throw new RangeError('iterations must be in [1, 2^64)');
  if (guestBase < 0 || guestBase % 65536 !== 0) throw new RangeError('guestBase must be a non-negative multiple of 65536');
  const pages = (guestBase + LOOP_LAYOUT.ramSize) / 65536;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const buf = memory.buffer as unknown as SharedArrayBuffer;

  const kvm = Kvm.open(options.device ?? '/dev/kvm');
  try {
    const vm = kvm.createVm();
    writeGuestImage(buf, guestBase, iterations);
    vm.mapMemory({ slot: 0, guestPhysAddr: 0, memory, offset: guestBase, size: LOOP_LAYOUT.ramSize });
    const vcpu = vm.createVcpu(0);
    vcpu.setCpuid(kvm.supportedCpuid()); // long mode needs CPUID.80000001H:EDX.LM in the guest's CPUID
    vcpu.setSregs(setLongMode(vcpu.getSregs()));
    const regs = new KvmRegs();
    regs.set('rip', LOOP_LAYOUT.code).set('rsp', LOOP_LAYOUT.stackTop).set('rflags', RFLAGS_RESERVED);
    vcpu.setRegs(regs);

    const { report: r, startTimedOut } = await runOnWorker(
      { vcpuFd: vcpu.fd, mmapSize: vcpu.mmapSize, serialPort: LOOP_SERIAL_PORT },
      timeoutMs, options.startTimeoutMs ?? 30_000, options.stopGraceMs ?? 5000,
    );
    const kind = exitKind(r);
    const instructions = instructionsDone(kind, iterations, r.rip, r.rcx);
    const stoppedWhy = startTimedOut
      ? `the vCPU thread did not start within ${options.startTimeoutMs ?? 30_000} ms`
      : `the guest did not halt within ${timeoutMs} ms`;
    const seconds = Number(r.nanoseconds) / 1e9;
    return {
      iterations,
      instructions,
      seconds,
      instructionsPerSecond: seconds > 0 ? instructions / seconds : 0,
      exit: {
        kind,
        exitReason: r.error ? -1 : r.exitReason,
        exitName: r.error ? 'KVM_RUN failed' : exitReasonName(r.exitReason),
        detail: r.error ? `KVM_RUN: ${r.error.message}` : r.stopped ? `timeout: ${stoppedWhy} (${r.detail})` : r.detail,
        rip: r.rip,
        rcx: r.rcx,
      },
      serial: Uint8Array.from(r.serial),
      marker: new DataView(buf, guestBase + LOOP_LAYOUT.marker, 8).getBigUint64(0, true),
      kvmRuns: r.kvmRuns,
      ioExits: r.ioExits,
      timedOut: r.stopped,
    };
  } finally {
    kvm.close();
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
