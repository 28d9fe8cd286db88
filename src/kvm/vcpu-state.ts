// A VM snapshot's CPU and interrupt-controller state on x86-64 KVM, as plain data (bytes,
// numbers, bigints) a caller can serialise: saveVcpuState/restoreVcpuState for one vCPU,
// saveVmState/restoreVmState for the VM-wide in-kernel devices (PIC master and slave, I/O
// APIC, PIT, kvmclock). Guest RAM and userspace devices are not here. Not covered either:
// nested-virtualisation state (KVM_GET_NESTED_STATE; the guests here run no hypervisor),
// Hyper-V/Xen state, and KVM_GET_FPU (the XSAVE area is a superset of it, and KVM_GET_XSAVE
// works on hosts without XSAVE too, in the legacy FXSAVE layout).
//
// Save order (all vCPUs stopped, i.e. out of KVM_RUN, each after Vcpu.completePendingExit:
// KVM finishes an I/O or MMIO exit -- an OUT's RIP step, an IN's data -- only on the next
// KVM_RUN, in state no get ioctl shows):
//   1. MP state first: KVM_GET_MP_STATE runs kvm_apic_accept_events(), which acts on a
//      pending INIT/SIPI and so may change the registers and LAPIC read after it.
//   2. vCPU events next: unless KVM_CAP_EXCEPTION_PAYLOAD is on, KVM_GET_VCPU_EVENTS
//      delivers a pending exception's deferred payload (CR2 of a #PF, DR6 of a #DB) into the
//      registers, so sregs and debug registers are read after it to include it.
//   3. the rest (CPUID, TSC rate, regs, sregs, XSAVE, XCRs, debug registers, LAPIC, MSRs),
//      which reading does not change.
//
// Restore order (into a vCPU whose VM has the in-kernel irqchip, and guest RAM mapped --
// KVM_SET_SREGS may load PAE PDPTEs and the kvmclock/steal-time/async-PF MSRs check their
// guest addresses):
//   1. CPUID: KVM validates nearly everything else against it -- CR4 bits and EFER.LME in
//      sregs, x2APIC mode in apic_base, XCR0 against the CPUID-derived supported XCR0, the
//      XSAVE components, which MSRs exist.
//   2. TSC rate (KVM_SET_TSC_KHZ): before the IA32_TSC MSR, whose offset KVM computes with
//      the TSC scaling ratio; set only when it differs from the vCPU's.
//   3. sregs: CR0/CR4/EFER and the APIC base. KVM_SET_LAPIC reads the APIC ID register per
//      the x2APIC bit of the APIC base, so sregs come before the LAPIC.
//   4. regs: KVM_SET_REGS discards a pending exception, so it comes before vCPU events.
//   5. XSAVE and XCRs (independent of each other; both after CPUID), debug registers.
//   6. LAPIC: before the MSRs, because KVM ignores a write of IA32_TSC_DEADLINE unless the
//      LAPIC timer (LVTT) is in TSC-deadline mode; before MP state and vCPU events (the
//      latched INIT and SIPI vector those set live in the LAPIC's pending events).
//   7. MSRs, in one ordered batch: IA32_TSC first (the deadline and kvmclock are read
//      against the guest TSC), IA32_TSC_DEADLINE last (an absolute guest-TSC time: armed
//      against the restored TSC).
//   8. MP state: KVM refuses INIT_RECEIVED while an INIT is latched (the vCPU in SMM), which
//      the vCPU events may set -- so before them.
//   9. vCPU events last. KVM_GET_VCPU_EVENTS fills nmi.pending but does not set
//      KVM_VCPUEVENT_VALID_NMI_PENDING, so restore adds that flag to those KVM reported
//      (SHADOW, SMM; PAYLOAD and TRIPLE_FAULT only appear when those capabilities are
//      enabled on the VM, and the restoring VM must enable them too). Not VALID_SIPI_VECTOR:
//      KVM always reports sipi_vector as 0 ("never valid when reporting to user space"; a
//      received SIPI is already acted on by KVM_GET_MP_STATE), and setting it would only
//      overwrite the LAPIC's SIPI vector with that 0.
// VM state: the irqchips and PIT can be restored before or after the vCPUs. Restore the
// clock last, just before the vCPUs run again: KVM_SET_CLOCK starts the kvmclock from the
// saved value and it runs from there whether or not a vCPU does.

import { KVM_CAP, KVM_CLOCK, KVM_VCPUEVENT } from './constants.js';
import { MAX_IO_MSRS, type Kvm, type KvmClockData, type Vcpu, type Vm } from './kvm.js';
import { KVM_VCPU_EVENTS } from './layout.js';
import { KvmCpuid2, KvmRegs, KvmSregs, type CpuidEntry, type MsrEntry } from './structs.js';

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;

/** Chip ids of KVM_GET/SET_IRQCHIP, in the order VmState.irqchips keeps them. */
export const IRQCHIP_PIC_MASTER = 0;
export const IRQCHIP_PIC_SLAVE = 1;
export const IRQCHIP_IOAPIC = 2;

/** One vCPU's architectural and KVM-internal state, as the vCPU's get ioctls return it. */
export interface VcpuState {
  cpuid: CpuidEntry[];
  /** Guest TSC rate, kHz (0: KVM did not know it). */
  tscKhz: number;
  /** struct kvm_regs. */
  regs: Uint8Array;
  /** struct kvm_sregs. */
  sregs: Uint8Array;
  /** The XSAVE area (Vcpu.xsaveSize bytes; FPU and SSE state included). */
  xsave: Uint8Array;
  /** struct kvm_xcrs. */
  xcrs: Uint8Array;
  /** struct kvm_debugregs. */
  debugregs: Uint8Array;
  /** struct kvm_lapic_state. */
  lapic: Uint8Array;
  /** The MSRs of the index list this vCPU could read, with their values. */
  msrs: MsrEntry[];
  /** MSRs of the index list KVM refused to read for this vCPU (not restored; for diagnosis). */
  refusedMsrs: number[];
  /** KVM_MP_STATE_* (KVM_MP_STATES). */
  mpState: number;
  /** struct kvm_vcpu_events, as KVM_GET_VCPU_EVENTS returned it. */
  vcpuEvents: Uint8Array;
}

/** The VM-wide in-kernel device state. */
export interface VmState {
  /** struct kvm_irqchip of the master PIC, the slave PIC and the I/O APIC (chip ids 0, 1, 2). */
  irqchips: Uint8Array[];
  /** struct kvm_pit_state2. */
  pit: Uint8Array;
  clock: KvmClockData;
}

/**
 * Reads a stopped vCPU's whole state. `msrSource` is the MSR index list
 * (Kvm.msrIndexList(); pass the array to read it once for many vCPUs) or the Kvm to ask.
 */
export function saveVcpuState(msrSource: Kvm | readonly number[], vcpu: Vcpu): VcpuState {
  const indices = Array.isArray(msrSource) ? msrSource : (msrSource as Kvm).msrIndexList();
  const mpState = vcpu.getMpState();
  const vcpuEvents = vcpu.getVcpuEvents();
  const { msrs, refused } = vcpu.getReadableMsrs(indices);
  return {
    cpuid: vcpu.getCpuid().entries(),
    tscKhz: vcpu.getTscKhz(),
    regs: vcpu.getRegs().bytes,
    sregs: vcpu.getSregs().bytes,
    xsave: vcpu.getXsave(),
    xcrs: vcpu.getXcrs(),
    debugregs: vcpu.getDebugregs(),
    lapic: vcpu.getLapic(),
    msrs,
    refusedMsrs: refused,
    mpState,
    vcpuEvents,
  };
}

/** The MSRs in restore order: IA32_TSC first, IA32_TSC_DEADLINE last, the rest as listed. */
export function msrRestoreOrder(msrs: readonly MsrEntry[]): MsrEntry[] {
  const rank = (i: number): number => (i === MSR_IA32_TSC ? 0 : i === MSR_IA32_TSC_DEADLINE ? 2 : 1);
  return msrs
    .map((m, at) => ({ m, at }))
    .sort((a, b) => rank(a.m[0]) - rank(b.m[0]) || a.at - b.at)
    .map((x) => x.m);
}

/** kvm_vcpu_events with the flags KVM_SET_VCPU_EVENTS needs to apply all that GET filled in (header, step 9). */
export function vcpuEventsForRestore(events: Uint8Array): Uint8Array {
  if (events.length !== KVM_VCPU_EVENTS.size)
    throw new RangeError(`kvm_vcpu_events is ${KVM_VCPU_EVENTS.size} bytes, not ${events.length}`);
  const b = events.slice();
  const v = new DataView(b.buffer);
  const flags = v.getUint32(KVM_VCPU_EVENTS.offsets.flags, true) | KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_NMI_PENDING;
  v.setUint32(KVM_VCPU_EVENTS.offsets.flags, flags >>> 0, true);
  return b;
}

/**
 * Writes a saved state into a vCPU, in the order of this file's header. The vCPU must not
 * have run (or be stopped), its VM must have the in-kernel irqchip and the guest RAM mapped.
 * Throws, naming it, on the first MSR KVM refuses to set.
 */
export function restoreVcpuState(vcpu: Vcpu, s: VcpuState): void {
  vcpu.setCpuid(KvmCpuid2.from(s.cpuid));
  if (s.tscKhz > 0 && vcpu.getTscKhz() !== s.tscKhz) vcpu.setTscKhz(s.tscKhz);
  const sregs = new KvmSregs();
  sregs.bytes.set(s.sregs);
  vcpu.setSregs(sregs);
  const regs = new KvmRegs();
  regs.bytes.set(s.regs);
  vcpu.setRegs(regs);
  vcpu.setXsave(s.xsave);
  vcpu.setXcrs(s.xcrs);
  vcpu.setDebugregs(s.debugregs);
  vcpu.setLapic(s.lapic);
  const msrs = msrRestoreOrder(s.msrs);
  for (let at = 0; at < msrs.length; at += MAX_IO_MSRS) vcpu.setMsrs(msrs.slice(at, at + MAX_IO_MSRS));
  vcpu.setMpState(s.mpState);
  vcpu.setVcpuEvents(vcpuEventsForRestore(s.vcpuEvents));
}

/** Reads the in-kernel PICs, I/O APIC, PIT and kvmclock (the VM has KVM_CREATE_IRQCHIP and KVM_CREATE_PIT2). */
export function saveVmState(vm: Vm): VmState {
  return {
    irqchips: [IRQCHIP_PIC_MASTER, IRQCHIP_PIC_SLAVE, IRQCHIP_IOAPIC].map((id) => vm.getIrqchip(id)),
    pit: vm.getPit2(),
    clock: vm.getClock(),
  };
}

export interface RestoreVmOptions {
  /**
   * Advance the kvmclock by the host CLOCK_REALTIME time since the save (KVM_CLOCK_REALTIME,
   * when the save recorded it and this kernel supports it), as if the VM had kept running.
   * Default false: the guest's clock continues from where it stopped.
   */
  advanceClockByRealtime?: boolean;
}

/**
 * Writes saved irqchip, PIT and clock state into a VM that has the in-kernel irqchip and PIT.
 * The clock is set last: call this just before the vCPUs run again.
 */
export function restoreVmState(vm: Vm, s: VmState, o: RestoreVmOptions = {}): void {
  for (const chip of s.irqchips) vm.setIrqchip(chip);
  vm.setPit2(s.pit);
  const realtime =
    o.advanceClockByRealtime === true &&
    (s.clock.flags & KVM_CLOCK.KVM_CLOCK_REALTIME) !== 0 &&
    (vm.checkExtension(KVM_CAP.KVM_CAP_ADJUST_CLOCK) & KVM_CLOCK.KVM_CLOCK_REALTIME) !== 0;
  // Only KVM_CLOCK_REALTIME means anything to KVM_SET_CLOCK; kernels before 5.16 refuse any flag.
  vm.setClock({
    clock: s.clock.clock,
    flags: realtime ? KVM_CLOCK.KVM_CLOCK_REALTIME : 0,
    realtime: s.clock.realtime,
  });
}
