// VM and vCPU set-up ioctls the boot core needs beyond src/kvm's Kvm/Vm/Vcpu wrapper:
// TSS and identity-map pages, the in-kernel irqchip (PIC + IOAPIC + LAPICs) and PIT,
// KVM_IRQ_LINE, MSRs, FPU and LAPIC LINT0/LINT1. All go straight through the native
// binding with the request numbers and layouts from src/kvm.

// Imports name src/kvm's modules one by one, not its index: the vCPU workers load this file
// (for irqLine), and each module more is start-up time of every vCPU thread.
import { KVM_CAP } from '../kvm/constants.js';
import { KVM_IOCTL } from '../kvm/ioctl.js';
import { KVM_ENABLE_CAP, KVM_FPU, KVM_IRQ_ROUTING, KVM_IRQ_ROUTING_ENTRY, KVM_LAPIC_STATE } from '../kvm/layout.js';
import { native } from '../kvm/native.js';
import { KvmCpuid2 as Cpuid2, type CpuidEntry, type KvmCpuid2 } from '../kvm/structs.js';
import type { IrqTrigger } from './devices/irq.js';

/** Where KVM keeps the 3 pages of the real-mode TSS and the EPT identity-map page (in the PCI hole, as QEMU does). */
export const KVM_TSS_ADDR = 0xfffbd000;
export const KVM_IDENTITY_MAP_ADDR = 0xfffbc000;
export const KVM_PIT_SPEAKER_DUMMY = 1;

export function setTssAddr(vmFd: number, addr = KVM_TSS_ADDR): void {
  native().ioctl(vmFd, KVM_IOCTL.KVM_SET_TSS_ADDR, addr);
}

export function setIdentityMapAddr(vmFd: number, addr = KVM_IDENTITY_MAP_ADDR): void {
  const b = new BigUint64Array([BigInt(addr)]);
  native().ioctl(vmFd, KVM_IOCTL.KVM_SET_IDENTITY_MAP_ADDR, b);
}

export function createIrqchip(vmFd: number): void { native().ioctl(vmFd, KVM_IOCTL.KVM_CREATE_IRQCHIP); }

const KVM_IRQ_ROUTING_IRQCHIP = 1;
const IRQCHIP = { picMaster: 0, picSlave: 1, ioapic: 2 } as const;
export const IOAPIC_PINS = 24;

/**
 * The GSI routes of a PC, as the MADT describes them (src/vmm/acpi): ISA IRQs 0-15 go to the
 * two 8259s (IRQ2 is the cascade, so no route) and to the I/O APIC pin of the same number,
 * except the timer: ISA IRQ0 (the PIT) is wired to I/O APIC pin 2 (the MADT's IRQ0 -> GSI2
 * override); GSIs 16-23 reach the I/O APIC only. KVM's default table sends GSI 0 to pin 0,
 * which would leave Linux's timer check on pin 2 without interrupts.
 */
export function pcGsiRoutes(): Array<{ gsi: number; chip: number; pin: number }> {
  const routes: Array<{ gsi: number; chip: number; pin: number }> = [];
  for (let irq = 0; irq < 16; irq++) {
    if (irq !== 2) routes.push({ gsi: irq, chip: irq < 8 ? IRQCHIP.picMaster : IRQCHIP.picSlave, pin: irq % 8 });
  }
  for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
    if (gsi === 0) routes.push({ gsi: 0, chip: IRQCHIP.ioapic, pin: 2 });
    else if (gsi !== 2) routes.push({ gsi, chip: IRQCHIP.ioapic, pin: gsi });
  }
  return routes;
}

/** KVM_SET_GSI_ROUTING with pcGsiRoutes() (after KVM_CREATE_IRQCHIP). */
export function setPcGsiRouting(vmFd: number): void {
  const routes = pcGsiRoutes();
  const buf = new ArrayBuffer(KVM_IRQ_ROUTING.size + routes.length * KVM_IRQ_ROUTING_ENTRY.size);
  const v = new DataView(buf);
  v.setUint32(KVM_IRQ_ROUTING.offsets.nr, routes.length, true);
  routes.forEach((r, i) => {
    const o = KVM_IRQ_ROUTING.offsets.entries + i * KVM_IRQ_ROUTING_ENTRY.size;
    v.setUint32(o + KVM_IRQ_ROUTING_ENTRY.offsets.gsi, r.gsi, true);
    v.setUint32(o + KVM_IRQ_ROUTING_ENTRY.offsets.type, KVM_IRQ_ROUTING_IRQCHIP, true);
    v.setUint32(o + KVM_IRQ_ROUTING_ENTRY.offsets.u, r.chip, true);
    v.setUint32(o + KVM_IRQ_ROUTING_ENTRY.offsets.u + 4, r.pin, true);
  });
  native().ioctl(vmFd, KVM_IOCTL.KVM_SET_GSI_ROUTING, new Uint8Array(buf));
}

/**
 * KVM_CREATE_PIT2 with KVM's speaker port: without KVM_PIT_SPEAKER_DUMMY the kernel also
 * answers port 0x61 (PIT channel 2 gate and output), which Linux's PIT TSC calibration reads.
 */
export function createPit2(vmFd: number): void {
  const cfg = new Uint32Array(16);
  cfg[0] = 0;
  native().ioctl(vmFd, KVM_IOCTL.KVM_CREATE_PIT2, cfg);
}

/** KVM_X2APIC_API_USE_32BIT_IDS | KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK. */
export const X2APIC_API_FLAGS = 0x3;

/**
 * KVM_ENABLE_CAP(KVM_CAP_X2APIC_API) on the VM, before any vCPU exists: x2APIC IDs are the
 * full 32-bit vCPU ids (not truncated to 8 bits) and 0xff is no broadcast in x2APIC mode —
 * what APIC IDs above 254 need. Throws with the reason when KVM lacks it.
 */
export function enableX2apicApi(vmFd: number): void {
  const n = native();
  const supported = n.ioctl(vmFd, KVM_IOCTL.KVM_CHECK_EXTENSION, KVM_CAP.KVM_CAP_X2APIC_API);
  if ((supported & X2APIC_API_FLAGS) !== X2APIC_API_FLAGS) {
    throw new Error(`KVM_CAP_X2APIC_API: this KVM offers flags 0x${supported.toString(16)}, APIC IDs above 254 need 0x${X2APIC_API_FLAGS.toString(16)}`);
  }
  const b = new Uint8Array(KVM_ENABLE_CAP.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(KVM_ENABLE_CAP.offsets.cap, KVM_CAP.KVM_CAP_X2APIC_API, true);
  dv.setBigUint64(KVM_ENABLE_CAP.offsets.args, BigInt(X2APIC_API_FLAGS), true);
  n.ioctl(vmFd, KVM_IOCTL.KVM_ENABLE_CAP, b);
}

/** KVM_IRQ_LINE on the in-kernel irqchip (GSI = ISA IRQ for 0..15). Callable from any thread. */
export function irqLine(vmFd: number, irq: number, level: 0 | 1, scratch = new Uint32Array(2)): void {
  scratch[0] = irq;
  scratch[1] = level;
  native().ioctl(vmFd, KVM_IOCTL.KVM_IRQ_LINE, scratch);
}

/** A device's interrupt trigger (devices/irq.ts) on KVM_IRQ_LINE: one per device handle and thread (it owns its scratch). */
export function irqLineTrigger(vmFd: number, irq: number): IrqTrigger {
  const scratch = new Uint32Array(2);
  return (level) => irqLine(vmFd, irq, level, scratch);
}

export const MSR = {
  IA32_TSC: 0x10,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_APIC_BASE: 0x1b,
  IA32_MISC_ENABLE: 0x1a0,
  IA32_MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc0000081,
  LSTAR: 0xc0000082,
  CSTAR: 0xc0000083,
  SYSCALL_MASK: 0xc0000084,
  KERNEL_GS_BASE: 0xc0000102,
} as const;
export const MISC_ENABLE_FAST_STRING = 1n;
/** MTRRs enabled (bit 11), default type write-back (6). */
export const MTRR_DEF_TYPE_WB_ENABLED = (1n << 11n) | 6n;

/** The boot MSRs: syscall/sysenter cleared, TSC 0, fast strings, MTRRs on with WB default. Vendor-neutral. */
export function bootMsrs(): Array<[number, bigint]> {
  return [
    [MSR.IA32_SYSENTER_CS, 0n], [MSR.IA32_SYSENTER_ESP, 0n], [MSR.IA32_SYSENTER_EIP, 0n],
    [MSR.STAR, 0n], [MSR.CSTAR, 0n], [MSR.KERNEL_GS_BASE, 0n], [MSR.SYSCALL_MASK, 0n], [MSR.LSTAR, 0n],
    [MSR.IA32_TSC, 0n],
    [MSR.IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING],
    [MSR.IA32_MTRR_DEF_TYPE, MTRR_DEF_TYPE_WB_ENABLED],
  ];
}

/**
 * IA32_APIC_BASE in x2APIC mode (EN | EXTD, the BSP flag on the boot CPU), as firmware leaves
 * it for APIC IDs above 254: Linux checks the MADT's x2APIC entries against the APIC driver it
 * has at that point, and drops them all ("x2apic entry ignored") unless x2APIC is already on.
 * Set after the vCPU's CPUID, which must have the x2APIC bit.
 */
export function x2apicBaseMsr(bsp: boolean): [number, bigint] {
  const EN = 1n << 11n;
  const EXTD = 1n << 10n;
  const BSP = 1n << 8n;
  return [MSR.IA32_APIC_BASE, 0xfee00000n | EN | EXTD | (bsp ? BSP : 0n)];
}

/** struct kvm_msrs with the entries; KVM_SET_MSRS returns how many it set. */
export function encodeMsrs(msrs: Array<[number, bigint]>): Uint8Array {
  const b = new Uint8Array(8 + 16 * msrs.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, msrs.length, true);
  msrs.forEach(([index, data], i) => {
    dv.setUint32(8 + 16 * i, index, true);
    dv.setBigUint64(8 + 16 * i + 8, data, true);
  });
  return b;
}

export function setMsrs(vcpuFd: number, msrs: Array<[number, bigint]>): void {
  const n = native().ioctl(vcpuFd, KVM_IOCTL.KVM_SET_MSRS, encodeMsrs(msrs));
  if (n !== msrs.length) {
    throw new Error(`KVM_SET_MSRS set ${n} of ${msrs.length} MSRs; refused: 0x${msrs[n][0].toString(16)}`);
  }
}

/** x87 control word 0x37f and MXCSR 0x1f80: the reset values Linux expects. */
export function setBootFpu(vcpuFd: number): void {
  const b = new Uint8Array(KVM_FPU.size);
  const dv = new DataView(b.buffer);
  dv.setUint16(KVM_FPU.offsets.fcw, 0x37f, true);
  dv.setUint32(KVM_FPU.offsets.mxcsr, 0x1f80, true);
  native().ioctl(vcpuFd, KVM_IOCTL.KVM_SET_FPU, b);
}

const APIC_LVT0 = 0x350;
const APIC_LVT1 = 0x360;
const APIC_MODE_NMI = 0x4;
const APIC_MODE_EXTINT = 0x7;

/** LINT0 = ExtINT (the PIC's output), LINT1 = NMI, as the BIOS leaves them. */
export function setLapicLints(vcpuFd: number): void {
  const b = new Uint8Array(KVM_LAPIC_STATE.size);
  const dv = new DataView(b.buffer);
  native().ioctl(vcpuFd, KVM_IOCTL.KVM_GET_LAPIC, b);
  const set = (reg: number, mode: number): void => {
    const v = dv.getUint32(reg, true);
    dv.setUint32(reg, (v & ~0x700) | (mode << 8), true);
  };
  set(APIC_LVT0, APIC_MODE_EXTINT);
  set(APIC_LVT1, APIC_MODE_NMI);
  native().ioctl(vcpuFd, KVM_IOCTL.KVM_SET_LAPIC, b);
}

/** CPUID.1:ECX bit 31: running under a hypervisor. */
export const CPUID_1_ECX_HYPERVISOR = 0x80000000;
/** CPUID.1:ECX bit 24: the local APIC timer has TSC-deadline mode. */
export const CPUID_1_ECX_TSC_DEADLINE = 0x01000000;

/** What the VMM adds to KVM_GET_SUPPORTED_CPUID because it provides it (KVM cannot know). */
export interface VmmCpuFeatures {
  /**
   * TSC-deadline timer: KVM emulates it in the in-kernel LAPIC (KVM_CAP_TSC_DEADLINE_TIMER)
   * but leaves the bit to userspace. Without it Linux calibrates the LAPIC timer against the
   * PIT, which under nested emulation fails verification and leaves the PIT as the only
   * clock event device (seconds of boot and a slower guest).
   */
  tscDeadline: boolean;
  /**
   * KVM_FEATURE_MSI_EXT_DEST_ID (0x4000_0001 EAX bit 15): the guest may put APIC IDs above 255
   * in I/O APIC and MSI destinations (bits 49-55 of a redirection entry). Linux brings up CPUs
   * with such IDs in x2APIC mode only with it (or with interrupt remapping). The in-kernel I/O
   * APIC reads only the low 8 bits, so the VMM keeps legacy IRQs on CPU 0 (irqaffinity=0, see
   * src/vmm/index.ts).
   */
  msiExtDestId?: boolean;
}

/** Bit 15 of KVM_CPUID_FEATURES (0x4000_0001) EAX. */
export const KVM_FEATURE_MSI_EXT_DEST_ID = 1 << 15;
const KVM_CPUID_FEATURES = 0x40000001;

/**
 * The CPUID a vCPU gets: KVM_GET_SUPPORTED_CPUID with the per-vCPU APIC ID patched into
 * leaves 0x1 (EBX[31:24]) and 0xB/0x1F (EDX), the hypervisor bit (and TSC-deadline when the
 * VMM has it) set in 0x1 ECX, MSI extended destination IDs when asked for, then handed to the `cpuid` hook when given (the topology
 * rewrite in src/vmm/cpuid/ plugs in there).
 */
export function vcpuCpuid(supported: KvmCpuid2, vcpuId: number, hook?: CpuidHook, features: VmmCpuFeatures = { tscDeadline: false }): KvmCpuid2 {
  let entries = supported.entries().map((e) => ({ ...e }));
  for (const e of entries) {
    if (e.function === 1) {
      e.ebx = ((e.ebx & 0x00ffffff) | (vcpuId << 24)) >>> 0;
      e.ecx = (e.ecx | CPUID_1_ECX_HYPERVISOR) >>> 0; // KVM does not report it; without it Linux never looks at 0x40000000 (kvmclock)
      if (features.tscDeadline) e.ecx = (e.ecx | CPUID_1_ECX_TSC_DEADLINE) >>> 0;
    }
    if (e.function === 0xb || e.function === 0x1f) e.edx = vcpuId >>> 0;
    if (e.function === KVM_CPUID_FEATURES && features.msiExtDestId) e.eax = (e.eax | KVM_FEATURE_MSI_EXT_DEST_ID) >>> 0;
  }
  if (hook) entries = hook(entries, vcpuId);
  return Cpuid2.from(entries);
}

/** Rewrites the CPUID entries of one vCPU (gets a private copy; returns the entries to set). */
export type CpuidHook = (entries: CpuidEntry[], vcpuId: number) => CpuidEntry[];
