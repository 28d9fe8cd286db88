// bootVm(): boot a Linux kernel in KVM and run it to its end -- the guest's exit code
// through the exit port, power-off, reboot, triple fault, kernel panic, or a wall-clock
// timeout -- with COM1 as the kernel console and COM2 as the application channel.
// Everything is validated before the VM exists (boot/), and the VM is torn down on every
// path (every vCPU thread joined, every fd closed; bootVm creates no temp files).
//
// Integration hooks (`platform`): `cpuid` rewrites each vCPU's CPUID entries (the topology
// leaves; src/vmm/cpuid/), `acpi` writes ACPI tables into guest RAM inside ACPI_REGION and
// returns the RSDP address for boot_params (src/vmm/acpi/). Both default to the declared
// topology's (or, without one, a single LLC of `vcpus` cores).

import { ACPI_REGION, loadBootFiles, reservedTop, writeBoot, type E820Entry, type InitrdInput } from './boot/index.js';
import { native } from '../kvm/native.js';
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
  /** bzImage or vmlinux: a path or the bytes. */
  kernel: string | Uint8Array;
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
  /** How many vCPUs the VM has. */
  readonly vcpus: number;
  /** Ends the run now (reason 'stopped'). */
  end(detail?: string): void;
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

/** `pci=off`: the machine has no PCI bus (devices are ISA ports and, later, virtio-mmio). */
export const DEFAULT_CMDLINE = 'console=ttyS0 reboot=t panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp';
export const PANIC_TEXT = 'Kernel panic - not syncing';
const CONSOLE_TAIL = 64 * 1024;

/**
 * Asks for transparent huge pages on guest RAM, as QEMU does: where THP is `madvise` (Debian's
 * default) guest RAM otherwise gets 4 KiB pages, and every one is a separate fault and KVM
 * mapping (measured in the test host: THP off costs ~2 s of a 5 s boot). Best effort.
 */
function adviseHugePages(memory: GuestMemory): void {
  const n = native();
  for (const r of memory.regions) {
    try { n.madvise(memory.buffer, r.offset, r.size, n.constants.MADV_HUGEPAGE); } catch { /* THP unavailable: 4 KiB pages */ }
  }
}

/**
 * Gives a finished VM's guest RAM back to the host at once (MADV_DONTNEED: the pages are
 * dropped, later reads see zeros) instead of when the garbage collector gets to the memory
 * object: a run of many VMs in one process otherwise holds the RAM of several at a time.
 * Call only when nothing reads the guest's memory any more. Best effort.
 */
export function releaseGuestMemory(memory: GuestMemory): void {
  const n = native();
  for (const r of memory.regions) {
    try { n.madvise(memory.buffer, r.offset, r.size, n.constants.MADV_DONTNEED); } catch { /* kept until GC */ }
  }
}

export async function bootVm(o: BootVmOptions): Promise<BootVmResult> {
  const t0 = performance.now();
  if (o.topology && o.vcpus !== undefined && o.vcpus !== o.topology.numCpus) {
    throw new RangeError(`vcpus ${o.vcpus} disagrees with topology ${o.topology} (${o.topology.numCpus} CPUs)`);
  }
  const wanted = o.vcpus ?? 1;
  if (!o.topology && (!Number.isInteger(wanted) || wanted < 1 || wanted > 255)) throw new RangeError(`vcpus must be 1..255, got ${wanted}`);
  // Without a declared topology: one LLC of `vcpus` cores, so ACPI and CPUID are always there.
  const topology = o.topology ?? new Topology(`1n1l${wanted}c1t`);
  const vcpus = topology.numCpus;
  const memoryMiB = o.memoryMiB ?? 256;
  const platform: PlatformHooks = { cpuid: cpuidHook(topology), acpi: topologyAcpi(topology), ...o.platform };
  // APIC IDs above 254: the in-kernel I/O APIC delivers only to 8-bit destinations, so legacy
  // IRQs (the UARTs) stay on CPU 0 (APIC ID 0) rather than follow the default affinity.
  const cmdline = `${o.cmdline ?? DEFAULT_CMDLINE}${topology.needsX2apic ? ' irqaffinity=0' : ''}`;
  const files = loadBootFiles({ kernel: o.kernel, initrd: o.initrd, cmdline });
  const memory = new GuestMemory(memoryMiB * 1024 * 1024, (b) => native().sharedBufferAddress(b));
  adviseHugePages(memory);
  const acpi = platform.acpi?.({ memory, vcpus, ram: memory.regions, region: ACPI_REGION });
  const reserveTop = o.sharedRegionMiB ? o.sharedRegionMiB * 1024 * 1024 : undefined;
  const boot = writeBoot(memory, files, { acpiRsdp: acpi?.rsdp, extraE820: acpi?.e820, reserveTop });
  const sharedRegion = reserveTop === undefined ? null : (({ addr, size }) => ({ guestPhysAddr: addr, size }))(reservedTop(memory, reserveTop));
  const tSetup = performance.now();

  let consoleTail = '';
  let app = '';
  let panicSeen = false;
  let firstConsoleMs: number | undefined;
  const markers: Record<string, number> = {};
  const pendingMarkers = new Set(o.markers ?? []);
  let scan = ''; // recent console text for marker/panic detection across chunk boundaries
  const decoder = new TextDecoder();
  const appDecoder = new TextDecoder();

  let finish!: (r: { reason: BootReason; value: number; detail: string }) => void;
  const finished = new Promise<{ reason: BootReason; value: number; detail: string }>((res) => { finish = res; });
  let settled = false;
  const settle = (reason: BootReason, value: number, detail: string): void => {
    if (settled) return;
    settled = true;
    finish({ reason, value, detail });
  };

  const vcpuIds = topology.cpus.map((c) => c.apicId);
  const machine = new Machine({ memory, vcpus, vcpuIds, boot, device: o.device, cpuid: platform.cpuid, x2apic: topology.needsX2apic });
  let outputWatch: { stop(): void } | undefined;
  let timeout: NodeJS.Timeout | undefined;
  let panicTimer: NodeJS.Timeout | undefined;
  let tVm = performance.now();
  const drain = (): void => {
    const c = machine.com1.drainOutput();
    if (c.length > 0) {
      firstConsoleMs ??= performance.now() - t0;
      o.onConsole?.(c);
      const text = decoder.decode(c, { stream: true });
      consoleTail = (consoleTail + text).slice(-CONSOLE_TAIL);
      scan = (scan + text).slice(-4096);
      for (const m of pendingMarkers) {
        if (scan.includes(m)) { markers[m] = performance.now() - t0; pendingMarkers.delete(m); }
      }
      if (!panicSeen && scan.includes(PANIC_TEXT)) {
        panicSeen = true;
        const line = scan.slice(scan.indexOf(PANIC_TEXT)).split('\n')[0].trim();
        panicTimer = setTimeout(() => settle('panic', 0, line), o.panicGraceMs ?? 2000);
      }
    }
    const a = machine.com2.drainOutput();
    if (a.length > 0) {
      o.onApp?.(a);
      app += appDecoder.decode(a, { stream: true });
    }
  };
  try {
    outputWatch = watchOutput(machine.serialShared[0].pending, drain);
    const onEvent = (e: VmEvent): void => {
      const panicLine = (): string => consoleTail.slice(consoleTail.indexOf(PANIC_TEXT)).split('\n')[0].trim();
      switch (e.kind) {
        case 'exit': settle('exit', e.value, e.detail); break;
        case 'poweroff': settle('poweroff', 0, e.detail); break;
        case 'reset': drain(); settle(panicSeen ? 'panic' : 'reboot', 0, panicSeen ? panicLine() : e.detail); break;
        case 'triple-fault': drain(); settle(panicSeen ? 'panic' : 'triple-fault', 0, panicSeen ? panicLine() : e.detail); break;
        case 'hlt': settle('poweroff', 0, e.detail); break;
        case 'error': settle('error', 0, e.detail); break;
      }
    };
    await machine.start(onEvent);
    o.onStart?.({
      console: (b) => machine.com1.inject(b),
      app: (b) => machine.com2.inject(b),
      memory,
      sharedRegion,
      readSregs: (index) => machine.readSregs(index),
      readRegs: (index, timeoutMs) => machine.readRegs(index, timeoutMs),
      pause: (timeoutMs) => machine.pause(timeoutMs),
      resume: () => machine.resume(),
      setWatchpoints: (watches) => {
        const { addresses, dr7 } = encodeWatchpoints(watches);
        return machine.setWatchpoints(addresses, dr7);
      },
      onDebugHit: (handler) => { machine.onDebugHit = handler; },
      serialState: () => ({ com1: machine.com1.state(), com2: machine.com2.state() }),
      vcpus,
      end: (detail = 'ended by the host') => settle('stopped', 0, detail),
    });
    tVm = performance.now();
    const timeoutMs = o.timeoutMs ?? 60_000;
    timeout = setTimeout(() => settle('timeout', 0, `no end of the run within ${timeoutMs} ms`), timeoutMs);
    const end = await finished;
    if (o.beforeStop !== undefined) {
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.resolve().then(() => o.beforeStop!({ reason: end.reason, detail: end.detail })).catch(() => undefined),
        new Promise<void>((res) => { bound = setTimeout(res, BEFORE_STOP_MS); }),
      ]);
      clearTimeout(bound);
    }
    await machine.stop();
    drain();
    consoleTail += decoder.decode();
    return {
      reason: end.reason,
      exitCode: end.reason === 'exit' ? end.value : null,
      detail: end.detail,
      consoleTail,
      app: app + appDecoder.decode(),
      stats: machine.stats,
      timings: { setupMs: tSetup - t0, vmCreateMs: tVm - tSetup, firstConsoleMs, markers, totalMs: performance.now() - t0 },
    };
  } finally {
    outputWatch?.stop();
    clearTimeout(timeout);
    clearTimeout(panicTimer);
    await machine.stop();
  }
}
