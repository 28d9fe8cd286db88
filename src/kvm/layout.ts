// C struct layouts of the KVM API (x86-64), as data: each struct's size and the byte
// offset of each member, keyed by its C member designator (`io.port` for a member of the
// kvm_run exit union). Read from /usr/include/linux/kvm.h and asm/kvm.h; the unit test
// test/kvm-unit/layout.test.ts compiles a C program that prints sizeof/offsetof for every
// entry here and compares. The typed views in structs.ts and run.ts read these tables.

export interface StructLayout {
  /** The C struct tag (`struct <name>`). */
  readonly name: string;
  readonly size: number;
  readonly offsets: Readonly<Record<string, number>>;
}

function layout<const O extends Record<string, number>>(
  name: string,
  size: number,
  offsets: O,
): { name: string; size: number; offsets: O } {
  return { name, size, offsets };
}

export const KVM_USERSPACE_MEMORY_REGION = layout('kvm_userspace_memory_region', 32, {
  slot: 0,
  flags: 4,
  guest_phys_addr: 8,
  memory_size: 16,
  userspace_addr: 24,
});

export const KVM_REGS = layout('kvm_regs', 144, {
  rax: 0,
  rbx: 8,
  rcx: 16,
  rdx: 24,
  rsi: 32,
  rdi: 40,
  rsp: 48,
  rbp: 56,
  r8: 64,
  r9: 72,
  r10: 80,
  r11: 88,
  r12: 96,
  r13: 104,
  r14: 112,
  r15: 120,
  rip: 128,
  rflags: 136,
});

export const KVM_SEGMENT = layout('kvm_segment', 24, {
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22,
  padding: 23,
});

export const KVM_DTABLE = layout('kvm_dtable', 16, { base: 0, limit: 8, padding: 10 });

export const KVM_SREGS = layout('kvm_sregs', 312, {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apic_base: 272,
  interrupt_bitmap: 280,
});

/** The kvm_run page header and the exit-union members the VMM reads. */
export const KVM_RUN = layout('kvm_run', 2352, {
  request_interrupt_window: 0,
  immediate_exit: 1,
  exit_reason: 8,
  ready_for_interrupt_injection: 12,
  if_flag: 13,
  flags: 14,
  cr8: 16,
  apic_base: 24,
  'hw.hardware_exit_reason': 32,
  'fail_entry.hardware_entry_failure_reason': 32,
  'fail_entry.cpu': 40,
  'ex.exception': 32,
  'ex.error_code': 36,
  'io.direction': 32,
  'io.size': 33,
  'io.port': 34,
  'io.count': 36,
  'io.data_offset': 40,
  'mmio.phys_addr': 32,
  'mmio.data': 40,
  'mmio.len': 48,
  'mmio.is_write': 52,
  'internal.suberror': 32,
  'internal.ndata': 36,
  'internal.data': 40,
  'emulation_failure.flags': 40,
  'emulation_failure.insn_size': 48,
  'emulation_failure.insn_bytes': 49,
  'system_event.type': 32,
  'system_event.ndata': 36,
  'system_event.data': 40,
  'debug.arch.exception': 32,
  'debug.arch.pc': 40,
  'debug.arch.dr6': 48,
  'debug.arch.dr7': 56,
  'msr.error': 32,
  'msr.reason': 40,
  'msr.index': 44,
  'msr.data': 48,
  kvm_valid_regs: 288,
  kvm_dirty_regs: 296,
  s: 304,
});

export const KVM_CPUID_ENTRY2 = layout('kvm_cpuid_entry2', 40, {
  function: 0,
  index: 4,
  flags: 8,
  eax: 12,
  ebx: 16,
  ecx: 20,
  edx: 24,
  padding: 28,
});
/** Header only; `nent` entries of kvm_cpuid_entry2 follow. */
export const KVM_CPUID2 = layout('kvm_cpuid2', 8, { nent: 0, padding: 4, entries: 8 });

export const KVM_MSR_ENTRY = layout('kvm_msr_entry', 16, { index: 0, reserved: 4, data: 8 });
/** Header only; `nmsrs` entries of kvm_msr_entry follow. */
export const KVM_MSRS = layout('kvm_msrs', 8, { nmsrs: 0, pad: 4, entries: 8 });
/** Header only; `nmsrs` u32 indices follow. */
export const KVM_MSR_LIST = layout('kvm_msr_list', 4, { nmsrs: 0, indices: 4 });

export const KVM_IRQ_LEVEL = layout('kvm_irq_level', 8, { irq: 0, status: 0, level: 4 });
export const KVM_PIT_CONFIG = layout('kvm_pit_config', 64, { flags: 0, pad: 4 });
/** KVM_GET/SET_PIT2: the three PIT channels (kvm_pit_channel_state, 24 bytes each) and flags. */
export const KVM_PIT_STATE2 = layout('kvm_pit_state2', 112, { channels: 0, flags: 72, reserved: 76 });
/** KVM_GET/SET_IRQCHIP: one chip (chip_id 0: master PIC, 1: slave PIC, 2: I/O APIC) and its state. */
export const KVM_IRQCHIP = layout('kvm_irqchip', 520, { chip_id: 0, pad: 4, chip: 8 });
export const KVM_IRQFD = layout('kvm_irqfd', 32, { fd: 0, gsi: 4, flags: 8, resamplefd: 12, pad: 16 });
export const KVM_IOEVENTFD = layout('kvm_ioeventfd', 64, {
  datamatch: 0,
  addr: 8,
  len: 16,
  fd: 20,
  flags: 24,
  pad: 28,
});
/** Header only; `nr` routing entries follow. */
export const KVM_IRQ_ROUTING = layout('kvm_irq_routing', 8, { nr: 0, flags: 4, entries: 8 });
/** One GSI route; for type KVM_IRQ_ROUTING_IRQCHIP the union holds { irqchip, pin }. */
export const KVM_IRQ_ROUTING_ENTRY = layout('kvm_irq_routing_entry', 48, { gsi: 0, type: 4, flags: 8, pad: 12, u: 16 });
export const KVM_ENABLE_CAP = layout('kvm_enable_cap', 104, { cap: 0, flags: 4, args: 8, pad: 40 });
export const KVM_CLOCK_DATA = layout('kvm_clock_data', 48, {
  clock: 0,
  flags: 8,
  pad0: 12,
  realtime: 16,
  host_tsc: 24,
  pad: 32,
});
export const KVM_MP_STATE = layout('kvm_mp_state', 4, { mp_state: 0 });
/** Header only; `len` bytes of sigset follow. */
export const KVM_SIGNAL_MASK = layout('kvm_signal_mask', 4, { len: 0, sigset: 4 });
export const KVM_FPU = layout('kvm_fpu', 416, {
  fpr: 0,
  fcw: 128,
  fsw: 130,
  ftwx: 132,
  pad1: 133,
  last_opcode: 134,
  last_ip: 136,
  last_dp: 144,
  xmm: 152,
  mxcsr: 408,
  pad2: 412,
});
export const KVM_LAPIC_STATE = layout('kvm_lapic_state', 1024, { regs: 0 });
/** KVM_SET_GUEST_DEBUG's argument: control flags (KVM_GUESTDBG_*) and DR0-DR7 (DR4/DR5 unused). */
export const KVM_GUEST_DEBUG = layout('kvm_guest_debug', 72, { control: 0, pad: 4, 'arch.debugreg': 8 });

/** KVM_GET/SET_XSAVE: the XSAVE area (legacy x87/SSE region, header, extended state). KVM_GET_XSAVE2 may use more. */
export const KVM_XSAVE = layout('kvm_xsave', 4096, { region: 0, extra: 4096 });
export const KVM_XCR = layout('kvm_xcr', 16, { xcr: 0, reserved: 4, value: 8 });
/** KVM_GET/SET_XCRS: up to KVM_MAX_XCRS extended control registers (XCR0 is the one x86 has). */
export const KVM_XCRS = layout('kvm_xcrs', 392, { nr_xcrs: 0, flags: 4, xcrs: 8, padding: 264 });
/** KVM_GET/SET_VCPU_EVENTS: pending/injected exception, interrupt, NMI, SIPI vector, SMM state. */
export const KVM_VCPU_EVENTS = layout('kvm_vcpu_events', 64, {
  'exception.injected': 0,
  'exception.nr': 1,
  'exception.has_error_code': 2,
  'exception.pending': 3,
  'exception.error_code': 4,
  'interrupt.injected': 8,
  'interrupt.nr': 9,
  'interrupt.soft': 10,
  'interrupt.shadow': 11,
  'nmi.injected': 12,
  'nmi.pending': 13,
  'nmi.masked': 14,
  'nmi.pad': 15,
  sipi_vector: 16,
  flags: 20,
  'smi.smm': 24,
  'smi.pending': 25,
  'smi.smm_inside_nmi': 26,
  'smi.latched_init': 27,
  'triple_fault.pending': 28,
  reserved: 29,
  exception_has_payload: 55,
  exception_payload: 56,
});
/** KVM_GET/SET_DEBUGREGS: the guest's DR0-DR3, DR6, DR7 (flags must be 0). */
export const KVM_DEBUGREGS = layout('kvm_debugregs', 128, { db: 0, dr6: 32, dr7: 40, flags: 48, reserved: 56 });

/** Every layout above, for the header cross-check. */
export const ALL_LAYOUTS: readonly StructLayout[] = [
  KVM_USERSPACE_MEMORY_REGION,
  KVM_REGS,
  KVM_SEGMENT,
  KVM_DTABLE,
  KVM_SREGS,
  KVM_RUN,
  KVM_CPUID_ENTRY2,
  KVM_CPUID2,
  KVM_MSR_ENTRY,
  KVM_MSRS,
  KVM_MSR_LIST,
  KVM_IRQ_LEVEL,
  KVM_PIT_CONFIG,
  KVM_PIT_STATE2,
  KVM_IRQCHIP,
  KVM_IRQFD,
  KVM_IOEVENTFD,
  KVM_IRQ_ROUTING,
  KVM_IRQ_ROUTING_ENTRY,
  KVM_ENABLE_CAP,
  KVM_CLOCK_DATA,
  KVM_MP_STATE,
  KVM_SIGNAL_MASK,
  KVM_FPU,
  KVM_LAPIC_STATE,
  KVM_GUEST_DEBUG,
  KVM_XSAVE,
  KVM_XCR,
  KVM_XCRS,
  KVM_VCPU_EVENTS,
  KVM_DEBUGREGS,
];
