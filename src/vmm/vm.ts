// One KVM virtual machine for a Linux boot (or a raw code image): the VM fd with its
// TSS/identity-map pages, in-kernel irqchip and PIT (a raw image may go without), guest RAM
// slots (memory.ts), the vCPUs (CPUID from KVM_GET_SUPPORTED_CPUID through the cpuid hook,
// boot MSRs, FPU, LAPIC LINTs, and on the BSP the 64-bit entry state from boot/), and one
// worker thread per vCPU running KVM_RUN (vcpu-worker.ts; warm threads of an earlier VM are
// reused, see vcpu-thread-pool.ts).
// APs stay in KVM's wait-for-SIPI state until the guest starts them. Every KVM call goes
// through src/kvm's Vm and Vcpu; kvm-setup.ts supplies the values.
//
// Teardown (stop()): the stop flag of every vCPU is set and its thread kicked with the kick
// signal until it has left KVM_RUN and ended its run; only then are the vCPU, VM and /dev/kvm
// fds closed (the worker never owns an fd). A thread that does not end within the grace time
// is terminated (and never reused). stop() is idempotent and is reached on every path.

import { MessageChannel, type Worker } from 'node:worker_threads';
import { KVM_CAP } from '../kvm/constants.js';
import { installKickHandler, kick } from '../kvm/kick.js';
import { Kvm, type KvmClockData, type Vcpu, type Vm } from '../kvm/kvm.js';
import {
  KvmRegs,
  KvmSregs,
  SEGMENT_NAMES,
  type KvmDtable,
  type KvmSegment,
  type RegName,
  type SegmentName,
} from '../kvm/structs.js';
import { bootRegs, bootSregs, type BootEntry } from './boot/entry-state.js';
import {
  createOutputSignal,
  createSerialShared,
  restoreSerialShared,
  Serial,
  COM1,
  COM2,
  type SerialShared,
} from './devices/serial.js';
import { restoreVcpuState, restoreVmState, saveVcpuState, saveVmState } from '../kvm/vcpu-state.js';
import type { MachineState } from './snapshot/machine-state.js';
import {
  bootFpu,
  bootMsrs,
  KVM_IDENTITY_MAP_ADDR,
  KVM_TSS_ADDR,
  pcGsiRoutes,
  vcpuCpuid,
  withBootLints,
  X2APIC_API_FLAGS,
  x2apicBaseMsr,
  type CpuidHook,
} from './kvm-setup.js';
import type { GuestMemory } from './memory.js';
import {
  DEBUG_REGS_OFFSET,
  VCPU_CTL,
  VCPU_CTL_BYTES,
  VCPU_STATE,
  type VcpuMessage,
  type VmEventKind,
} from './vcpu-protocol.js';
import type { VcpuAttach, VcpuWorkerInput } from './vcpu-worker.js';
import { createPortRegisters, portRegistersState, restorePortRegisters } from './devices/ports.js';
import { returnVcpuThread, takeVcpuThread } from './vcpu-thread-pool.js';

/** A fresh ArrayBuffer with a message's bytes (a struct view wants its own buffer). */
function copyBuffer(bytes: Uint8Array): ArrayBuffer {
  const b = new ArrayBuffer(bytes.length);
  new Uint8Array(b).set(bytes);
  return b;
}

/** The first end of a run (vcpu-protocol.ts): its kind, the exit code for `exit`, the vCPU id that saw it, and why. */
export interface VmEvent {
  kind: VmEventKind;
  value: number;
  vcpu: number;
  detail: string;
}

/** A vCPU's instruction and stack pointers and control registers, read between two KVM_RUNs. */
export interface VcpuControlRegs {
  rip: bigint;
  rsp: bigint;
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

/** All of a vCPU's general registers and its special registers (a failure dump's CPU state). */
export interface VcpuRegisters {
  gprs: Record<RegName, bigint>;
  segments: Record<SegmentName, KvmSegment>;
  gdt: KvmDtable;
  idt: KvmDtable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

function vcpuRegisters(regs: KvmRegs, sregs: KvmSregs): VcpuRegisters {
  return {
    gprs: regs.toObject(),
    segments: Object.fromEntries(SEGMENT_NAMES.map((n) => [n, sregs.segment(n)])) as Record<SegmentName, KvmSegment>,
    gdt: sregs.dtable('gdt'),
    idt: sregs.dtable('idt'),
    cr0: sregs.get('cr0'),
    cr2: sregs.get('cr2'),
    cr3: sregs.get('cr3'),
    cr4: sregs.get('cr4'),
    efer: sregs.get('efer'),
  };
}

export interface MachineOptions {
  memory: GuestMemory;
  vcpus: number;
  /** KVM vCPU ids (= APIC IDs), one per vCPU, the boot CPU first; default 0..vcpus-1. */
  vcpuIds?: readonly number[];
  /** Where the boot CPU starts: Linux's BootState, or a raw code image's entry (unused when restoring). */
  boot?: BootEntry;
  device?: string;
  /** Topology CPUID rewrite (src/vmm/cpuid/ plugs in here). */
  cpuid?: CpuidHook;
  /** APIC IDs above 254: KVM's x2APIC API and MSI extended destination IDs (kvm-setup.ts). */
  x2apic?: boolean;
  /**
   * The in-kernel PICs, I/O APIC, LAPICs and PIT (default true). Without them a HLT with
   * interrupts off leaves KVM_RUN (KVM_EXIT_HLT), which ends a raw code image's run.
   */
  irqchip?: boolean;
  /**
   * A saved machine (captureState(), from a snapshot whose RAM is already in `memory`): every
   * vCPU, the irqchips, PIT and clock, and the UARTs are set from it instead of the boot state.
   */
  restore?: MachineState;
}

/** KVM_CAP_X2APIC_API with X2APIC_API_FLAGS, before any vCPU exists; throws with the reason when KVM lacks it. */
function enableX2apicApi(vm: Vm): void {
  const supported = vm.checkExtension(KVM_CAP.KVM_CAP_X2APIC_API);
  if ((supported & X2APIC_API_FLAGS) !== X2APIC_API_FLAGS) {
    throw new Error(
      `KVM_CAP_X2APIC_API: this KVM offers flags 0x${supported.toString(16)}, APIC IDs above 254 need 0x${X2APIC_API_FLAGS.toString(16)}`,
    );
  }
  vm.enableCap(KVM_CAP.KVM_CAP_X2APIC_API, [BigInt(X2APIC_API_FLAGS)]);
}

interface VcpuThread {
  vcpu: Vcpu;
  worker?: Worker;
  /** The thread's run has ended (`done`, or the thread exited): it is no longer this VM's. */
  finished: boolean;
  ctl: Int32Array;
  exited: Promise<void>;
  /** Callers waiting for this vCPU's next control-register answer. */
  sregsWaiters: Waiter<VcpuControlRegs>[];
  /** Callers waiting for this vCPU's next full register answer. */
  regsWaiters: Waiter<VcpuRegisters>[];
  /** Callers waiting for this vCPU to say its debug registers are set. */
  debugWaiters: Waiter<string | null>[];
}

/** A hardware watchpoint's hit, as the vCPU that made the access reported it. */
export interface DebugHit {
  /** Index of the vCPU (0 = boot CPU). */
  vcpu: number;
  /** 1 for #DB. */
  exception: number;
  /** Guest RIP after the access (data watchpoints trap after the instruction). */
  pc: bigint;
  dr6: bigint;
}

/** The longest a watchpoint's handler holds the vCPU that hit it (well inside the guest's lockup and RCU stall timeouts). */
const DEBUG_HOLD_MS = 2_000;

interface Waiter<T> {
  resolve: (r: T) => void;
  reject: (e: Error) => void;
}

export class Machine {
  readonly kvm: Kvm;
  readonly vm: Vm;
  readonly serialShared: SerialShared[];
  /** The port bus's machine registers (CMOS index, PM1_EN), shared by every vCPU thread's bus. */
  readonly portRegisters: Int32Array;
  /** Main-thread handles: COM1 (console), COM2 (application channel). */
  readonly com1: Serial;
  readonly com2: Serial;
  readonly events = new SharedArrayBuffer(16);
  private readonly threads: VcpuThread[] = [];
  private stopping: Promise<void> | undefined;
  private eventListener: ((e: VmEvent) => void) | undefined;
  /** Called on a watchpoint hit while that vCPU holds; it is released when this settles (or after DEBUG_HOLD_MS). */
  onDebugHit: ((hit: DebugHit) => Promise<void> | void) | undefined;
  private errors: Error[] = [];
  stats = { runs: 0, ioExits: 0, mmioExits: 0, dropped: 0, ports: {} as Record<string, number> };
  /** Time the vCPU threads spent in their run loops (from the go signal to the loop's end), summed; complete once stop() has resolved. */
  runNanoseconds = 0;

  constructor(private readonly o: MachineOptions) {
    this.kvm = Kvm.open(o.device ?? '/dev/kvm');
    try {
      const vm = this.kvm.createVm();
      this.vm = vm;
      const irqchip = o.irqchip ?? true;
      vm.setTssAddr(KVM_TSS_ADDR);
      vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
      if (irqchip) {
        vm.createIrqchip();
        vm.setGsiRouting(pcGsiRoutes());
        vm.createPit2();
      }
      const vcpuIds = Array.from({ length: o.vcpus }, (_, i) => o.vcpuIds?.[i] ?? i);
      const maxVcpuId =
        this.kvm.checkExtension(KVM_CAP.KVM_CAP_MAX_VCPU_ID) || this.kvm.checkExtension(KVM_CAP.KVM_CAP_MAX_VCPUS);
      const highest = Math.max(...vcpuIds);
      if (highest >= maxVcpuId)
        throw new RangeError(`APIC ID ${highest} is beyond this KVM's largest vCPU id (${maxVcpuId - 1})`);
      if (o.x2apic) enableX2apicApi(vm);
      o.memory.regions.forEach((r, slot) => {
        this.vm.mapMemory({
          slot,
          guestPhysAddr: r.guestPhysAddr,
          memory: o.memory.memory,
          offset: r.offset,
          size: r.size,
        });
      });
      const supported = this.kvm.supportedCpuid();
      const features = {
        tscDeadline: this.kvm.checkExtension(KVM_CAP.KVM_CAP_TSC_DEADLINE_TIMER) > 0,
        msiExtDestId: o.x2apic === true,
      };
      for (let index = 0; index < o.vcpus; index++) {
        // KVM takes the vCPU id as the APIC ID: a topology's APIC IDs need not be contiguous
        const id = vcpuIds[index];
        const vcpu = this.vm.createVcpu(id);
        vcpu.setCpuid(vcpuCpuid(supported, id, o.cpuid, features));
        if (o.restore !== undefined) {
          const saved = o.restore.vcpus[index];
          if (saved === undefined)
            throw new RangeError(`the saved machine has ${o.restore.vcpus.length} vCPUs, not ${o.vcpus}`);
          restoreVcpuState(vcpu, saved);
        } else {
          vcpu.setMsrs(o.x2apic ? [...bootMsrs(), x2apicBaseMsr(index === 0)] : bootMsrs());
          vcpu.setFpu(bootFpu());
        }
        if (index === 0 && o.restore === undefined) {
          if (irqchip) vcpu.setLapic(withBootLints(vcpu.getLapic()));
          if (o.boot === undefined) throw new Error('a machine needs a boot entry unless it is restored');
          vcpu.setSregs(bootSregs(vcpu.getSregs(), o.boot));
          vcpu.setRegs(bootRegs(o.boot));
        }
        const ctl = new Int32Array(new SharedArrayBuffer(VCPU_CTL_BYTES));
        ctl[VCPU_CTL.go] = index === 0 ? 0 : 1; // APs wait for a SIPI in KVM anyway
        this.threads.push({
          vcpu,
          ctl,
          finished: false,
          exited: Promise.resolve(),
          sregsWaiters: [],
          regsWaiters: [],
          debugWaiters: [],
        });
      }
      if (o.restore !== undefined && irqchip) restoreVmState(vm, o.restore.vm);
      const pending = createOutputSignal();
      this.serialShared =
        o.restore === undefined
          ? [createSerialShared(COM1, pending), createSerialShared(COM2, pending)]
          : [restoreSerialShared(COM1, o.restore.com1, pending), restoreSerialShared(COM2, o.restore.com2, pending)];
      this.portRegisters =
        o.restore?.ports === undefined ? createPortRegisters() : restorePortRegisters(o.restore.ports);
      this.com1 = new Serial(this.serialShared[0], (level) => vm.irqLine(COM1.irq, level));
      this.com2 = new Serial(this.serialShared[1], (level) => vm.irqLine(COM2.irq, level));
    } catch (e) {
      this.kvm.close();
      throw e;
    }
  }

  /**
   * Starts one worker per vCPU; `onEvent` gets the first end of the run. The boot CPU enters
   * the guest only once every vCPU thread runs: a Node worker takes ~25 ms to start natively
   * and ~0.4 s under emulation, and a guest that sends INIT/SIPI to a CPU whose thread is not
   * there yet gives up on it after 10 s — and the late AP then runs a trampoline the kernel
   * has moved on from (seen: a triple fault with 252 vCPUs). Resolves when the guest starts.
   */
  async start(onEvent: (e: VmEvent) => void): Promise<void> {
    installKickHandler();
    this.eventListener = onEvent;
    await Promise.all(this.threads.map((t) => this.startThread(t)));
    const bsp = this.threads[0].ctl;
    Atomics.store(bsp, VCPU_CTL.go, 1);
    Atomics.notify(bsp, VCPU_CTL.go);
  }

  /**
   * Hands one vCPU to a thread (a warm one from vcpu-thread-pool.ts, or a new one); resolves
   * when it runs (or has ended before that). The thread goes back to the pool after its
   * `done`; one that fails or is terminated does not.
   */
  private startThread(t: VcpuThread): Promise<void> {
    const input: VcpuWorkerInput = {
      vcpuId: t.vcpu.id,
      vcpuFd: t.vcpu.fd,
      vmFd: this.vm.fd,
      mmapSize: t.vcpu.mmapSize,
      control: t.ctl.buffer as SharedArrayBuffer,
      events: this.events,
      serials: this.serialShared,
      ports: this.portRegisters.buffer as SharedArrayBuffer,
    };
    const w = takeVcpuThread();
    t.worker = w;
    const { port1, port2 } = new MessageChannel();
    let released!: () => void;
    const running = new Promise<void>((res) => {
      released = res;
    });
    let ended!: () => void;
    t.exited = new Promise<void>((res) => {
      ended = res;
    });
    const onError = (e: Error): void => {
      this.errors.push(e);
      this.eventListener?.({
        kind: 'error',
        value: 0,
        vcpu: t.vcpu.id,
        detail: `vCPU thread ${t.vcpu.id}: ${e.message}`,
      });
    };
    const finish = (reusable: boolean): void => {
      if (t.finished) return;
      t.finished = true;
      w.off('error', onError);
      w.off('exit', onExit);
      port1.close();
      released(); // a thread that ends before it runs releases start() too
      for (const waiter of [...t.sregsWaiters.splice(0), ...t.regsWaiters.splice(0), ...t.debugWaiters.splice(0)])
        waiter.reject(new Error(`vCPU ${t.vcpu.id} stopped before its registers were read`));
      if (reusable) returnVcpuThread(w);
      ended();
    };
    const onExit = (): void => finish(false);
    w.on('error', onError);
    w.on('exit', onExit);
    port1.on('message', (m: VcpuMessage) => {
      if (m.type === 'running') released();
      else if (m.type === 'sregs') {
        const regs: VcpuControlRegs = { rip: m.rip, rsp: m.rsp, cr0: m.cr0, cr3: m.cr3, cr4: m.cr4, efer: m.efer };
        for (const waiter of t.sregsWaiters.splice(0)) waiter.resolve(regs);
      } else if (m.type === 'regs') {
        const regs = vcpuRegisters(new KvmRegs(copyBuffer(m.regs)), new KvmSregs(copyBuffer(m.sregs)));
        for (const waiter of t.regsWaiters.splice(0)) waiter.resolve(regs);
      } else if (m.type === 'debug-set') {
        for (const waiter of t.debugWaiters.splice(0)) waiter.resolve(m.error);
      } else if (m.type === 'debug-hit') {
        this.debugHit(t, { vcpu: this.threads.indexOf(t), exception: m.exception, pc: m.pc, dr6: m.dr6 });
      } else if (m.type === 'event')
        this.eventListener?.({ kind: m.kind, value: m.value, vcpu: m.vcpu, detail: m.detail });
      else if (m.type === 'done') {
        this.stats.runs += m.runs;
        this.stats.ioExits += m.ioExits;
        this.stats.mmioExits += m.mmioExits;
        this.stats.dropped += m.dropped;
        this.runNanoseconds += m.nanoseconds;
        for (const [k, n] of Object.entries(m.ports)) this.stats.ports[k] = (this.stats.ports[k] ?? 0) + n;
        finish(true);
      }
    });
    const attach: VcpuAttach = { type: 'attach', input, port: port2 };
    w.postMessage(attach, [port2]);
    return running;
  }

  /** Resolves when the thread of the vCPU at `index` has ended its run (its fd stays open until stop()). */
  exited(index: number): Promise<void> {
    const t = this.threads[index];
    if (t === undefined)
      return Promise.reject(new RangeError(`no vCPU at index ${index} (${this.threads.length} vCPUs)`));
    return t.exited;
  }

  /**
   * The control registers (CR0, CR3, CR4, EFER) of the vCPU at `index` (0 = boot CPU), read by
   * its own thread between two KVM_RUNs: the request flag is set and the thread kicked until it
   * answers. Rejects when the vCPU stops first or does not answer within `timeoutMs`.
   */
  readSregs(index: number, timeoutMs = 2000): Promise<VcpuControlRegs> {
    return this.request(index, VCPU_CTL.sregsRequest, (t) => t.sregsWaiters, timeoutMs);
  }

  /**
   * All general and special registers of the vCPU at `index` (KVM_GET_REGS + KVM_GET_SREGS),
   * asked of its thread like readSregs. A vCPU whose thread has already left its run loop
   * (it ended the run: power-off, reset) is read here, on its still-open fd, while the VM is
   * not stopping. Rejects when neither works within `timeoutMs` (a stuck thread).
   */
  readRegs(index: number, timeoutMs = 2000): Promise<VcpuRegisters> {
    const t = this.threads[index];
    if (
      t !== undefined &&
      this.stopping === undefined &&
      t.worker &&
      Atomics.load(t.ctl, VCPU_CTL.state) === VCPU_STATE.done
    ) {
      try {
        return Promise.resolve(vcpuRegisters(t.vcpu.getRegs(), t.vcpu.getSregs()));
      } catch (e) {
        return Promise.reject(
          new Error(
            `vCPU ${t.vcpu.id}: its thread has ended and its registers are unreadable: ${(e as Error).message}`,
          ),
        );
      }
    }
    return this.request(index, VCPU_CTL.regsRequest, (th) => th.regsWaiters, timeoutMs);
  }

  /** Sets a request flag of one vCPU thread and kicks it until it answers (to `waiters`) or `timeoutMs` passes. */
  private request<T>(
    index: number,
    flag: number,
    waiters: (t: VcpuThread) => Waiter<T>[],
    timeoutMs: number,
  ): Promise<T> {
    const t = this.threads[index];
    if (t === undefined)
      return Promise.reject(new RangeError(`no vCPU at index ${index} (${this.threads.length} vCPUs)`));
    if (!t.worker || Atomics.load(t.ctl, VCPU_CTL.state) !== VCPU_STATE.running) {
      return Promise.reject(new Error(`vCPU ${t.vcpu.id} is not running`));
    }
    const list = waiters(t);
    return new Promise<T>((resolve, reject) => {
      const started = performance.now();
      const waiter: Waiter<T> = {
        resolve: (r: T): void => {
          clearInterval(kicker);
          resolve(r);
        },
        reject: (e: Error): void => {
          clearInterval(kicker);
          reject(e);
        },
      };
      const kicker = setInterval(() => {
        if (performance.now() - started > timeoutMs) {
          const i = list.indexOf(waiter);
          if (i >= 0) list.splice(i, 1);
          waiter.reject(new Error(`vCPU ${t.vcpu.id} did not answer a register read within ${timeoutMs} ms`));
        } else if (Atomics.load(t.ctl, VCPU_CTL.state) === VCPU_STATE.running) {
          kick(Atomics.load(t.ctl, VCPU_CTL.tid));
        }
      }, 2);
      list.push(waiter);
      Atomics.store(t.ctl, flag, 1);
      kick(Atomics.load(t.ctl, VCPU_CTL.tid));
    });
  }

  /**
   * Sets the same hardware watchpoints on every running vCPU (DR0-DR3 and DR7, see
   * watchpoints.ts; dr7 0 clears them), each by its own thread between two KVM_RUNs.
   * Rejects with KVM's reason when a vCPU refuses them or does not answer within `timeoutMs`.
   */
  async setWatchpoints(addresses: readonly bigint[], dr7: bigint, timeoutMs = 2000): Promise<void> {
    const running = this.threads
      .map((t, i) => [t, i] as const)
      .filter(([t]) => Boolean(t.worker) && Atomics.load(t.ctl, VCPU_CTL.state) === VCPU_STATE.running);
    const answers = running.map(([t, i]) => {
      const regs = new BigUint64Array(t.ctl.buffer, DEBUG_REGS_OFFSET, 5);
      for (let s = 0; s < 4; s++) regs[s] = addresses[s] ?? 0n;
      regs[4] = dr7;
      return this.request(i, VCPU_CTL.debugRequest, (th) => th.debugWaiters, timeoutMs);
    });
    const errors = (await Promise.all(answers)).filter((e): e is string => e !== null);
    if (errors.length > 0) throw new Error(errors[0]);
  }

  /** Hands a watchpoint hit to onDebugHit while the vCPU holds, then lets it go. */
  private debugHit(t: VcpuThread, hit: DebugHit): void {
    const release = (): void => {
      clearTimeout(timer);
      Atomics.store(t.ctl, VCPU_CTL.hold, 0);
      Atomics.notify(t.ctl, VCPU_CTL.hold);
    };
    const timer = setTimeout(release, DEBUG_HOLD_MS);
    Promise.resolve()
      .then(() => this.onDebugHit?.(hit))
      .catch(() => undefined)
      .finally(release);
  }

  /**
   * Holds every running vCPU between two KVM_RUNs (pause flag + kicks) and resolves once each
   * one says it is held, so guest memory stands still for a read; `resume()` lets them go.
   * Rejects (after resuming) when a vCPU does not stop within `timeoutMs`. Returns how long
   * the pause took to take hold, ms.
   */
  async pause(timeoutMs = 2000): Promise<number> {
    const started = performance.now();
    for (const t of this.threads) Atomics.store(t.ctl, VCPU_CTL.pause, 1);
    const running = (t: VcpuThread): boolean =>
      Boolean(t.worker) && Atomics.load(t.ctl, VCPU_CTL.state) === VCPU_STATE.running;
    for (;;) {
      const waiting = this.threads.filter((t) => running(t) && Atomics.load(t.ctl, VCPU_CTL.paused) === 0);
      if (waiting.length === 0) return performance.now() - started;
      if (performance.now() - started > timeoutMs) {
        this.resume();
        throw new Error(`vCPU ${waiting[0].vcpu.id} did not pause within ${timeoutMs} ms`);
      }
      for (const t of waiting) kick(Atomics.load(t.ctl, VCPU_CTL.tid));
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /**
   * The whole machine as data (a snapshot's state; guest RAM aside): every vCPU's KVM state,
   * the irqchips, PIT and clock, and the UARTs. Call between pause() and resume(): each vCPU
   * thread has completed its last exit and holds, so its fd is read here.
   */
  captureState(): MachineState {
    for (const t of this.threads) {
      const state = Atomics.load(t.ctl, VCPU_CTL.state);
      if (state === VCPU_STATE.running && Atomics.load(t.ctl, VCPU_CTL.paused) === 0) {
        throw new Error(`vCPU ${t.vcpu.id} is running: pause the machine before capturing its state`);
      }
    }
    return {
      vcpus: this.threads.map((t) => saveVcpuState(this.kvm, t.vcpu)),
      vm: saveVmState(this.vm),
      com1: this.com1.state(),
      com2: this.com2.state(),
      ports: portRegistersState(this.portRegisters),
    };
  }

  /**
   * Lets every vCPU held by pause() run again; with `clock` (captured during the pause), the
   * guest's kvmclock first goes back to it (KVM_SET_CLOCK): the pause is then time the guest
   * never saw pass.
   */
  resume(clock?: KvmClockData): void {
    if (clock !== undefined) this.vm.setClock({ clock: clock.clock });
    for (const t of this.threads) {
      Atomics.store(t.ctl, VCPU_CTL.pause, 0);
      Atomics.notify(t.ctl, VCPU_CTL.pause);
    }
  }

  /** Stops every vCPU thread (stop flag + kicks), waits for all to exit, closes every fd. Idempotent. */
  stop(graceMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      for (const t of this.threads) Atomics.store(t.ctl, VCPU_CTL.stop, 1);
      const kickAll = (): void => {
        for (const t of this.threads) {
          if (Atomics.load(t.ctl, VCPU_CTL.state) === VCPU_STATE.running) kick(Atomics.load(t.ctl, VCPU_CTL.tid));
        }
      };
      kickAll();
      const kicker = setInterval(kickAll, 5);
      let timer: NodeJS.Timeout | undefined;
      try {
        const all = Promise.all(this.threads.map((t) => t.exited));
        const timedOut = await Promise.race([
          all.then(() => false),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(true), graceMs);
          }),
        ]);
        if (timedOut) {
          await Promise.all(this.threads.filter((t) => !t.finished).map((t) => t.worker?.terminate()));
          await all;
        }
      } finally {
        clearInterval(kicker);
        clearTimeout(timer);
        this.kvm.close();
      }
    })();
    return this.stopping;
  }

  get workerErrors(): readonly Error[] {
    return this.errors;
  }
}
