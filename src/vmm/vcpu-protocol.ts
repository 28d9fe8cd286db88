// Shared words and messages between the VM's main thread (vm.ts) and its vCPU threads
// (vcpu-worker.ts).

/** Int32 slots of a vCPU's control buffer (`go`: 0 holds the thread before its first KVM_RUN). */
/** `pause`: the main thread holds the vCPU between two KVM_RUNs; `paused`: the thread says it is held. */
/** `debugRequest`: set the debug registers from DEBUG_REGS (answered by a `debug-set` message). */
/** `hold`: the thread stopped itself at a watchpoint hit until the main thread has looked (released to 0). */
export const VCPU_CTL = {
  stop: 0,
  tid: 1,
  state: 2,
  sregsRequest: 3,
  go: 4,
  regsRequest: 5,
  pause: 6,
  paused: 7,
  debugRequest: 8,
  hold: 9,
} as const;
/** Byte offset of the BigUint64 [DR0, DR1, DR2, DR3, DR7] a `debugRequest` applies. */
export const DEBUG_REGS_OFFSET = 64;
export const VCPU_CTL_BYTES = 104;
export const VCPU_STATE = { starting: 0, running: 1, done: 2 } as const;

/**
 * How a run ended, VM-wide: the exit port, a reset (i8042, KVM system event), a triple fault,
 * a power-off, a failure, or HLT without an in-kernel irqchip. The first vCPU to see an end
 * claims the shared Int32 event word with its kind's code.
 */
export type VmEventKind = 'exit' | 'reset' | 'triple-fault' | 'poweroff' | 'error' | 'hlt';

/** Each kind's code in slot 0 of the event word (0 = still running): the one place kinds meet numbers. */
const EVENT_CODES: Readonly<Record<VmEventKind, number>> = {
  exit: 1,
  reset: 2,
  'triple-fault': 3,
  poweroff: 4,
  error: 5,
  hlt: 6,
};
const EVENT_KINDS = new Map(Object.entries(EVENT_CODES).map(([kind, code]) => [code, kind as VmEventKind]));

/** The event word's code for a kind. */
export function eventCode(kind: VmEventKind): number {
  return EVENT_CODES[kind];
}

/** The kind of an event word's code; undefined for 0 (still running) or a code no kind has. */
export function eventKind(code: number): VmEventKind | undefined {
  return EVENT_KINDS.get(code);
}

export type VcpuMessage =
  | { type: 'running'; vcpu: number }
  | { type: 'sregs'; vcpu: number; rip: bigint; rsp: bigint; cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint }
  /** kvm_regs and kvm_sregs as KVM_GET_REGS / KVM_GET_SREGS filled them (copies). */
  | { type: 'regs'; vcpu: number; regs: Uint8Array; sregs: Uint8Array }
  | { type: 'event'; kind: VmEventKind; value: number; vcpu: number; detail: string }
  /** The debug registers were set (error: why KVM refused them). */
  | { type: 'debug-set'; vcpu: number; error: string | null }
  /** KVM_EXIT_DEBUG: the thread holds itself (`hold`) until the main thread releases it. */
  | { type: 'debug-hit'; vcpu: number; exception: number; pc: bigint; dr6: bigint }
  /** The thread's totals; `nanoseconds`: time in its run loop, from the go signal to the loop's end. */
  | {
      type: 'done';
      vcpu: number;
      runs: number;
      ioExits: number;
      mmioExits: number;
      dropped: number;
      ports: Record<string, number>;
      nanoseconds: number;
    };
