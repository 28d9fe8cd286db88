// A machine's state apart from guest RAM (Machine.captureState(), a snapshot's `state` file):
// every vCPU's and the VM's KVM state (src/kvm/vcpu-state.ts) and the UARTs' registers and
// buffered bytes (devices/serial.ts), and the port bus's machine registers (CMOS index,
// PM1_EN: devices/ports.ts).

import type { VcpuState, VmState } from '../../kvm/vcpu-state.js';
import type { PortBusState } from '../devices/ports.js';
import type { SerialState } from '../devices/serial.js';

export interface MachineState {
  vcpus: VcpuState[];
  vm: VmState;
  com1: SerialState;
  com2: SerialState;
  /** Absent in a state saved before the registers were (a fresh bus then). */
  ports?: PortBusState;
}
