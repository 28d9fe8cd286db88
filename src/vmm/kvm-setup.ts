// The values the boot core sets on a VM and its vCPUs through src/kvm's Vm and Vcpu: the
// TSS and identity-map addresses, the PC's GSI routes, the x2APIC API flags, the boot MSRs,
// the reset FPU state, the LAPIC LINT0/LINT1 modes and each vCPU's CPUID. No KVM call here.

// Imports name src/kvm's modules one by one, not its index (the index pulls in far more).
import { KVM_FPU } from '../kvm/layout.js';
import {
  KvmCpuid2 as Cpuid2,
  type CpuidEntry,
  type IrqchipRoute,
  type KvmCpuid2,
  type MsrEntry,
} from '../kvm/structs.js';

/** Where KVM keeps the 3 pages of the real-mode TSS and the EPT identity-map page (in the PCI hole, as QEMU does). */
export const KVM_TSS_ADDR = 0xfffbd000;
export const KVM_IDENTITY_MAP_ADDR = 0xfffbc000;
export const KVM_PIT_SPEAKER_DUMMY = 1;

const IRQCHIP = { picMaster: 0, picSlave: 1, ioapic: 2 } as const;
export const IOAPIC_PINS = 24;

/**
 * The GSI routes of a PC, as the MADT describes them (src/vmm/acpi): ISA IRQs 0-15 go to the
 * two 8259s (IRQ2 is the cascade, so no route) and to the I/O APIC pin of the same number,
 * except the timer: ISA IRQ0 (the PIT) is wired to I/O APIC pin 2 (the MADT's IRQ0 -> GSI2
 * override); GSIs 16-23 reach the I/O APIC only. KVM's default table sends GSI 0 to pin 0,
 * which would leave Linux's timer check on pin 2 without interrupts.
 */
export function pcGsiRoutes(): IrqchipRoute[] {
  const routes: IrqchipRoute[] = [];
  for (let irq = 0; irq < 16; irq++) {
    if (irq !== 2) routes.push({ gsi: irq, chip: irq < 8 ? IRQCHIP.picMaster : IRQCHIP.picSlave, pin: irq % 8 });
  }
  for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
    if (gsi === 0) routes.push({ gsi: 0, chip: IRQCHIP.ioapic, pin: 2 });
    else if (gsi !== 2) routes.push({ gsi, chip: IRQCHIP.ioapic, pin: gsi });
  }
  return routes;
}

/**
 * KVM_X2APIC_API_USE_32BIT_IDS | KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK, for
 * KVM_CAP_X2APIC_API on the VM before any vCPU exists: x2APIC IDs are the full 32-bit vCPU
 * ids (not truncated to 8 bits) and 0xff is no broadcast in x2APIC mode -- what APIC IDs
 * above 254 need.
 */
export const X2APIC_API_FLAGS = 0x3;

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
export function bootMsrs(): MsrEntry[] {
  return [
    [MSR.IA32_SYSENTER_CS, 0n],
    [MSR.IA32_SYSENTER_ESP, 0n],
    [MSR.IA32_SYSENTER_EIP, 0n],
    [MSR.STAR, 0n],
    [MSR.CSTAR, 0n],
    [MSR.KERNEL_GS_BASE, 0n],
    [MSR.SYSCALL_MASK, 0n],
    [MSR.LSTAR, 0n],
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
export function x2apicBaseMsr(bsp: boolean): MsrEntry {
  const EN = 1n << 11n;
  const EXTD = 1n << 10n;
  const BSP = 1n << 8n;
  return [MSR.IA32_APIC_BASE, 0xfee00000n | EN | EXTD | (bsp ? BSP : 0n)];
}

/** x87 control word 0x37f and MXCSR 0x1f80 (the reset values Linux expects) as a struct kvm_fpu. */
export function bootFpu(): Uint8Array {
  const b = new Uint8Array(KVM_FPU.size);
  const dv = new DataView(b.buffer);
  dv.setUint16(KVM_FPU.offsets.fcw, 0x37f, true);
  dv.setUint32(KVM_FPU.offsets.mxcsr, 0x1f80, true);
  return b;
}

const APIC_LVT0 = 0x350;
const APIC_LVT1 = 0x360;
const APIC_MODE_NMI = 0x4;
const APIC_MODE_EXTINT = 0x7;

/** A struct kvm_lapic_state with LINT0 = ExtINT (the PIC's output) and LINT1 = NMI, as the BIOS leaves them. */
export function withBootLints(lapic: Uint8Array): Uint8Array {
  const b = lapic.slice();
  const dv = new DataView(b.buffer);
  const set = (reg: number, mode: number): void => {
    const v = dv.getUint32(reg, true);
    dv.setUint32(reg, (v & ~0x700) | (mode << 8), true);
  };
  set(APIC_LVT0, APIC_MODE_EXTINT);
  set(APIC_LVT1, APIC_MODE_NMI);
  return b;
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
export function vcpuCpuid(
  supported: KvmCpuid2,
  vcpuId: number,
  hook?: CpuidHook,
  features: VmmCpuFeatures = { tscDeadline: false },
): KvmCpuid2 {
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
