// bootVm(): boot a Linux kernel in KVM and run it to its end -- the guest's exit code
// through the exit port, power-off, reboot, triple fault, kernel panic, or a wall-clock
// timeout -- with COM1 as the kernel console and COM2 as the application channel.
// Everything is validated before the VM exists (boot/), and the VM is torn down on every
// path (every vCPU thread joined, every fd closed; bootVm creates no temp files).
//
// bootVm reads as four steps (bottom of this file): planBoot (options checked and completed,
// kernel and initrd read), prepareGuest (guest RAM, ACPI tables, boot_params), runGuest (vCPUs
// started, onStart, the first end wins: the guest's -- endOfEvent -- the timeout, the panic
// grace, LiveVm.end()) and collect (the result). What the console says (markers, the panic
// message) is read by ConsoleScan (console-scan.ts), which knows nothing of the VM.
//
// Integration hooks (`platform`): `cpuid` rewrites each vCPU's CPUID entries (the topology
// leaves; src/vmm/cpuid/), `acpi` writes ACPI tables into guest RAM inside ACPI_REGION and
// returns the RSDP address for boot_params (src/vmm/acpi/). Both default to the declared
// topology's (or, without one, a single LLC of `vcpus` cores).

import {
  ACPI_REGION,
  loadBootFiles,
  reservedTop,
  writeBoot,
  type BootFiles,
  type BootState,
  type E820Entry,
  type InitrdInput,
} from './boot/index.js';
import { ConsoleScan } from './console-scan.js';
import { native } from '../kvm/native.js';
import { prestartVcpuThreads } from './vcpu-thread-pool.js';
import { Machine, type DebugHit, type VcpuControlRegs, type VcpuRegisters, type VmEvent } from './vm.js';
import { encodeWatchpoints, type HardwareWatch } from './watchpoints.js';
import { watchOutput, type SerialState } from './devices/serial.js';
export type { DebugHit, VcpuControlRegs, VcpuRegisters } from './vm.js';
export type { HardwareWatch } from './watchpoints.js';
import { GuestMemory, type RamRegion } from './memory.js';
import type { CpuidHook } from './kvm-setup.js';
import { buildAcpiTables } from './acpi/index.js';
import { cpuidHook } from './cpuid/index.js';
import { Topology } from './topology/index.js';
import { copyRamFile, ramFileBytes, refreshRamFile, writeRamFile } from './snapshot/ram-file.js';
import { releaseKeptGuestMemory, takeKeptGuestMemory } from './memory-pool.js';
import { encodeState, type StateValue } from './snapshot/state-file.js';
import { RAM_FILE, STATE_FILE, type SnapshotKey, type SnapshotStore, type StoredSnapshot } from './snapshot/store.js';
import type { MachineState } from './snapshot/machine-state.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

export { BootImageError, loadBootFiles, ACPI_REGION } from './boot/index.js';
export { GuestMemory, GUEST_BASE, ramLayout } from './memory.js';
export { EXIT_PORT } from './devices/ports.js';
export type { CpuidHook } from './kvm-setup.js';

export interface AcpiContext {
  memory: GuestMemory;
  vcpus: number;
  ram: readonly RamRegion[];
  /** The reserved guest physical range the tables may use. */
  region: { start: number; end: number };
}

export interface PlatformHooks {
  cpuid?: CpuidHook;
  /** Writes the ACPI tables; returns the RSDP address and e820 entries to add (E820_ACPI ranges). */
  acpi?: (ctx: AcpiContext) => { rsdp: number; e820?: E820Entry[] };
}

export type BootReason = 'exit' | 'poweroff' | 'reboot' | 'panic' | 'triple-fault' | 'timeout' | 'stopped' | 'error';

export interface BootVmOptions {
  /** bzImage or vmlinux: a path or the bytes (not read when restoring: `restore`). */
  kernel: string | Uint8Array;
  /**
   * Start from a snapshot (LiveVm.saveSnapshot) instead of booting: its RAM copied into this
   * VM's memory, every vCPU, the irqchips, PIT, clock and UARTs as they were saved. The
   * topology and memory size must be the saved machine's (the snapshot's key says so); kernel,
   * initrd and command line are not used.
   */
  restore?: StoredSnapshot;
  /** A path, bytes, or several (placed one after another: concatenated cpio archives); files are read straight into guest RAM. */
  initrd?: InitrdInput;
  /** Kernel command line; DEFAULT_CMDLINE when absent. */
  cmdline?: string;
  memoryMiB?: number;
  vcpus?: number;
  /** The declared CPU topology: sets the vCPU count, their APIC IDs, CPUID and ACPI tables. */
  topology?: Topology;
  timeoutMs?: number;
  /** Console (COM1) bytes as they arrive. */
  onConsole?: (chunk: Uint8Array) => void;
  /** Application channel (COM2) bytes as they arrive. */
  onApp?: (chunk: Uint8Array) => void;
  /** Strings to time on the console: timings.markers[s] = ms from bootVm() start to first sight. */
  markers?: string[];
  platform?: PlatformHooks;
  device?: string;
  /** Called once the vCPUs run, with the live VM: guest input, memory, registers, end(). */
  onStart?: (vm: LiveVm) => void;
  /** After a panic message, how long to wait for the guest's own reboot before stopping it. Default 2000. */
  panicGraceMs?: number;
  /**
   * MiB at the top of guest RAM below 3 GiB that the guest kernel leaves alone (e820
   * reserved): a region host and guest share (the agent maps it through /dev/mem). Its
   * guest physical range is LiveVm.sharedRegion. A multiple of 2.
   */
  sharedRegionMiB?: number;
  /**
   * Called once when the run has ended, before the vCPU threads are stopped: LiveVm.readRegs
   * still reaches every vCPU (a failure dump takes the registers here). At most
   * BEFORE_STOP_MS is waited for it; its errors are ignored.
   */
  beforeStop?: (end: { reason: BootReason; detail: string }) => Promise<void> | void;
}

/** The longest bootVm waits for `beforeStop`. */
export const BEFORE_STOP_MS = 30_000;

/** The running VM, handed to `onStart`: guest input, guest RAM, vCPU registers, and an end. */
export interface LiveVm {
  /** Bytes for the console (COM1) receiver; returns how many fit (the rest is dropped). */
  console(bytes: Uint8Array): number;
  /** Bytes for the application channel (COM2). */
  app(bytes: Uint8Array): number;
  /** Guest RAM (shared WebAssembly.Memory; guest physical 0 at `memory.regions[0].offset`: GUEST_BASE, or up to 2 MiB above it so it sits on a host 2 MiB boundary). */
  readonly memory: GuestMemory;
  /** The reserved shared region (sharedRegionMiB), as a guest physical range; null without one. */
  readonly sharedRegion: { guestPhysAddr: number; size: number } | null;
  /** Control registers of the vCPU at `index` (0 = boot CPU), read between two KVM_RUNs. */
  readSregs(index: number): Promise<VcpuControlRegs>;
  /** All registers of the vCPU at `index` (KVM_GET_REGS + KVM_GET_SREGS); rejects after `timeoutMs` (default 2000) when its thread is stuck. */
  readRegs(index: number, timeoutMs?: number): Promise<VcpuRegisters>;
  /** Holds every vCPU between two KVM_RUNs until resume() (guest memory stands still); resolves with the ms it took. */
  pause(timeoutMs?: number): Promise<number>;
  resume(): void;
  /** Sets hardware watchpoints (slots 0-3, null: unused; [] clears them) on every vCPU; a hit goes to the onDebugHit handler. */
  setWatchpoints(watches: readonly (HardwareWatch | null)[]): Promise<void>;
  /** The handler of watchpoint hits: the vCPU that hit holds until it settles (at most 10 s). */
  onDebugHit(handler: ((hit: DebugHit) => Promise<void> | void) | undefined): void;
  /** The UARTs as plain data (Serial.state(): registers, unread and undrained bytes), taken while the guest runs or is paused. */
  serialState(): { com1: SerialState; com2: SerialState };
  /**
   * Saves the machine into `store` under `key` (unless a snapshot of that key is there
   * already: saved false): takes the store's lock, pauses every vCPU, writes guest RAM and the
   * machine state (with the caller's `extra`, read back as the stored state's `extra`), and
   * lets the guest run on. `freePages`, called while the vCPUs are paused, may name guest-physical
   * [start, bytes] ranges whose contents the guest never reads before writing (its allocator's
   * free pages): they are not saved, and a restored guest finds them zero. Resolves with what it cost.
   */
  saveSnapshot(
    store: SnapshotStore,
    key: SnapshotKey,
    extra?: StateValue,
    freePages?: () => readonly (readonly [number, number])[],
  ): Promise<SnapshotSave>;
  /** How many vCPUs the VM has. */
  readonly vcpus: number;
  /** Ends the run now (reason 'stopped'). */
  end(detail?: string): void;
}

/** What LiveVm.saveSnapshot did: whether it wrote the entry, the guest's pause, and the RAM file's size and data. */
export interface SnapshotSave {
  saved: boolean;
  pauseMs: number;
  ramBytes: number;
  dataBytes: number;
  /** Bytes left out as the guest's free pages (of blocks that were not all zero). */
  freeBytes: number;
}

/** A snapshot's state file: the machine, the RAM size it was taken with and the shared region. */
interface SnapshotState {
  machine: MachineState;
  memoryBytes: number;
  sharedRegion: LiveVm['sharedRegion'];
  /** The caller's own data (LiveVm.saveSnapshot's `extra`). */
  extra: StateValue;
  /** Where the RAM file holds data: [file offset, length] (the rest is zeros). */
  ramExtents: [number, number][];
  /** The guest's free pages at the save, [file offset, length]: holes whose contents do not matter (absent in older states). */
  ramFree?: [number, number][];
}

export interface BootVmResult {
  reason: BootReason;
  /** The guest's exit code (reason 'exit'), else null. */
  exitCode: number | null;
  detail: string;
  consoleTail: string;
  app: string;
  /** Exits to userspace over all vCPUs: KVM_RUN calls, port I/O (by port), MMIO; console bytes dropped. */
  stats: { runs: number; ioExits: number; mmioExits: number; dropped: number; ports: Record<string, number> };
  timings: {
    /** Validation and guest RAM set-up, ms. */
    setupMs: number;
    /** VM + vCPU creation and worker start, ms. */
    vmCreateMs: number;
    firstConsoleMs?: number;
    markers: Record<string, number>;
    totalMs: number;
  };
}

/** The ACPI hook for a topology: MADT, FADT+DSDT, SRAT and SLIT written into ACPI_REGION. */
export function topologyAcpi(topology: Topology): NonNullable<PlatformHooks['acpi']> {
  return (ctx) => {
    const tables = buildAcpiTables({ topology, memoryMap: ctx.ram });
    for (const blob of tables.blobs) {
      if (blob.address < ctx.region.start || blob.address + blob.bytes.length > ctx.region.end) {
        throw new RangeError(`ACPI table ${blob.name} at 0x${blob.address.toString(16)} falls outside the ACPI region`);
      }
      ctx.memory.write(blob.address, blob.bytes);
    }
    return { rsdp: tables.rsdpAddress };
  };
}

/**
 * `pci=off`: the machine has no PCI bus (devices are ISA ports and, later, virtio-mmio).
 * `rodata=off`: the kernel leaves its text and read-only data writable, so it skips marking
 * them read-only and the W+X page-table walk after (CONFIG_DEBUG_WX): 0.35 s of a 2.3 s guest
 * boot to /init in the test host (initcall_debug and dmesg, tiny-1llc). Memory protection
 * guards a production kernel against exploits; a test guest that lives for one cell has no
 * use for it, and scheduling does not depend on it (BPF programs and trampolines still get
 * their own read-only, executable pages).
 */
export const DEFAULT_CMDLINE = 'console=ttyS0 reboot=t panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp rodata=off';
export { PANIC_TEXT } from './console-scan.js';

/**
 * Asks for transparent huge pages on guest RAM, as QEMU does: where THP is `madvise` (Debian's
 * default) guest RAM otherwise gets 4 KiB pages, and every one is a separate fault and KVM
 * mapping (measured in the test host: THP off costs ~2 s of a 5 s boot). Best effort.
 */
function adviseHugePages(memory: GuestMemory): void {
  const n = native();
  for (const r of memory.regions) {
    try {
      n.madvise(memory.buffer, r.offset, r.size, n.constants.MADV_HUGEPAGE);
    } catch {
      /* THP unavailable: 4 KiB pages */
    }
  }
}

/** New guest RAM of `ramBytes`, huge pages asked for; the RAM this thread kept is given back first (none kept beside it). */
export function freshGuestMemory(ramBytes: number): GuestMemory {
  releaseKeptGuestMemory();
  const memory = new GuestMemory(ramBytes, (b) => native().sharedBufferAddress(b));
  adviseHugePages(memory);
  return memory;
}

export { keepGuestMemory, releaseGuestMemory, releaseKeptGuestMemory } from './memory-pool.js';

// ---- bootVm, step by step: plan -> prepare the guest -> run -> collect ----

/** How a run ended: its reason, the guest's exit code (reason 'exit'; else 0) and a detail line. */
interface RunEnd {
  reason: BootReason;
  value: number;
  detail: string;
}

/** What bootVm runs: the options checked and completed, the kernel and initrd read. */
interface BootPlan {
  topology: Topology;
  vcpus: number;
  memoryMiB: number;
  platform: PlatformHooks;
  /** Undefined when restoring a snapshot. */
  files: BootFiles | undefined;
  /** Bytes kept from the guest kernel at the top of RAM below 3 GiB (sharedRegionMiB), if any. */
  reserveTop: number | undefined;
}

/**
 * Plan: checks the options and fills in what they leave out (the topology, the platform
 * hooks, the command line), and reads the kernel and initrd. Throws before any VM or guest
 * RAM exists.
 */
function planBoot(o: BootVmOptions): BootPlan {
  if (o.topology && o.vcpus !== undefined && o.vcpus !== o.topology.numCpus) {
    throw new RangeError(`vcpus ${o.vcpus} disagrees with topology ${o.topology} (${o.topology.numCpus} CPUs)`);
  }
  const wanted = o.vcpus ?? 1;
  if (!o.topology && (!Number.isInteger(wanted) || wanted < 1 || wanted > 255))
    throw new RangeError(`vcpus must be 1..255, got ${wanted}`);
  // Without a declared topology: one LLC of `vcpus` cores, so ACPI and CPUID are always there.
  const topology = o.topology ?? new Topology(`1n1l${wanted}c1t`);
  const platform: PlatformHooks = { cpuid: cpuidHook(topology), acpi: topologyAcpi(topology), ...o.platform };
  // APIC IDs above 254: the in-kernel I/O APIC delivers only to 8-bit destinations, so legacy
  // IRQs (the UARTs) stay on CPU 0 (APIC ID 0) rather than follow the default affinity.
  const cmdline = `${o.cmdline ?? DEFAULT_CMDLINE}${topology.needsX2apic ? ' irqaffinity=0' : ''}`;
  const files = o.restore === undefined ? loadBootFiles({ kernel: o.kernel, initrd: o.initrd, cmdline }) : undefined;
  return {
    topology,
    vcpus: topology.numCpus,
    memoryMiB: o.memoryMiB ?? 256,
    platform,
    files,
    reserveTop: o.sharedRegionMiB ? o.sharedRegionMiB * 1024 * 1024 : undefined,
  };
}

/** The guest before its first instruction: RAM holding the kernel, initrd, boot_params and ACPI tables. */
interface PreparedGuest {
  memory: GuestMemory;
  /** Undefined when restoring a snapshot (the vCPUs' saved state replaces the boot state). */
  boot: BootState | undefined;
  /** The saved machine, when restoring. */
  restore?: MachineState;
  sharedRegion: LiveVm['sharedRegion'];
}

/** Prepare the guest: guest RAM (huge pages asked for), the ACPI tables, then the kernel, initrd and boot_params. */
function prepareGuest(plan: BootPlan, restore: StoredSnapshot | undefined): PreparedGuest {
  if (restore !== undefined) return restoreGuest(plan, restore);
  if (plan.files === undefined) throw new Error('no kernel to boot');
  const memory = freshGuestMemory(plan.memoryMiB * 1024 * 1024);
  const acpi = plan.platform.acpi?.({ memory, vcpus: plan.vcpus, ram: memory.regions, region: ACPI_REGION });
  const boot = writeBoot(memory, plan.files, {
    acpiRsdp: acpi?.rsdp,
    extraE820: acpi?.e820,
    reserveTop: plan.reserveTop,
  });
  const sharedRegion =
    plan.reserveTop === undefined
      ? null
      : (({ addr, size }) => ({ guestPhysAddr: addr, size }))(reservedTop(memory, plan.reserveTop));
  return { memory, boot, sharedRegion };
}

/** Prepare a restored guest: guest RAM mapped from the snapshot's RAM file, the machine state read from its state file. */
function restoreGuest(plan: BootPlan, snapshot: StoredSnapshot): PreparedGuest {
  const st = snapshot.state as unknown as SnapshotState;
  const memoryBytes = plan.memoryMiB * 1024 * 1024;
  if (st.memoryBytes !== memoryBytes) {
    throw new RangeError(
      `the snapshot ${snapshot.id} was taken with ${st.memoryBytes} bytes of RAM, this VM has ${memoryBytes}`,
    );
  }
  if (st.machine.vcpus.length !== plan.vcpus) {
    throw new RangeError(`the snapshot ${snapshot.id} has ${st.machine.vcpus.length} vCPUs, this VM ${plan.vcpus}`);
  }
  if (!Array.isArray(st.ramExtents))
    throw new RangeError(`the snapshot ${snapshot.id} does not say where its RAM file holds data`);
  // the RAM this thread kept from its last cell, made equal to the snapshot's page by page
  // (src/vmm/memory-pool.ts: why), else fresh memory with huge pages asked for first, as a
  // booted guest's RAM has them (src/vmm/snapshot/ram-file.ts: why a copy)
  const kept = takeKeptGuestMemory(memoryBytes);
  const memory = kept ?? freshGuestMemory(memoryBytes);
  if (kept === undefined) copyRamFile(snapshot.ramPath, memory, st.ramExtents);
  else refreshRamFile(snapshot.ramPath, memory, st.ramExtents, Array.isArray(st.ramFree) ? st.ramFree : []);
  return { memory, boot: undefined, restore: st.machine, sharedRegion: st.sharedRegion };
}

/** Pauses the machine, writes its RAM and state into `staging` (a snapshot store's), and lets it run on. */
async function writeSnapshot(
  machine: Machine,
  guest: PreparedGuest,
  staging: string,
  extra: StateValue,
  freePages: () => readonly (readonly [number, number])[],
): Promise<Omit<SnapshotSave, 'saved'>> {
  const pauseStart = performance.now();
  await machine.pause();
  let captured: MachineState | undefined;
  try {
    captured = machine.captureState();
    const ram = writeRamFile(join(staging, RAM_FILE), guest.memory, freePages());
    const state: SnapshotState = {
      machine: captured,
      memoryBytes: guest.memory.ramBytes,
      sharedRegion: guest.sharedRegion,
      extra,
      ramExtents: ram.extents,
      ramFree: ram.freeExtents,
    };
    writeFileSync(join(staging, STATE_FILE), encodeState(state as unknown as StateValue));
    return {
      pauseMs: performance.now() - pauseStart,
      ramBytes: ram.bytes,
      dataBytes: ram.dataBytes,
      freeBytes: ram.freeBytes,
    };
  } finally {
    // the guest's clock goes on from the capture, as a restored copy's does: the save's pause
    // is not time the guest saw pass (a scheduler attached at the save sees no stall in it)
    machine.resume(captured?.vm.clock);
  }
}

/** The end of the run: the first of the guest's own end, a timer (the timeout, the panic grace) or LiveVm.end() wins. */
class RunEnding {
  readonly ended: Promise<RunEnd>;
  private resolve!: (end: RunEnd) => void;
  private settled = false;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor() {
    this.ended = new Promise<RunEnd>((res) => {
      this.resolve = res;
    });
  }

  /** Ends the run, unless it has already ended. */
  end(end: RunEnd): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(end);
  }

  /** Ends the run in `ms`, unless it has ended by then. */
  endAfter(ms: number, end: RunEnd): void {
    this.timers.push(setTimeout(() => this.end(end), ms));
  }

  clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
  }
}

/**
 * The guest's serial output as it is drained: COM1 to onConsole and through ConsoleScan (the
 * first byte's time, the markers' times, the panic message), COM2 to onApp and kept as text.
 */
class GuestOutput {
  readonly console: ConsoleScan;
  firstConsoleMs: number | undefined;
  readonly markers: Record<string, number> = {};
  private readonly appDecoder = new TextDecoder();
  private app = '';

  constructor(
    private readonly machine: Machine,
    private readonly t0: number,
    private readonly o: Pick<BootVmOptions, 'markers' | 'onConsole' | 'onApp'>,
    private readonly onPanic: (line: string) => void,
  ) {
    this.console = new ConsoleScan(o.markers);
  }

  drain(): void {
    const c = this.machine.com1.drainOutput();
    if (c.length > 0) {
      this.firstConsoleMs ??= performance.now() - this.t0;
      this.o.onConsole?.(c);
      for (const e of this.console.feed(c)) {
        if (e.kind === 'marker') this.markers[e.marker] = performance.now() - this.t0;
        else this.onPanic(e.line);
      }
    }
    const a = this.machine.com2.drainOutput();
    if (a.length > 0) {
      this.o.onApp?.(a);
      this.app += this.appDecoder.decode(a, { stream: true });
    }
  }

  /** The whole text of both channels once nothing more comes. */
  finish(): { consoleTail: string; app: string } {
    const consoleTail = this.console.finish();
    return { consoleTail, app: this.app + this.appDecoder.decode() };
  }
}

/**
 * How a VM event ends the run. A reset or a triple fault after the panic message is the
 * panic's own reboot (panic=-1, reboot=t): the run ends as 'panic' with the message's line,
 * the console drained first so that line is whole.
 */
function endOfEvent(e: VmEvent, output: GuestOutput): RunEnd {
  const panicOr = (reason: BootReason): RunEnd => {
    output.drain();
    return output.console.panicSeen
      ? { reason: 'panic', value: 0, detail: output.console.panicLine() }
      : { reason, value: 0, detail: e.detail };
  };
  switch (e.kind) {
    case 'exit':
      return { reason: 'exit', value: e.value, detail: e.detail };
    case 'poweroff':
      return { reason: 'poweroff', value: 0, detail: e.detail };
    case 'reset':
      return panicOr('reboot');
    case 'triple-fault':
      return panicOr('triple-fault');
    case 'hlt':
      return { reason: 'poweroff', value: 0, detail: e.detail };
    case 'error':
      return { reason: 'error', value: 0, detail: e.detail };
  }
}

/** The running VM as onStart sees it. */
function liveVm(machine: Machine, guest: PreparedGuest, vcpus: number, ending: RunEnding): LiveVm {
  return {
    console: (b) => machine.com1.inject(b),
    app: (b) => machine.com2.inject(b),
    memory: guest.memory,
    sharedRegion: guest.sharedRegion,
    readSregs: (index) => machine.readSregs(index),
    readRegs: (index, timeoutMs) => machine.readRegs(index, timeoutMs),
    pause: (timeoutMs) => machine.pause(timeoutMs),
    resume: () => machine.resume(),
    setWatchpoints: (watches) => {
      const { addresses, dr7 } = encodeWatchpoints(watches);
      return machine.setWatchpoints(addresses, dr7);
    },
    onDebugHit: (handler) => {
      machine.onDebugHit = handler;
    },
    serialState: () => ({ com1: machine.com1.state(), com2: machine.com2.state() }),
    saveSnapshot: async (store, key, extra = null, freePages = () => []) => {
      let cost: Omit<SnapshotSave, 'saved'> = {
        pauseMs: 0,
        ramBytes: ramFileBytes(guest.memory),
        dataBytes: 0,
        freeBytes: 0,
      };
      const saved = await store.save(key, async (staging) => {
        cost = await writeSnapshot(machine, guest, staging, extra, freePages);
      });
      return { saved, ...cost };
    },
    vcpus,
    end: (detail = 'ended by the host') => ending.end({ reason: 'stopped', value: 0, detail }),
  };
}

/** o.beforeStop, waited for at most BEFORE_STOP_MS; its errors are ignored. */
async function beforeStop(o: BootVmOptions, end: RunEnd): Promise<void> {
  if (o.beforeStop === undefined) return;
  const hook = o.beforeStop;
  let bound: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.resolve()
      .then(() => hook({ reason: end.reason, detail: end.detail }))
      .catch(() => undefined),
    new Promise<void>((res) => {
      bound = setTimeout(res, BEFORE_STOP_MS);
    }),
  ]);
  clearTimeout(bound);
}

/**
 * Run: starts the vCPUs, hands the live VM to onStart, and waits for the end (the guest's,
 * the timeout, the panic grace, LiveVm.end()); then beforeStop, and every vCPU stopped.
 * Returns the end and when the VM was up (after onStart).
 */
async function runGuest(
  machine: Machine,
  guest: PreparedGuest,
  output: GuestOutput,
  ending: RunEnding,
  o: BootVmOptions,
  vcpus: number,
): Promise<{ end: RunEnd; tVm: number }> {
  await machine.start((e) => ending.end(endOfEvent(e, output)));
  o.onStart?.(liveVm(machine, guest, vcpus, ending));
  const tVm = performance.now();
  const timeoutMs = o.timeoutMs ?? 60_000;
  ending.endAfter(timeoutMs, { reason: 'timeout', value: 0, detail: `no end of the run within ${timeoutMs} ms` });
  const end = await ending.ended;
  await beforeStop(o, end);
  await machine.stop();
  return { end, tVm };
}

/** Collect: the output the stopped vCPUs left, and the result. */
function collect(
  end: RunEnd,
  output: GuestOutput,
  machine: Machine,
  t: { t0: number; tSetup: number; tVm: number },
): BootVmResult {
  output.drain();
  const { consoleTail, app } = output.finish();
  return {
    reason: end.reason,
    exitCode: end.reason === 'exit' ? end.value : null,
    detail: end.detail,
    consoleTail,
    app,
    stats: machine.stats,
    timings: {
      setupMs: t.tSetup - t.t0,
      vmCreateMs: t.tVm - t.tSetup,
      firstConsoleMs: output.firstConsoleMs,
      markers: output.markers,
      totalMs: performance.now() - t.t0,
    },
  };
}

/** Boots the kernel and runs it to its end (see the header); rejects when the options are wrong, the VM cannot be set up, or onStart throws. */
export async function bootVm(o: BootVmOptions): Promise<BootVmResult> {
  const t0 = performance.now();
  const plan = planBoot(o);
  // the vCPU threads start while the kernel, initramfs and guest RAM are prepared
  prestartVcpuThreads(plan.vcpus);
  const guest = prepareGuest(plan, o.restore);
  const tSetup = performance.now();

  const { topology, vcpus, platform } = plan;
  const machine = new Machine({
    memory: guest.memory,
    vcpus,
    vcpuIds: topology.cpus.map((c) => c.apicId),
    boot: guest.boot,
    restore: guest.restore,
    device: o.device,
    cpuid: platform.cpuid,
    x2apic: topology.needsX2apic,
  });
  const ending = new RunEnding();
  const output = new GuestOutput(machine, t0, o, (line) =>
    ending.endAfter(o.panicGraceMs ?? 2000, { reason: 'panic', value: 0, detail: line }),
  );
  let outputWatch: { stop(): void } | undefined;
  try {
    outputWatch = watchOutput(machine.serialShared[0].pending, () => output.drain());
    const { end, tVm } = await runGuest(machine, guest, output, ending, o, vcpus);
    return collect(end, output, machine, { t0, tSetup, tVm });
  } finally {
    outputWatch?.stop();
    ending.clearTimers();
    await machine.stop();
  }
}
