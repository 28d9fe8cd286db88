// A device's interrupt line as the VMM hands it in: devices raise and lower a level and know
// nothing of where it goes. The VMM wires it to KVM_IRQ_LINE on the VM fd
// (kvm-setup.ts irqLineTrigger); tests hand in a function that records the levels.

/**
 * Drives one interrupt line to `level` (1 asserted, 0 deasserted). Called only when the level
 * changes, on whichever thread changed the device's state: each thread's device handle gets
 * its own trigger, and what it drives must be safe to drive from any thread.
 */
export type IrqTrigger = (level: 0 | 1) => void;
