// Placeholder until the vCPU/VM state calls land (branch h17-kvm-state): the types the
// snapshot code is written against. Every call throws.

import type { Kvm, Vcpu, Vm } from './kvm.js';

export type VcpuState = Record<string, Uint8Array | number | bigint>;
export type VmState = Record<string, Uint8Array | number | bigint>;

export function saveVcpuState(_kvm: Kvm, _vcpu: Vcpu): VcpuState {
  throw new Error('vCPU state save is not built yet');
}
export function restoreVcpuState(_vcpu: Vcpu, _state: VcpuState): void {
  throw new Error('vCPU state restore is not built yet');
}
export function saveVmState(_vm: Vm): VmState {
  throw new Error('VM state save is not built yet');
}
export function restoreVmState(_vm: Vm, _state: VmState): void {
  throw new Error('VM state restore is not built yet');
}
