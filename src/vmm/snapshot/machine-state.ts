// A machine's state apart from guest RAM (Machine.captureState(), a snapshot's `state` file):
// every vCPU's and the VM's KVM state (src/kvm/vcpu-state.ts) and the UARTs' registers and
// buffered bytes (devices/serial.ts). The per-vCPU port bus keeps only a CMOS index register,
// which a snapshot taken at a quiet point (the agent waiting) does not need.

import type { VcpuState, VmState } from '../../kvm/vcpu-state.js';
import type { SerialState } from '../devices/serial.js';

export interface MachineState {
  vcpus: VcpuState[];
  vm: VmState;
  com1: SerialState;
  com2: SerialState;
}
