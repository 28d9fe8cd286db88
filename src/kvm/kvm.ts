// A minimal owner tree over the KVM fds: Kvm (/dev/kvm) -> Vm -> Vcpu. Each object closes
// its children and then its own fd; close() is idempotent, and a constructor that fails
// part-way closes what it opened. Guest RAM is a SharedArrayBuffer -- typically the buffer
// of a shared WebAssembly.Memory -- whose backing-store address goes to
// KVM_SET_USER_MEMORY_REGION, so JS and WASM see guest memory zero-copy. Every KVM call
// is a method of the object that owns its fd; VM and vCPU state KVM can set it can also
// get (irqchip, PIT, clock, MSRs, FPU, XSAVE, XCRs, LAPIC, MP state, vCPU events, debug
// registers, TSC rate), as a snapshot needs; vcpu-state.ts composes them.

import { KVM_API_VERSION, KVM_CAP, KVM_GUESTDBG } from './constants.js';
import { KVM_IOCTL } from './ioctl.js';
import { isErrnoError, native, type NativeBinding } from './native.js';
import {
  KVM_CLOCK_DATA,
  KVM_DEBUGREGS,
  KVM_ENABLE_CAP,
  KVM_FPU,
  KVM_GUEST_DEBUG,
  KVM_IRQCHIP,
  KVM_LAPIC_STATE,
  KVM_MP_STATE,
  KVM_MSR_LIST,
  KVM_PIT_CONFIG,
  KVM_PIT_STATE2,
  KVM_VCPU_EVENTS,
  KVM_XCRS,
  KVM_XSAVE,
  type StructLayout,
} from './layout.js';
import { KvmRun } from './run.js';
import {
  decodeMsrs,
  encodeIrqRouting,
  encodeMsrs,
  KvmCpuid2,
  KvmRegs,
  KvmSregs,
  UserspaceMemoryRegion,
  type IrqchipRoute,
  type MsrEntry,
} from './structs.js';

/** Open flags for KVM device fds: read-write, close-on-exec. */
function rwCloexec(n: NativeBinding): number {
  return n.constants.O_RDWR | n.constants.O_CLOEXEC;
}

/** An fd that is closed exactly once. */
class OwnedFd {
  #fd: number;
  constructor(
    fd: number,
    private readonly owned = true,
  ) {
    this.#fd = fd;
  }
  get fd(): number {
    if (this.#fd < 0) throw new Error('KVM fd used after close()');
    return this.#fd;
  }
  get closed(): boolean {
    return this.#fd < 0;
  }
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    if (this.owned) native().close(fd);
  }
}

/** Closes every item, then throws the first error (so one failure does not leak the rest). */
function closeAll(items: Iterable<{ close(): void }>): void {
  let first: unknown;
  let failed = false;
  for (const it of [...items]) {
    try {
      it.close();
    } catch (e) {
      if (!failed) {
        first = e;
        failed = true;
      }
    }
  }
  if (failed) throw first;
}

/** KVM_GET_MSRS / KVM_SET_MSRS take at most this many entries (E2BIG beyond; MAX_IO_MSRS in x86.c). */
export const MAX_IO_MSRS = 256;

/** struct kvm_clock_data, as Vm.getClock reads it (flags: KVM_CLOCK_*). */
export interface KvmClockData {
  /** kvmclock, ns. */
  clock: bigint;
  flags: number;
  /** Host CLOCK_REALTIME, ns, when flags has KVM_CLOCK_REALTIME. */
  realtime: bigint;
  /** Host TSC, when flags has KVM_CLOCK_HOST_TSC. */
  hostTsc: bigint;
}

/** An ioctl that fills a whole struct `layout` (a KVM_GET_*); `prepare` sets its inputs first. */
function readStruct(fd: number, request: number, layout: StructLayout, prepare?: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(layout.size);
  prepare?.(new DataView(b.buffer));
  native().ioctl(fd, request, b);
  return b;
}

/** An ioctl that takes a whole struct `layout` (a KVM_SET_*), its size checked. */
function writeStruct(fd: number, request: number, layout: StructLayout, bytes: Uint8Array): void {
  if (bytes.length !== layout.size) throw new RangeError(`${layout.name} is ${layout.size} bytes, not ${bytes.length}`);
  native().ioctl(fd, request, bytes);
}

/** The KVM system fd (/dev/kvm). */
export class Kvm {
  readonly #fd: OwnedFd;
  readonly #vms = new Set<Vm>();
  #mmapSize = 0;

  private constructor(fd: number) {
    this.#fd = new OwnedFd(fd);
  }

  /** Opens /dev/kvm and checks KVM_GET_API_VERSION == 12. */
  static open(path = '/dev/kvm'): Kvm {
    const n = native();
    const kvm = new Kvm(n.open(path, rwCloexec(n)));
    try {
      const v = kvm.apiVersion();
      if (v !== KVM_API_VERSION) throw new Error(`${path}: KVM API version ${v}, expected ${KVM_API_VERSION}`);
      return kvm;
    } catch (e) {
      kvm.close();
      throw e;
    }
  }

  get fd(): number {
    return this.#fd.fd;
  }
  get closed(): boolean {
    return this.#fd.closed;
  }

  apiVersion(): number {
    return native().ioctl(this.fd, KVM_IOCTL.KVM_GET_API_VERSION);
  }

  /** KVM_CHECK_EXTENSION on the system fd: 0 when the capability is absent. */
  checkExtension(cap: number): number {
    return native().ioctl(this.fd, KVM_IOCTL.KVM_CHECK_EXTENSION, cap);
  }

  /** Size of the kvm_run mapping of each vCPU. */
  vcpuMmapSize(): number {
    if (this.#mmapSize === 0) this.#mmapSize = native().ioctl(this.fd, KVM_IOCTL.KVM_GET_VCPU_MMAP_SIZE);
    return this.#mmapSize;
  }

  /**
   * KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can expose, a starting point for
   * KVM_SET_CPUID2. (Hardware KVM refuses EFER.LME in KVM_SET_SREGS until the vCPU's CPUID
   * has the long-mode bit.) Grows the buffer while KVM answers E2BIG.
   */
  supportedCpuid(): KvmCpuid2 {
    for (let capacity = 64; ; capacity *= 2) {
      const c = new KvmCpuid2(capacity);
      try {
        native().ioctl(this.fd, KVM_IOCTL.KVM_GET_SUPPORTED_CPUID, c.bytes);
        return c;
      } catch (e) {
        if (!isErrnoError(e, 'E2BIG') || capacity >= 4096) throw e;
      }
    }
  }

  /**
   * KVM_GET_MSR_INDEX_LIST: the MSRs a snapshot saves (KVM's msrs_to_save and emulated
   * MSRs, filtered for this host). Two calls: the first, with room for none, fails E2BIG and
   * leaves the count in `nmsrs`; the second reads them. Some may still be refused for a
   * given vCPU (its CPUID lacks the feature): see Vcpu.getReadableMsrs.
   */
  msrIndexList(): number[] {
    let count = 0;
    for (let attempt = 0; attempt < 4; attempt++) {
      const b = new Uint8Array(KVM_MSR_LIST.size + 4 * count);
      const dv = new DataView(b.buffer);
      dv.setUint32(KVM_MSR_LIST.offsets.nmsrs, count, true);
      try {
        native().ioctl(this.fd, KVM_IOCTL.KVM_GET_MSR_INDEX_LIST, b);
      } catch (e) {
        if (!isErrnoError(e, 'E2BIG')) throw e;
        count = dv.getUint32(KVM_MSR_LIST.offsets.nmsrs, true);
        continue;
      }
      const n = dv.getUint32(KVM_MSR_LIST.offsets.nmsrs, true);
      return Array.from({ length: n }, (_, i) => dv.getUint32(KVM_MSR_LIST.offsets.indices + 4 * i, true));
    }
    throw new Error('KVM_GET_MSR_INDEX_LIST kept growing');
  }

  /** KVM_CREATE_VM (machine type 0: the default x86 VM). */
  createVm(type = 0): Vm {
    const mmapSize = this.vcpuMmapSize();
    const vm = new Vm(native().ioctl(this.fd, KVM_IOCTL.KVM_CREATE_VM, type), mmapSize, (v) => this.#vms.delete(v));
    this.#vms.add(vm);
    return vm;
  }

  /** Closes every VM (and its vCPUs) created here, then /dev/kvm. Idempotent. */
  close(): void {
    try {
      closeAll(this.#vms);
    } finally {
      this.#fd.close();
    }
  }
}

/** A guest memory slot backed by a (Shared)ArrayBuffer; kept here so the buffer outlives the VM. */
export interface MemorySlot {
  slot: number;
  guestPhysAddr: bigint;
  size: number;
  /** Offset of guest physical `guestPhysAddr` inside `buffer`. */
  offset: number;
  buffer: SharedArrayBuffer | ArrayBuffer;
  userspaceAddr: bigint;
  flags: number;
}

export interface MapMemoryOptions {
  slot: number;
  guestPhysAddr: bigint | number;
  /** The RAM: a shared WebAssembly.Memory or its SharedArrayBuffer (an ArrayBuffer works too). */
  memory: WebAssembly.Memory | SharedArrayBuffer | ArrayBuffer;
  /** Byte offset of guest physical `guestPhysAddr` in the memory (page-aligned). Default 0. */
  offset?: number;
  /** Bytes to map (page multiple). Default: the rest of the memory. */
  size?: number;
  /** KVM_MEM_* flags. */
  flags?: number;
}

/** A VM fd. */
export class Vm {
  readonly #fd: OwnedFd;
  readonly #vcpus = new Set<Vcpu>();
  readonly #slots = new Map<number, MemorySlot>();

  readonly #irqScratch = new Uint32Array(2);
  #xsaveSize = 0;

  /** @internal use Kvm.createVm or Vm.attach */
  constructor(
    fd: number,
    readonly vcpuMmapSize: number,
    private readonly onClose: (vm: Vm) => void = () => {},
    owned = true,
  ) {
    this.#fd = new OwnedFd(fd, owned);
  }

  /**
   * A Vm over an fd owned elsewhere -- e.g. in a vCPU thread, which raises IRQ lines on the
   * VM the main thread created. close() then leaves the fd open.
   */
  static attach(fd: number): Vm {
    return new Vm(fd, 0, () => {}, false);
  }

  get fd(): number {
    return this.#fd.fd;
  }
  get closed(): boolean {
    return this.#fd.closed;
  }
  get slots(): ReadonlyMap<number, MemorySlot> {
    return this.#slots;
  }

  /** KVM_CHECK_EXTENSION on the VM fd (per-VM answers, e.g. KVM_CAP_MAX_VCPUS). */
  checkExtension(cap: number): number {
    return native().ioctl(this.fd, KVM_IOCTL.KVM_CHECK_EXTENSION, cap);
  }

  /** KVM_ENABLE_CAP on the VM: `cap` (KVM_CAP_*) with up to 4 argument words. */
  enableCap(cap: number, args: readonly bigint[] = [], flags = 0): void {
    if (args.length > 4) throw new RangeError(`kvm_enable_cap has 4 argument words, not ${args.length}`);
    const b = new Uint8Array(KVM_ENABLE_CAP.size);
    const dv = new DataView(b.buffer);
    dv.setUint32(KVM_ENABLE_CAP.offsets.cap, cap, true);
    dv.setUint32(KVM_ENABLE_CAP.offsets.flags, flags, true);
    args.forEach((a, i) => dv.setBigUint64(KVM_ENABLE_CAP.offsets.args + 8 * i, BigInt.asUintN(64, a), true));
    native().ioctl(this.fd, KVM_IOCTL.KVM_ENABLE_CAP, b);
  }

  /** KVM_SET_TSS_ADDR: the 3 guest-physical pages KVM uses for the real-mode TSS (Intel). No get: KVM keeps it write-only. */
  setTssAddr(addr: number): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_TSS_ADDR, addr);
  }

  /** KVM_SET_IDENTITY_MAP_ADDR: the EPT identity-map page (before the first vCPU). No get: KVM keeps it write-only. */
  setIdentityMapAddr(addr: number): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_IDENTITY_MAP_ADDR, new BigUint64Array([BigInt(addr)]));
  }

  /** KVM_CREATE_IRQCHIP: the in-kernel PICs, I/O APIC and (per vCPU) local APICs. */
  createIrqchip(): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_CREATE_IRQCHIP);
  }

  /** KVM_GET_IRQCHIP: struct kvm_irqchip of one chip (0: master PIC, 1: slave PIC, 2: I/O APIC). */
  getIrqchip(chipId: number): Uint8Array {
    return readStruct(this.fd, KVM_IOCTL.KVM_GET_IRQCHIP, KVM_IRQCHIP, (v) =>
      v.setUint32(KVM_IRQCHIP.offsets.chip_id, chipId, true),
    );
  }

  /** KVM_SET_IRQCHIP: a struct kvm_irqchip as getIrqchip returned it (its chip_id says which chip). */
  setIrqchip(state: Uint8Array): void {
    writeStruct(this.fd, KVM_IOCTL.KVM_SET_IRQCHIP, KVM_IRQCHIP, state);
  }

  /** KVM_SET_GSI_ROUTING: the whole GSI table (after KVM_CREATE_IRQCHIP). No get: the caller keeps its routes. */
  setGsiRouting(routes: readonly IrqchipRoute[]): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_GSI_ROUTING, encodeIrqRouting(routes));
  }

  /** KVM_CREATE_PIT2 with kvm_pit_config.flags (KVM_PIT_SPEAKER_DUMMY or 0). */
  createPit2(flags = 0): void {
    const b = new Uint8Array(KVM_PIT_CONFIG.size);
    new DataView(b.buffer).setUint32(KVM_PIT_CONFIG.offsets.flags, flags, true);
    native().ioctl(this.fd, KVM_IOCTL.KVM_CREATE_PIT2, b);
  }

  /** KVM_GET_PIT2: struct kvm_pit_state2 (the three channels and flags). */
  getPit2(): Uint8Array {
    return readStruct(this.fd, KVM_IOCTL.KVM_GET_PIT2, KVM_PIT_STATE2);
  }

  /** KVM_SET_PIT2: a struct kvm_pit_state2 as getPit2 returned it. */
  setPit2(state: Uint8Array): void {
    writeStruct(this.fd, KVM_IOCTL.KVM_SET_PIT2, KVM_PIT_STATE2, state);
  }

  /**
   * KVM_GET_CLOCK: the kvmclock's current value (ns) and, as the flags say, the host's
   * CLOCK_REALTIME (KVM_CLOCK_REALTIME) and TSC (KVM_CLOCK_HOST_TSC) read at the same instant.
   */
  getClock(): KvmClockData {
    const b = readStruct(this.fd, KVM_IOCTL.KVM_GET_CLOCK, KVM_CLOCK_DATA);
    const v = new DataView(b.buffer);
    const o = KVM_CLOCK_DATA.offsets;
    return {
      clock: v.getBigUint64(o.clock, true),
      flags: v.getUint32(o.flags, true),
      realtime: v.getBigUint64(o.realtime, true),
      hostTsc: v.getBigUint64(o.host_tsc, true),
    };
  }

  /**
   * KVM_SET_CLOCK: the kvmclock continues from `clock`. With KVM_CLOCK_REALTIME in `flags`
   * (Linux 5.16+; see KVM_CHECK_EXTENSION(KVM_CAP_ADJUST_CLOCK)) KVM first adds the
   * CLOCK_REALTIME time elapsed since `realtime`. Kernels before 5.16 refuse any flag.
   */
  setClock(c: { clock: bigint; flags?: number; realtime?: bigint }): void {
    const b = new Uint8Array(KVM_CLOCK_DATA.size);
    const v = new DataView(b.buffer);
    const o = KVM_CLOCK_DATA.offsets;
    v.setBigUint64(o.clock, BigInt.asUintN(64, c.clock), true);
    v.setUint32(o.flags, c.flags ?? 0, true);
    v.setBigUint64(o.realtime, BigInt.asUintN(64, c.realtime ?? 0n), true);
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_CLOCK, b);
  }

  /**
   * Bytes of a vCPU's XSAVE state: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM (at least
   * 4096; more once a dynamic feature such as AMX is permitted by arch_prctl), or 4096
   * (struct kvm_xsave) when the capability is absent.
   */
  xsaveSize(): number {
    if (this.#xsaveSize === 0) this.#xsaveSize = Math.max(KVM_XSAVE.size, this.checkExtension(KVM_CAP.KVM_CAP_XSAVE2));
    return this.#xsaveSize;
  }

  /** KVM_IRQ_LINE on the in-kernel irqchip (GSI = ISA IRQ for 0..15). Thread-safe in KVM; one Vm object per thread. */
  irqLine(gsi: number, level: 0 | 1): void {
    this.#irqScratch[0] = gsi;
    this.#irqScratch[1] = level;
    native().ioctl(this.fd, KVM_IOCTL.KVM_IRQ_LINE, this.#irqScratch);
  }

  /** Raw KVM_SET_USER_MEMORY_REGION. Prefer mapMemory, which keeps the backing buffer alive. */
  setUserMemoryRegion(region: UserspaceMemoryRegion): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_USER_MEMORY_REGION, region.bytes);
  }

  /** Makes `size` bytes of `memory` from `offset` guest physical memory at `guestPhysAddr`. */
  mapMemory(o: MapMemoryOptions): MemorySlot {
    const n = native();
    const page = n.constants.PAGE_SIZE;
    const buffer = o.memory instanceof WebAssembly.Memory ? o.memory.buffer : o.memory;
    const offset = o.offset ?? 0;
    const size = o.size ?? buffer.byteLength - offset;
    const gpa = BigInt(o.guestPhysAddr);
    if (offset % page !== 0 || size % page !== 0 || gpa % BigInt(page) !== 0n) {
      throw new RangeError(
        `memory slot ${o.slot}: offset ${offset}, size ${size} and guest address 0x${gpa.toString(16)} must be multiples of ${page}`,
      );
    }
    if (size <= 0 || offset < 0 || offset + size > buffer.byteLength) {
      throw new RangeError(
        `memory slot ${o.slot}: [${offset}, ${offset + size}) is outside the ${buffer.byteLength}-byte memory`,
      );
    }
    const userspaceAddr = n.sharedBufferAddress(buffer) + BigInt(offset);
    const flags = o.flags ?? 0;
    this.setUserMemoryRegion(
      new UserspaceMemoryRegion({ slot: o.slot, flags, guestPhysAddr: gpa, memorySize: BigInt(size), userspaceAddr }),
    );
    const slot: MemorySlot = { slot: o.slot, guestPhysAddr: gpa, size, offset, buffer, userspaceAddr, flags };
    this.#slots.set(o.slot, slot);
    return slot;
  }

  /** KVM_CREATE_VCPU with this vCPU id (the APIC ID on x86). */
  createVcpu(id: number): Vcpu {
    const xsaveSize = this.xsaveSize();
    const vcpu = new Vcpu(
      native().ioctl(this.fd, KVM_IOCTL.KVM_CREATE_VCPU, id),
      id,
      this.vcpuMmapSize,
      true,
      (v) => this.#vcpus.delete(v),
      xsaveSize,
    );
    this.#vcpus.add(vcpu);
    return vcpu;
  }

  /** Closes the vCPUs, then the VM fd. The memory slots' buffers are released with it. Idempotent. */
  close(): void {
    if (this.#fd.closed) return;
    try {
      closeAll(this.#vcpus);
    } finally {
      this.#fd.close();
      this.#slots.clear();
      this.onClose(this);
    }
  }
}

/** A vCPU fd and its kvm_run mapping. */
export class Vcpu {
  readonly #fd: OwnedFd;
  #run: KvmRun | undefined;

  /** @internal use Vm.createVcpu or Vcpu.attach */
  constructor(
    fd: number,
    readonly id: number,
    readonly mmapSize: number,
    owned = true,
    private readonly onClose: (v: Vcpu) => void = () => {},
    /** Bytes of this vCPU's XSAVE state: its VM's Vm.xsaveSize(). */
    readonly xsaveSize: number = KVM_XSAVE.size,
  ) {
    this.#fd = new OwnedFd(fd, owned);
  }

  /**
   * A Vcpu over an fd owned elsewhere -- e.g. in the worker thread that runs it, while the
   * thread that created the VM keeps ownership. close() then only unmaps kvm_run.
   * `xsaveSize` is the VM's Vm.xsaveSize() (4096 unless a dynamic XSAVE feature is on).
   */
  static attach(fd: number, mmapSize: number, id = -1, xsaveSize: number = KVM_XSAVE.size): Vcpu {
    return new Vcpu(fd, id, mmapSize, false, () => {}, xsaveSize);
  }

  get fd(): number {
    return this.#fd.fd;
  }
  get closed(): boolean {
    return this.#fd.closed;
  }

  /** The kvm_run page, mapped on first use (in the calling thread). */
  get run(): KvmRun {
    if (this.#run === undefined) {
      const n = native();
      const buf = n.mmap(
        this.fd,
        this.mmapSize,
        n.constants.PROT_READ | n.constants.PROT_WRITE,
        n.constants.MAP_SHARED,
        0,
      );
      this.#run = new KvmRun(buf);
    }
    return this.#run;
  }

  /** KVM_SET_CPUID2: the CPUID the guest sees (set before KVM_SET_SREGS and the first KVM_RUN). */
  setCpuid(cpuid: KvmCpuid2): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_CPUID2, cpuid.bytes);
  }

  /** KVM_GET_CPUID2: the CPUID this vCPU was given. Grows the buffer while KVM answers E2BIG. */
  getCpuid(): KvmCpuid2 {
    for (let capacity = 64; ; capacity *= 2) {
      const c = new KvmCpuid2(capacity);
      try {
        native().ioctl(this.fd, KVM_IOCTL.KVM_GET_CPUID2, c.bytes);
        return c;
      } catch (e) {
        if (!isErrnoError(e, 'E2BIG') || capacity >= 4096) throw e;
      }
    }
  }

  getRegs(into = new KvmRegs()): KvmRegs {
    native().ioctl(this.fd, KVM_IOCTL.KVM_GET_REGS, into.bytes);
    return into;
  }
  setRegs(regs: KvmRegs): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_REGS, regs.bytes);
  }
  getSregs(into = new KvmSregs()): KvmSregs {
    native().ioctl(this.fd, KVM_IOCTL.KVM_GET_SREGS, into.bytes);
    return into;
  }
  setSregs(sregs: KvmSregs): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_SREGS, sregs.bytes);
  }

  /** KVM_GET_MSRS: the values of these MSRs (throws when KVM reads fewer). */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const b = encodeMsrs(indices.map((i): MsrEntry => [i, 0n]));
    const n = native().ioctl(this.fd, KVM_IOCTL.KVM_GET_MSRS, b);
    if (n !== indices.length)
      throw new Error(`KVM_GET_MSRS read ${n} of ${indices.length} MSRs; refused: 0x${indices[n].toString(16)}`);
    return decodeMsrs(b, n);
  }

  /** KVM_SET_MSRS: throws, naming the first refused MSR, when KVM sets fewer than all. */
  setMsrs(msrs: readonly MsrEntry[]): void {
    const n = native().ioctl(this.fd, KVM_IOCTL.KVM_SET_MSRS, encodeMsrs(msrs));
    if (n !== msrs.length) {
      throw new Error(`KVM_SET_MSRS set ${n} of ${msrs.length} MSRs; refused: 0x${msrs[n][0].toString(16)}`);
    }
  }

  /**
   * KVM_GET_MSRS for as many of `indices` as KVM lets this vCPU read. KVM_GET_MSRS stops at
   * the first MSR it refuses (one the vCPU's CPUID does not give it, or the host lacks) and
   * returns how many it read; that one is put in `refused` and the read resumes after it.
   * At most 256 (KVM's MAX_IO_MSRS) go in one call.
   */
  getReadableMsrs(indices: readonly number[]): { msrs: MsrEntry[]; refused: number[] } {
    const msrs: MsrEntry[] = [];
    const refused: number[] = [];
    let at = 0;
    while (at < indices.length) {
      const batch = indices.slice(at, at + MAX_IO_MSRS);
      const b = encodeMsrs(batch.map((i): MsrEntry => [i, 0n]));
      const n = native().ioctl(this.fd, KVM_IOCTL.KVM_GET_MSRS, b);
      msrs.push(...decodeMsrs(b, n));
      if (n < batch.length) refused.push(batch[n]);
      at += Math.min(n + 1, batch.length);
    }
    return { msrs, refused };
  }

  /**
   * KVM_GET_FPU: struct kvm_fpu (x87 and XMM registers; offsets in layout.ts). KVM does not
   * fill in `mxcsr` here (it reads as 0; KVM_SET_FPU does set it): KVM_GET_XSAVE carries it.
   */
  getFpu(): Uint8Array {
    return readStruct(this.fd, KVM_IOCTL.KVM_GET_FPU, KVM_FPU);
  }

  /** KVM_SET_FPU with a struct kvm_fpu. */
  setFpu(fpu: Uint8Array): void {
    writeStruct(this.fd, KVM_IOCTL.KVM_SET_FPU, KVM_FPU, fpu);
  }

  /** KVM_GET_LAPIC: the in-kernel local APIC's register page (struct kvm_lapic_state). */
  getLapic(): Uint8Array {
    return readStruct(this.fd, KVM_IOCTL.KVM_GET_LAPIC, KVM_LAPIC_STATE);
  }

  /** KVM_SET_LAPIC with a struct kvm_lapic_state. */
  setLapic(lapic: Uint8Array): void {
    writeStruct(this.fd, KVM_IOCTL.KVM_SET_LAPIC, KVM_LAPIC_STATE, lapic);
  }

  /**
   * The vCPU's XSAVE area (x87, SSE, AVX, ... and the XSAVE header; supersedes KVM_GET_FPU),
   * `xsaveSize` bytes: KVM_GET_XSAVE2 when that is more than struct kvm_xsave's 4096, else
   * KVM_GET_XSAVE. The offsets of the components follow CPUID leaf 0xD of the host.
   */
  getXsave(): Uint8Array {
    const b = new Uint8Array(this.xsaveSize);
    const request = this.xsaveSize > KVM_XSAVE.size ? KVM_IOCTL.KVM_GET_XSAVE2 : KVM_IOCTL.KVM_GET_XSAVE;
    native().ioctl(this.fd, request, b);
    return b;
  }

  /**
   * KVM_SET_XSAVE with an area as getXsave returned it. KVM reads `xsaveSize` bytes, so the
   * length must be exactly that. Needs the vCPU's CPUID set first (KVM refuses components the
   * guest's CPUID does not allow).
   */
  setXsave(xsave: Uint8Array): void {
    if (xsave.length !== this.xsaveSize)
      throw new RangeError(`this vCPU's XSAVE state is ${this.xsaveSize} bytes, not ${xsave.length}`);
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_XSAVE, xsave);
  }

  /** KVM_GET_XCRS: struct kvm_xcrs (XCR0, the enabled XSAVE features). */
  getXcrs(): Uint8Array {
    return readStruct(this.fd, KVM_IOCTL.KVM_GET_XCRS, KVM_XCRS);
  }

  /** KVM_SET_XCRS with a struct kvm_xcrs (checked against the vCPU's CPUID). */
  setXcrs(xcrs: Uint8Array): void {
    writeStruct(this.fd, KVM_IOCTL.KVM_SET_XCRS, KVM_XCRS, xcrs);
  }

  /** KVM_GET_MP_STATE: one of KVM_MP_STATES (RUNNABLE, HALTED, INIT_RECEIVED, ...). */
  getMpState(): number {
    return new DataView(readStruct(this.fd, KVM_IOCTL.KVM_GET_MP_STATE, KVM_MP_STATE).buffer).getUint32(
      KVM_MP_STATE.offsets.mp_state,
      true,
    );
  }

  /** KVM_SET_MP_STATE (with the in-kernel irqchip; without it only RUNNABLE). */
  setMpState(state: number): void {
    const b = new Uint8Array(KVM_MP_STATE.size);
    new DataView(b.buffer).setUint32(KVM_MP_STATE.offsets.mp_state, state, true);
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_MP_STATE, b);
  }

  /**
   * KVM_GET_VCPU_EVENTS: struct kvm_vcpu_events (pending or injected exception, interrupt
   * and NMI, interrupt shadow, SIPI vector, SMM). KVM sets in `flags` only some of the
   * KVM_VCPUEVENT_VALID_* bits for what it filled in; see vcpu-state.ts for what to set back.
   */
  getVcpuEvents(): Uint8Array {
    return readStruct(this.fd, KVM_IOCTL.KVM_GET_VCPU_EVENTS, KVM_VCPU_EVENTS);
  }

  /** KVM_SET_VCPU_EVENTS: applies the fields `flags` marks valid (and always the unflagged ones). */
  setVcpuEvents(events: Uint8Array): void {
    writeStruct(this.fd, KVM_IOCTL.KVM_SET_VCPU_EVENTS, KVM_VCPU_EVENTS, events);
  }

  /** KVM_GET_DEBUGREGS: struct kvm_debugregs (the guest's own DR0-DR3, DR6, DR7). */
  getDebugregs(): Uint8Array {
    return readStruct(this.fd, KVM_IOCTL.KVM_GET_DEBUGREGS, KVM_DEBUGREGS);
  }

  /** KVM_SET_DEBUGREGS with a struct kvm_debugregs (its flags must be 0). */
  setDebugregs(debugregs: Uint8Array): void {
    writeStruct(this.fd, KVM_IOCTL.KVM_SET_DEBUGREGS, KVM_DEBUGREGS, debugregs);
  }

  /** KVM_GET_TSC_KHZ: the guest TSC's rate in kHz (KVM_CAP_GET_TSC_KHZ). */
  getTscKhz(): number {
    return native().ioctl(this.fd, KVM_IOCTL.KVM_GET_TSC_KHZ);
  }

  /**
   * KVM_SET_TSC_KHZ: the guest TSC's rate. Without hardware TSC scaling KVM accepts only the
   * host's rate (within 250 ppm) or a faster one it catches up to.
   */
  setTscKhz(khz: number): void {
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_TSC_KHZ, khz);
  }

  /**
   * KVM_SET_GUEST_DEBUG with hardware breakpoints: DR0-DR3 are guest linear addresses, DR7
   * their enables, kinds and lengths (see vmm/watchpoints.ts); a hit exits with
   * KVM_EXIT_DEBUG. `dr7` 0 turns guest debugging off. Between two KVM_RUNs of this vCPU.
   */
  setHardwareBreakpoints(addresses: readonly bigint[], dr7: bigint): void {
    if (addresses.length > 4) throw new RangeError(`x86 has 4 debug address registers, not ${addresses.length}`);
    const b = new Uint8Array(KVM_GUEST_DEBUG.size);
    const v = new DataView(b.buffer);
    const on = dr7 !== 0n;
    v.setUint32(
      KVM_GUEST_DEBUG.offsets.control,
      on ? KVM_GUESTDBG.KVM_GUESTDBG_ENABLE | KVM_GUESTDBG.KVM_GUESTDBG_USE_HW_BP : 0,
      true,
    );
    const regs = KVM_GUEST_DEBUG.offsets['arch.debugreg'];
    addresses.forEach((a, i) => v.setBigUint64(regs + 8 * i, BigInt.asUintN(64, a), true));
    v.setBigUint64(regs + 8 * 7, dr7, true);
    native().ioctl(this.fd, KVM_IOCTL.KVM_SET_GUEST_DEBUG, b);
  }

  /**
   * KVM_RUN: blocks until the next exit to userspace, then read `run.exitReason`. Throws an
   * ErrnoError with code 'EINTR' when a signal interrupted it (see kick.ts).
   */
  runOnce(): number {
    const run = this.run;
    native().ioctlInterruptible(this.fd, KVM_IOCTL.KVM_RUN);
    return run.exitReason;
  }

  /**
   * KVM_RUN with immediate_exit set: KVM finishes the exit last returned (an OUT's RIP moves
   * past it, an IN's or MMIO read's data reaches its register) without entering the guest,
   * then returns EINTR. api.rst: that part of an I/O or MMIO exit lives in no state userspace
   * can read, so do this before saving a vCPU's state.
   */
  completePendingExit(): void {
    const run = this.run;
    run.immediateExit = 1;
    try {
      native().ioctlInterruptible(this.fd, KVM_IOCTL.KVM_RUN);
    } catch (e) {
      if (!isErrnoError(e, 'EINTR') && !isErrnoError(e, 'EAGAIN')) throw e;
    } finally {
      run.immediateExit = 0;
    }
  }

  /** Unmaps kvm_run, then closes the fd (if owned). Idempotent. */
  close(): void {
    if (this.#fd.closed) return;
    try {
      if (this.#run !== undefined) native().munmap(this.#run.buffer);
      this.#run = undefined;
    } finally {
      this.#fd.close();
      this.onClose(this);
    }
  }
}
