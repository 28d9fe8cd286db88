// ioctl request numbers: the _IOC encoding of <asm-generic/ioctl.h> (x86: 8-bit nr, 8-bit
// type, 14-bit size, 2-bit direction) and the KVM requests of <linux/kvm.h>, each computed
// from its struct's size in layout.ts. test/kvm-unit/layout.test.ts compares every number
// here with the C macro of the same name.

import {
  KVM_CLOCK_DATA,
  KVM_CPUID2,
  KVM_DEBUGREGS,
  KVM_ENABLE_CAP,
  KVM_FPU,
  KVM_GUEST_DEBUG,
  KVM_IOEVENTFD,
  KVM_IRQ_LEVEL,
  KVM_IRQ_ROUTING,
  KVM_IRQFD,
  KVM_IRQCHIP,
  KVM_LAPIC_STATE,
  KVM_MP_STATE,
  KVM_MSR_LIST,
  KVM_MSRS,
  KVM_PIT_CONFIG,
  KVM_PIT_STATE2,
  KVM_REGS,
  KVM_SIGNAL_MASK,
  KVM_SREGS,
  KVM_USERSPACE_MEMORY_REGION,
  KVM_VCPU_EVENTS,
  KVM_XCRS,
  KVM_XSAVE,
} from './layout.js';

export const IOC_NONE = 0;
export const IOC_WRITE = 1;
export const IOC_READ = 2;

/** _IOC(dir, type, nr, size) as an unsigned 32-bit number. */
export function ioc(dir: number, type: number, nr: number, size: number): number {
  if (size < 0 || size >= 1 << 14) throw new RangeError(`ioctl size ${size} does not fit in 14 bits`);
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
export const io = (type: number, nr: number): number => ioc(IOC_NONE, type, nr, 0);
export const ior = (type: number, nr: number, size: number): number => ioc(IOC_READ, type, nr, size);
export const iow = (type: number, nr: number, size: number): number => ioc(IOC_WRITE, type, nr, size);
export const iowr = (type: number, nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, type, nr, size);

export const KVMIO = 0xae;

/** KVM ioctls by their C macro name. */
export const KVM_IOCTL = {
  // system (/dev/kvm)
  KVM_GET_API_VERSION: io(KVMIO, 0x00),
  KVM_CREATE_VM: io(KVMIO, 0x01),
  KVM_GET_MSR_INDEX_LIST: iowr(KVMIO, 0x02, KVM_MSR_LIST.size),
  KVM_CHECK_EXTENSION: io(KVMIO, 0x03),
  KVM_GET_VCPU_MMAP_SIZE: io(KVMIO, 0x04),
  KVM_GET_SUPPORTED_CPUID: iowr(KVMIO, 0x05, KVM_CPUID2.size),
  // VM
  KVM_CREATE_VCPU: io(KVMIO, 0x41),
  KVM_SET_USER_MEMORY_REGION: iow(KVMIO, 0x46, KVM_USERSPACE_MEMORY_REGION.size),
  KVM_SET_TSS_ADDR: io(KVMIO, 0x47),
  KVM_SET_IDENTITY_MAP_ADDR: iow(KVMIO, 0x48, 8),
  KVM_CREATE_IRQCHIP: io(KVMIO, 0x60),
  KVM_IRQ_LINE: iow(KVMIO, 0x61, KVM_IRQ_LEVEL.size),
  KVM_GET_IRQCHIP: iowr(KVMIO, 0x62, KVM_IRQCHIP.size),
  KVM_SET_IRQCHIP: ior(KVMIO, 0x63, KVM_IRQCHIP.size),
  KVM_SET_GSI_ROUTING: iow(KVMIO, 0x6a, KVM_IRQ_ROUTING.size),
  KVM_IRQFD: iow(KVMIO, 0x76, KVM_IRQFD.size),
  KVM_CREATE_PIT2: iow(KVMIO, 0x77, KVM_PIT_CONFIG.size),
  KVM_IOEVENTFD: iow(KVMIO, 0x79, KVM_IOEVENTFD.size),
  KVM_SET_CLOCK: iow(KVMIO, 0x7b, KVM_CLOCK_DATA.size),
  KVM_GET_CLOCK: ior(KVMIO, 0x7c, KVM_CLOCK_DATA.size),
  KVM_GET_PIT2: ior(KVMIO, 0x9f, KVM_PIT_STATE2.size),
  KVM_SET_PIT2: iow(KVMIO, 0xa0, KVM_PIT_STATE2.size),
  KVM_ENABLE_CAP: iow(KVMIO, 0xa3, KVM_ENABLE_CAP.size),
  // vCPU
  KVM_RUN: io(KVMIO, 0x80),
  KVM_GET_REGS: ior(KVMIO, 0x81, KVM_REGS.size),
  KVM_SET_REGS: iow(KVMIO, 0x82, KVM_REGS.size),
  KVM_GET_SREGS: ior(KVMIO, 0x83, KVM_SREGS.size),
  KVM_SET_SREGS: iow(KVMIO, 0x84, KVM_SREGS.size),
  KVM_GET_MSRS: iowr(KVMIO, 0x88, KVM_MSRS.size),
  KVM_SET_MSRS: iow(KVMIO, 0x89, KVM_MSRS.size),
  KVM_SET_SIGNAL_MASK: iow(KVMIO, 0x8b, KVM_SIGNAL_MASK.size),
  KVM_GET_FPU: ior(KVMIO, 0x8c, KVM_FPU.size),
  KVM_SET_FPU: iow(KVMIO, 0x8d, KVM_FPU.size),
  KVM_GET_LAPIC: ior(KVMIO, 0x8e, KVM_LAPIC_STATE.size),
  KVM_SET_LAPIC: iow(KVMIO, 0x8f, KVM_LAPIC_STATE.size),
  KVM_SET_CPUID2: iow(KVMIO, 0x90, KVM_CPUID2.size),
  KVM_GET_CPUID2: iowr(KVMIO, 0x91, KVM_CPUID2.size),
  KVM_GET_MP_STATE: ior(KVMIO, 0x98, KVM_MP_STATE.size),
  KVM_SET_MP_STATE: iow(KVMIO, 0x99, KVM_MP_STATE.size),
  KVM_SET_GUEST_DEBUG: iow(KVMIO, 0x9b, KVM_GUEST_DEBUG.size),
  KVM_SET_TSC_KHZ: io(KVMIO, 0xa2),
  KVM_GET_TSC_KHZ: io(KVMIO, 0xa3),
  KVM_GET_VCPU_EVENTS: ior(KVMIO, 0x9f, KVM_VCPU_EVENTS.size),
  KVM_SET_VCPU_EVENTS: iow(KVMIO, 0xa0, KVM_VCPU_EVENTS.size),
  KVM_GET_DEBUGREGS: ior(KVMIO, 0xa1, KVM_DEBUGREGS.size),
  KVM_SET_DEBUGREGS: iow(KVMIO, 0xa2, KVM_DEBUGREGS.size),
  KVM_GET_XSAVE: ior(KVMIO, 0xa4, KVM_XSAVE.size),
  KVM_SET_XSAVE: iow(KVMIO, 0xa5, KVM_XSAVE.size),
  KVM_GET_XCRS: ior(KVMIO, 0xa6, KVM_XCRS.size),
  KVM_SET_XCRS: iow(KVMIO, 0xa7, KVM_XCRS.size),
  /** Like KVM_GET_XSAVE, but fills as many bytes as KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM says. */
  KVM_GET_XSAVE2: ior(KVMIO, 0xcf, KVM_XSAVE.size),
} as const;

export type KvmIoctlName = keyof typeof KVM_IOCTL;
