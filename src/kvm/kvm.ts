// A minimal owner tree over the KVM fds: Kvm (/dev/kvm) -> Vm -> Vcpu. Each object closes
// its children and then its own fd; close() is idempotent, and a constructor that fails
// part-way closes what it opened. Guest RAM is a SharedArrayBuffer -- typically the buffer
// of a shared WebAssembly.Memory -- whose backing-store address goes to
// KVM_SET_USER_MEMORY_REGION, so JS and WASM see guest memory zero-copy.

import { KVM_API_VERSION, KVM_GUESTDBG } from './constants.js';
import { KVM_IOCTL } from './ioctl.js';
import { isErrnoError, native, type NativeBinding } from './native.js';
import { KVM_GUEST_DEBUG } from './layout.js';
import { KvmRun } from './run.js';
import { KvmCpuid2, KvmRegs, KvmSregs, UserspaceMemoryRegion } from './structs.js';

/** Open flags for KVM device fds: read-write, close-on-exec. */
function rwCloexec(n: NativeBinding): number {
  return n.constants.O_RDWR | n.constants.O_CLOEXEC;
}

/** An fd that is closed exactly once. */
class OwnedFd {
  #fd: number;
  constructor(fd: number, private readonly owned = true) { this.#fd = fd; }
  get fd(): number {
    if (this.#fd < 0) throw new Error('KVM fd used after close()');
    return this.#fd;
  }
  get closed(): boolean { return this.#fd < 0; }
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
      if (!failed) { first = e; failed = true; }
    }
  }
  if (failed) throw first;
}

/** The KVM system fd (/dev/kvm). */
export class Kvm {
  readonly #fd: OwnedFd;
  readonly #vms = new Set<Vm>();
  #mmapSize = 0;

  private constructor(fd: number) { this.#fd = new OwnedFd(fd); }

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

  get fd(): number { return this.#fd.fd; }
  get closed(): boolean { return this.#fd.closed; }

  apiVersion(): number { return native().ioctl(this.fd, KVM_IOCTL.KVM_GET_API_VERSION); }

  /** KVM_CHECK_EXTENSION on the system fd: 0 when the capability is absent. */
  checkExtension(cap: number): number { return native().ioctl(this.fd, KVM_IOCTL.KVM_CHECK_EXTENSION, cap); }

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

  /** @internal use Kvm.createVm */
  constructor(fd: number, readonly vcpuMmapSize: number, private readonly onClose: (vm: Vm) => void = () => {}) {
    this.#fd = new OwnedFd(fd);
  }

  get fd(): number { return this.#fd.fd; }
  get closed(): boolean { return this.#fd.closed; }
  get slots(): ReadonlyMap<number, MemorySlot> { return this.#slots; }

  /** KVM_CHECK_EXTENSION on the VM fd (per-VM answers, e.g. KVM_CAP_MAX_VCPUS). */
  checkExtension(cap: number): number { return native().ioctl(this.fd, KVM_IOCTL.KVM_CHECK_EXTENSION, cap); }

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
      throw new RangeError(`memory slot ${o.slot}: offset ${offset}, size ${size} and guest address 0x${gpa.toString(16)} must be multiples of ${page}`);
    }
    if (size <= 0 || offset < 0 || offset + size > buffer.byteLength) {
      throw new RangeError(`memory slot ${o.slot}: [${offset}, ${offset + size}) is outside the ${buffer.byteLength}-byte memory`);
    }
    const userspaceAddr = n.sharedBufferAddress(buffer) + BigInt(offset);
    const flags = o.flags ?? 0;
    this.setUserMemoryRegion(new UserspaceMemoryRegion({ slot: o.slot, flags, guestPhysAddr: gpa, memorySize: BigInt(size), userspaceAddr }));
    const slot: MemorySlot = { slot: o.slot, guestPhysAddr: gpa, size, offset, buffer, userspaceAddr, flags };
    this.#slots.set(o.slot, slot);
    return slot;
  }

  /** KVM_CREATE_VCPU with this vCPU id (the APIC ID on x86). */
  createVcpu(id: number): Vcpu {
    const vcpu = new Vcpu(native().ioctl(this.fd, KVM_IOCTL.KVM_CREATE_VCPU, id), id, this.vcpuMmapSize, true, (v) => this.#vcpus.delete(v));
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
  constructor(fd: number, readonly id: number, readonly mmapSize: number, owned = true, private readonly onClose: (v: Vcpu) => void = () => {}) {
    this.#fd = new OwnedFd(fd, owned);
  }

  /**
   * A Vcpu over an fd owned elsewhere -- e.g. in the worker thread that runs it, while the
   * thread that created the VM keeps ownership. close() then only unmaps kvm_run.
   */
  static attach(fd: number, mmapSize: number, id = -1): Vcpu {
    return new Vcpu(fd, id, mmapSize, false);
  }

  get fd(): number { return this.#fd.fd; }
  get closed(): boolean { return this.#fd.closed; }

  /** The kvm_run page, mapped on first use (in the calling thread). */
  get run(): KvmRun {
    if (this.#run === undefined) {
      const n = native();
      const buf = n.mmap(this.fd, this.mmapSize, n.constants.PROT_READ | n.constants.PROT_WRITE, n.constants.MAP_SHARED, 0);
      this.#run = new KvmRun(buf);
    }
    return this.#run;
  }

  /** KVM_SET_CPUID2: the CPUID the guest sees (set before KVM_SET_SREGS and the first KVM_RUN). */
  setCpuid(cpuid: KvmCpuid2): void { native().ioctl(this.fd, KVM_IOCTL.KVM_SET_CPUID2, cpuid.bytes); }

  getRegs(into = new KvmRegs()): KvmRegs {
    native().ioctl(this.fd, KVM_IOCTL.KVM_GET_REGS, into.bytes);
    return into;
  }
  setRegs(regs: KvmRegs): void { native().ioctl(this.fd, KVM_IOCTL.KVM_SET_REGS, regs.bytes); }
  getSregs(into = new KvmSregs()): KvmSregs {
    native().ioctl(this.fd, KVM_IOCTL.KVM_GET_SREGS, into.bytes);
    return into;
  }
  setSregs(sregs: KvmSregs): void { native().ioctl(this.fd, KVM_IOCTL.KVM_SET_SREGS, sregs.bytes); }

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
    v.setUint32(KVM_GUEST_DEBUG.offsets.control, on ? KVM_GUESTDBG.KVM_GUESTDBG_ENABLE | KVM_GUESTDBG.KVM_GUESTDBG_USE_HW_BP : 0, true);
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
