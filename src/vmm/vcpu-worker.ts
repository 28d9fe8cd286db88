// One vCPU thread: maps kvm_run, loops on KVM_RUN and handles the exits, decoded into
// kvm/run.ts's VcpuExit union, in TypeScript --
// port I/O through the PortBus (UARTs with their state in shared memory, see
// devices/serial.ts), MMIO to nothing (reads 0xff), a hardware watchpoint's hit (held
// until the main thread has looked), and the ends of a run: the exit
// port, a reset (i8042), a triple fault (KVM_EXIT_SHUTDOWN), a KVM system event, HLT
// without an in-kernel irqchip, or a failure. The first end posts a VM-wide event (first
// one wins through the shared event word), and the main thread then stops every vCPU
// (stop flag + kick). The vCPU fd belongs to the main thread, which closes it after this
// thread's run has ended.
//
// A thread serves one VM at a time and may serve many in turn (vcpu-thread-pool.ts keeps it
// warm between VMs): each VM hands it a VcpuAttach message -- its vCPU and control words,
// and a MessagePort for this run's messages -- and the run ends with a `done` message, after
// which the thread waits for the next attach. Nothing of one run outlives it here.

import { parentPort, type MessagePort } from 'node:worker_threads';
import { KVM_SYSTEM_EVENT } from '../kvm/constants.js';
import { prepareVcpuThread } from '../kvm/kick.js';
import { Vcpu, Vm } from '../kvm/kvm.js';
import { isErrnoError } from '../kvm/native.js';
import type { DebugExit } from '../kvm/run.js';
import { PortBus, type PortEvent } from './devices/ports.js';
import { Serial, type SerialShared } from './devices/serial.js';
import {
  DEBUG_REGS_OFFSET,
  eventCode,
  VCPU_CTL,
  VCPU_STATE,
  type VcpuMessage,
  type VmEventKind,
} from './vcpu-protocol.js';

export interface VcpuWorkerInput {
  vcpuId: number;
  vcpuFd: number;
  vmFd: number;
  mmapSize: number;
  /** VCPU_CTL words and the debug registers to set (vcpu-protocol.ts). */
  control: SharedArrayBuffer;
  /** VM-wide Int32 [kind, value, vcpu]: the first end of the run. */
  events: SharedArrayBuffer;
  serials: SerialShared[];
  /** The port bus's machine registers (devices/ports.ts createPortRegisters), shared by every vCPU thread. */
  ports: SharedArrayBuffer;
}

/** What the main thread sends a (possibly warm) vCPU thread to run one VM's vCPU. */
export interface VcpuAttach {
  type: 'attach';
  input: VcpuWorkerInput;
  /** This run's messages (VcpuMessage) go here; the main thread closes it after `done`. */
  port: MessagePort;
}

// one run's context, set by each attach (a thread runs one vCPU at a time)
let input!: VcpuWorkerInput;
let ctl!: Int32Array;
let ev!: Int32Array;
let port!: MessagePort;
const post = (m: VcpuMessage): void => port.postMessage(m);

function end(kind: VmEventKind, value: number, detail: string): void {
  if (Atomics.compareExchange(ev, 0, 0, eventCode(kind)) === 0) {
    ev[1] = value;
    ev[2] = input.vcpuId;
    post({ type: 'event', kind, value, vcpu: input.vcpuId, detail });
  }
  Atomics.store(ctl, VCPU_CTL.stop, 1);
}

/** Answers the main thread's request for this vCPU's RIP, RSP and control registers (between two KVM_RUNs). */
function postSregs(vcpu: Vcpu): void {
  const s = vcpu.getSregs();
  const r = vcpu.getRegs();
  Atomics.store(ctl, VCPU_CTL.sregsRequest, 0);
  post({
    type: 'sregs',
    vcpu: input.vcpuId,
    rip: r.get('rip'),
    rsp: r.get('rsp'),
    cr0: s.get('cr0'),
    cr3: s.get('cr3'),
    cr4: s.get('cr4'),
    efer: s.get('efer'),
  });
}

/** Answers the main thread's request for all of this vCPU's general and special registers (a failure dump). */
function postRegs(vcpu: Vcpu): void {
  const regs = vcpu.getRegs().bytes.slice();
  const sregs = vcpu.getSregs().bytes.slice();
  Atomics.store(ctl, VCPU_CTL.regsRequest, 0);
  post({ type: 'regs', vcpu: input.vcpuId, regs, sregs });
}

/** The main thread's requests, answered between two KVM_RUNs (also while held). */
function answerRequests(vcpu: Vcpu): void {
  if (Atomics.load(ctl, VCPU_CTL.sregsRequest) !== 0) postSregs(vcpu);
  if (Atomics.load(ctl, VCPU_CTL.regsRequest) !== 0) postRegs(vcpu);
  if (Atomics.load(ctl, VCPU_CTL.debugRequest) !== 0) applyDebugRegs(vcpu);
}

/** Sets this vCPU's hardware watchpoints from the control buffer (Machine.setWatchpoints). */
function applyDebugRegs(vcpu: Vcpu): void {
  let error: string | null = null;
  try {
    const debugRegs = new BigUint64Array(input.control, DEBUG_REGS_OFFSET, 5);
    vcpu.setHardwareBreakpoints([debugRegs[0], debugRegs[1], debugRegs[2], debugRegs[3]], debugRegs[4]);
  } catch (e) {
    error = `KVM_SET_GUEST_DEBUG on vCPU ${input.vcpuId}: ${(e as Error).message}`;
  }
  Atomics.store(ctl, VCPU_CTL.debugRequest, 0);
  post({ type: 'debug-set', vcpu: input.vcpuId, error });
}

/**
 * A watchpoint fired (KVM_EXIT_DEBUG): tell the main thread and hold here, counted as paused,
 * until it releases us (it reads guest memory meanwhile); register reads are still answered.
 */
function holdAtDebugExit(vcpu: Vcpu, d: DebugExit): void {
  Atomics.store(ctl, VCPU_CTL.hold, 1);
  Atomics.store(ctl, VCPU_CTL.paused, 1);
  post({ type: 'debug-hit', vcpu: input.vcpuId, exception: d.exception, pc: d.pc, dr6: d.dr6 });
  while (Atomics.load(ctl, VCPU_CTL.hold) !== 0 && Atomics.load(ctl, VCPU_CTL.stop) === 0) {
    answerRequests(vcpu);
    Atomics.wait(ctl, VCPU_CTL.hold, 1, 20);
  }
  Atomics.store(ctl, VCPU_CTL.paused, 0);
}

/** Where the vCPU stood, for the reason of a failed run: ` at rip=... cr0=... cr3=...` (empty if unreadable). */
function where(vcpu: Vcpu): string {
  try {
    const r = vcpu.getRegs();
    const sr = vcpu.getSregs();
    const h = (v: bigint): string => `0x${v.toString(16)}`;
    return ` at rip=${h(r.get('rip'))} cr0=${h(sr.get('cr0'))} cr3=${h(sr.get('cr3'))} efer=${h(sr.get('efer'))}`;
  } catch {
    return '';
  }
}

/** Runs one VM's vCPU until its run ends (stop flag, an end of the run, or a failure); posts `done` last. */
function runVcpu(): void {
  const vcpu = Vcpu.attach(input.vcpuFd, input.mmapSize, input.vcpuId);
  const vm = Vm.attach(input.vmFd);
  const serials = input.serials.map((s) => new Serial(s, (level) => vm.irqLine(s.irq, level)));
  const bus = new PortBus(
    serials,
    (e: PortEvent) => {
      if (e.kind === 'exit') end('exit', e.code, `exit port: code ${e.code}`);
      else if (e.kind === 'poweroff') end('poweroff', 0, e.why);
      else end('reset', 0, e.why);
    },
    new Int32Array(input.ports),
  );
  let runs = 0;
  let ioExits = 0;
  let mmioExits = 0;
  const ports = new Map<number, number>();
  let started = 0n;
  try {
    Atomics.store(ctl, VCPU_CTL.tid, prepareVcpuThread());
    const run = vcpu.run;
    Atomics.store(ctl, VCPU_CTL.state, VCPU_STATE.running);
    post({ type: 'running', vcpu: input.vcpuId });
    // The boot CPU starts the guest only once every vCPU thread is up (vm.ts start()).
    while (Atomics.load(ctl, VCPU_CTL.go) === 0 && Atomics.load(ctl, VCPU_CTL.stop) === 0)
      Atomics.wait(ctl, VCPU_CTL.go, 0, 50);
    started = process.hrtime.bigint();
    for (;;) {
      if (Atomics.load(ctl, VCPU_CTL.stop) !== 0) break;
      answerRequests(vcpu);
      if (Atomics.load(ctl, VCPU_CTL.pause) !== 0) {
        // held between two KVM_RUNs while the host reads guest memory (vm.ts pause())
        // the exit just handled finishes inside KVM (an IN's data reaches its register), so
        // the registers read meanwhile are the vCPU's whole state: what a snapshot saves
        vcpu.completePendingExit();
        Atomics.store(ctl, VCPU_CTL.paused, 1);
        while (Atomics.load(ctl, VCPU_CTL.pause) !== 0 && Atomics.load(ctl, VCPU_CTL.stop) === 0) {
          answerRequests(vcpu);
          Atomics.wait(ctl, VCPU_CTL.pause, 1, 20);
        }
        Atomics.store(ctl, VCPU_CTL.paused, 0);
        continue;
      }
      try {
        runs++;
        vcpu.runOnce();
      } catch (e) {
        if (isErrnoError(e, 'EINTR') || isErrnoError(e, 'EAGAIN')) continue;
        end('error', 0, `KVM_RUN on vCPU ${input.vcpuId}: ${(e as Error).message}`);
        break;
      }
      const exit = run.exit();
      switch (exit.kind) {
        case 'io-out':
        case 'io-in': {
          ioExits++;
          const { port, size, count, data } = exit;
          ports.set(port, (ports.get(port) ?? 0) + 1);
          if (exit.kind === 'io-out') {
            if (count === 1 && size === 1) bus.out(port, data);
            else for (let i = 0; i < count; i++) bus.out(port, data.subarray(i * size, (i + 1) * size));
          } else if (count === 1) {
            bus.in(port, data);
          } else {
            for (let i = 0; i < count; i++) bus.in(port, data.subarray(i * size, (i + 1) * size));
          }
          continue;
        }
        case 'mmio':
          mmioExits++;
          if (!exit.isWrite) exit.data.fill(0xff);
          continue;
        case 'intr':
          continue;
        case 'debug':
          holdAtDebugExit(vcpu, exit);
          continue;
        case 'shutdown':
          // no registers: on AMD, KVM resets the vCPU on a shutdown intercept before it returns
          end('triple-fault', 0, `KVM_EXIT_SHUTDOWN on vCPU ${input.vcpuId} (triple fault)`);
          break;
        case 'hlt':
          end('hlt', 0, `KVM_EXIT_HLT on vCPU ${input.vcpuId}`);
          break;
        case 'system-event':
          if (exit.type === KVM_SYSTEM_EVENT.KVM_SYSTEM_EVENT_SHUTDOWN)
            end('poweroff', 0, 'KVM system event: shutdown');
          else if (exit.type === KVM_SYSTEM_EVENT.KVM_SYSTEM_EVENT_RESET) end('reset', 0, 'KVM system event: reset');
          else end('error', 0, run.describeExit());
          break;
        default:
          end('error', 0, `vCPU ${input.vcpuId}: ${run.describeExit()}${where(vcpu)}`);
          break;
      }
      break;
    }
  } finally {
    const nanoseconds = started === 0n ? 0 : Number(process.hrtime.bigint() - started);
    Atomics.store(ctl, VCPU_CTL.state, VCPU_STATE.done);
    vcpu.close(); // unmaps kvm_run; the fd belongs to the main thread
    post({
      type: 'done',
      vcpu: input.vcpuId,
      runs,
      ioExits,
      mmioExits,
      ports: Object.fromEntries([...ports].map(([p, n]) => ['0x' + p.toString(16), n])),
      dropped: serials.reduce((a, s) => a + s.dropped, 0),
      nanoseconds,
    });
  }
}

parentPort!.on('message', (m: VcpuAttach) => {
  if (m?.type !== 'attach') return;
  input = m.input;
  ctl = new Int32Array(input.control);
  ev = new Int32Array(input.events);
  port = m.port;
  runVcpu();
});
