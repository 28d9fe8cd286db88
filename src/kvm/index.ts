// src/kvm: KVM ioctl numbers, struct layouts and a minimal Kvm/Vm/Vcpu wrapper over the
// native syscall binding. Imported by src/vmm and doctor.

export * from './constants.js';
export * from './ioctl.js';
export * from './layout.js';
export * from './structs.js';
export * from './run.js';
export * from './x86.js';
export * from './kick.js';
export { Kvm, Vm, Vcpu, MAX_IO_MSRS, type KvmClockData, type MapMemoryOptions, type MemorySlot } from './kvm.js';
export * from './vcpu-state.js';
export {
  native,
  isErrnoError,
  type NativeBinding,
  type NativeConstants,
  type ErrnoError,
  type IoctlArg,
} from './native.js';
