// Numeric constants of the KVM API (<linux/kvm.h>) by their C macro names: the API version,
// exit reasons, I/O directions, internal-error sub-reasons, system events, memory-slot
// flags and the capabilities the VMM asks about. test/kvm-unit/layout.test.ts compares
// each with the header.

/** KVM_GET_API_VERSION must return this (it has not changed since Linux 2.6.22). */
export const KVM_API_VERSION = 12;

export const KVM_EXIT = {
  KVM_EXIT_UNKNOWN: 0,
  KVM_EXIT_EXCEPTION: 1,
  KVM_EXIT_IO: 2,
  KVM_EXIT_HYPERCALL: 3,
  KVM_EXIT_DEBUG: 4,
  KVM_EXIT_HLT: 5,
  KVM_EXIT_MMIO: 6,
  KVM_EXIT_IRQ_WINDOW_OPEN: 7,
  KVM_EXIT_SHUTDOWN: 8,
  KVM_EXIT_FAIL_ENTRY: 9,
  KVM_EXIT_INTR: 10,
  KVM_EXIT_SET_TPR: 11,
  KVM_EXIT_TPR_ACCESS: 12,
  KVM_EXIT_NMI: 16,
  KVM_EXIT_INTERNAL_ERROR: 17,
  KVM_EXIT_WATCHDOG: 21,
  KVM_EXIT_EPR: 23,
  KVM_EXIT_SYSTEM_EVENT: 24,
  KVM_EXIT_IOAPIC_EOI: 26,
  KVM_EXIT_HYPERV: 27,
  KVM_EXIT_X86_RDMSR: 29,
  KVM_EXIT_X86_WRMSR: 30,
  KVM_EXIT_DIRTY_RING_FULL: 31,
  KVM_EXIT_AP_RESET_HOLD: 32,
  KVM_EXIT_X86_BUS_LOCK: 33,
  KVM_EXIT_XEN: 34,
  KVM_EXIT_NOTIFY: 37,
} as const;

/** Exit reason number -> C name ('KVM_EXIT_HLT'); unknown numbers give 'KVM_EXIT_<n>'. */
export function exitReasonName(reason: number): string {
  for (const [name, value] of Object.entries(KVM_EXIT)) if (value === reason) return name;
  return `KVM_EXIT_${reason}`;
}

export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

export const KVM_INTERNAL_ERROR = {
  KVM_INTERNAL_ERROR_EMULATION: 1,
  KVM_INTERNAL_ERROR_SIMUL_EX: 2,
  KVM_INTERNAL_ERROR_DELIVERY_EV: 3,
  KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: 4,
} as const;

export const KVM_SYSTEM_EVENT = {
  KVM_SYSTEM_EVENT_SHUTDOWN: 1,
  KVM_SYSTEM_EVENT_RESET: 2,
  KVM_SYSTEM_EVENT_CRASH: 3,
  KVM_SYSTEM_EVENT_WAKEUP: 4,
  KVM_SYSTEM_EVENT_SUSPEND: 5,
  KVM_SYSTEM_EVENT_SEV_TERM: 6,
} as const;

export const KVM_MEM = {
  KVM_MEM_LOG_DIRTY_PAGES: 1,
  KVM_MEM_READONLY: 2,
} as const;

/** KVM_SET_GUEST_DEBUG control flags. */
export const KVM_GUESTDBG = {
  KVM_GUESTDBG_ENABLE: 0x1,
  KVM_GUESTDBG_SINGLESTEP: 0x2,
  KVM_GUESTDBG_USE_SW_BP: 0x10000,
  KVM_GUESTDBG_USE_HW_BP: 0x20000,
} as const;

export const KVM_CAP = {
  KVM_CAP_IRQCHIP: 0,
  KVM_CAP_HLT: 1,
  KVM_CAP_USER_MEMORY: 3,
  KVM_CAP_SET_TSS_ADDR: 4,
  KVM_CAP_EXT_CPUID: 7,
  KVM_CAP_NR_VCPUS: 9,
  KVM_CAP_NR_MEMSLOTS: 10,
  KVM_CAP_IRQFD: 32,
  KVM_CAP_PIT2: 33,
  KVM_CAP_IOEVENTFD: 36,
  KVM_CAP_INTERNAL_ERROR_DATA: 40,
  KVM_CAP_SET_GUEST_DEBUG: 23,
  KVM_CAP_TSC_CONTROL: 60,
  KVM_CAP_GET_TSC_KHZ: 61,
  KVM_CAP_MAX_VCPUS: 66,
  KVM_CAP_TSC_DEADLINE_TIMER: 72,
  KVM_CAP_SYNC_REGS: 74,
  KVM_CAP_X2APIC_API: 129,
  KVM_CAP_IMMEDIATE_EXIT: 136,
  KVM_CAP_MAX_VCPU_ID: 128,
  KVM_CAP_MP_STATE: 14,
  KVM_CAP_ADJUST_CLOCK: 39,
  KVM_CAP_VCPU_EVENTS: 41,
  KVM_CAP_DEBUGREGS: 50,
  KVM_CAP_XSAVE: 55,
  KVM_CAP_XCRS: 56,
  KVM_CAP_X86_SMM: 117,
  KVM_CAP_EXCEPTION_PAYLOAD: 164,
  KVM_CAP_XSAVE2: 208,
} as const;

/** KVM_GET/SET_MP_STATE values: a vCPU's multiprocessing state (x86 uses 0-4 and 9-10). (KVM_MP_STATE is the struct layout.) */
export const KVM_MP_STATES = {
  KVM_MP_STATE_RUNNABLE: 0,
  KVM_MP_STATE_UNINITIALIZED: 1,
  KVM_MP_STATE_INIT_RECEIVED: 2,
  KVM_MP_STATE_HALTED: 3,
  KVM_MP_STATE_SIPI_RECEIVED: 4,
  KVM_MP_STATE_STOPPED: 5,
  KVM_MP_STATE_CHECK_STOP: 6,
  KVM_MP_STATE_OPERATING: 7,
  KVM_MP_STATE_LOAD: 8,
  KVM_MP_STATE_AP_RESET_HOLD: 9,
  KVM_MP_STATE_SUSPENDED: 10,
} as const;

/** kvm_vcpu_events.flags: which optional fields KVM_SET_VCPU_EVENTS applies (KVM_GET sets only some). */
export const KVM_VCPUEVENT = {
  KVM_VCPUEVENT_VALID_NMI_PENDING: 0x1,
  KVM_VCPUEVENT_VALID_SIPI_VECTOR: 0x2,
  KVM_VCPUEVENT_VALID_SHADOW: 0x4,
  KVM_VCPUEVENT_VALID_SMM: 0x8,
  KVM_VCPUEVENT_VALID_PAYLOAD: 0x10,
  KVM_VCPUEVENT_VALID_TRIPLE_FAULT: 0x20,
} as const;

/** kvm_vcpu_events.interrupt.shadow bits. */
export const KVM_X86_SHADOW_INT = {
  KVM_X86_SHADOW_INT_MOV_SS: 0x01,
  KVM_X86_SHADOW_INT_STI: 0x02,
} as const;

/** kvm_clock_data.flags (KVM_GET_CLOCK reports them; KVM_SET_CLOCK honours KVM_CLOCK_REALTIME). */
export const KVM_CLOCK = {
  KVM_CLOCK_TSC_STABLE: 2,
  KVM_CLOCK_REALTIME: 1 << 2,
  KVM_CLOCK_HOST_TSC: 1 << 3,
} as const;

/** Entries in kvm_xcrs.xcrs. */
export const KVM_MAX_XCRS = 16;
