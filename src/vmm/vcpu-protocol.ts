// Shared words and messages between the VM's main thread (vm.ts) and its vCPU threads
// (vcpu-worker.ts).

/** Int32 slots of a vCPU's control buffer (`go`: 0 holds the thread before its first KVM_RUN). */
/** `pause`: the main thread holds the vCPU between two KVM_RUNs; `paused`: the thread says it is held. */
/** `debugRequest`: set the debug registers from DEBUG_REGS (answered by a `debug-set` message). */
/** `hold`: the thread stopped itself at a watchpoint hit until the main thread has looked (released to 0). */
export const VCPU_CTL = { stop: 0, tid: 1, state: 2, sregsRequest: 3, go: 4, regsRequest: 5, pause: 6, paused: 7, debugRequest: 8, hold: 9 } as const;
/** Byte offset of the BigUint64 [DR0, DR1, DR2, DR3, DR7] a `debugRequest` applies. */
export const DEBUG_REGS_OFFSET = 64;
export const VCPU_CTL_BYTES = 104;
export const VCPU_STATE = { starting: 0, running: 1, done: 2 } as const;

/** VM-wide end-of-run kinds (slot 0 of the event buffer; 0 = still running). */
export const EV = { exit: 1, reset: 2, tripleFault: 3, poweroff: 4, error: 5, hlt: 6 } as const;

export type VcpuMessage =
  | { type: 'running'; vcpu: number }
  | { type: 'sregs'; vcpu: number; rip: bigint; rsp: bigint; cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint }
  /** kvm_regs and kvm_sregs as KVM_GET_REGS / KVM_GET_SREGS filled them (copies). */
  | { type: 'regs'; vcpu: number; regs: Uint8Array; sregs: Uint8Array }
  | { type: 'event'; kind: number; value: number; vcpu: number; detail: string }
  /** The debug registers were set (error: why KVM refused them). */
  | { type: 'debug-set'; vcpu: number; error: string | null }
  /** KVM_EXIT_DEBUG: the thread holds itself (`hold`) until the main thread releases it. */
  | { type: 'debug-hit'; vcpu: number; exception: number; pc: bigint; dr6: bigint }
  | { type: 'done'; vcpu: number; runs: number; ioExits: number; mmioExits: number; dropped: number; ports: Record<string, number> };
