// A raw 64-bit code image for Machine: no kernel, no firmware -- a flat GDT (code, data,
// TSS), page tables that identity-map the first 1 GiB with 2 MiB pages, and the code at a
// fixed address in 2 MiB of guest RAM. The boot CPU starts at the code in long mode with
// paging on (entry-state.ts). The doctor's calibration loop runs this way.

import { code64Segment, dataSegment, gdtEntry, PTE_PRESENT, PTE_PS, PTE_WRITE, tssSegment } from '../../kvm/x86.js';
import type { GuestMemory } from '../memory.js';
import type { BootEntry } from './entry-state.js';

/** Guest physical layout of a raw image. */
export const RAW_LAYOUT = {
  gdt: 0x1000,
  pml4: 0x2000,
  pdpt: 0x3000,
  pd: 0x4000,
  stackTop: 0x8000,
  code: 0x10000,
  /** Guest RAM size: 2 MiB. */
  ramSize: 0x200000,
} as const;

export const RAW_SELECTORS = { code: 0x08, data: 0x10, tss: 0x18 } as const;

/**
 * Writes the GDT, the page tables and `code` (at RAW_LAYOUT.code) into guest RAM, whose first
 * 128 KiB (tables, stack, and the start of the code page) are zeroed first; returns where
 * the boot CPU starts.
 */
export function writeRawImage(memory: GuestMemory, code: Uint8Array): BootEntry {
  const L = RAW_LAYOUT;
  if (code.length > L.ramSize - L.code)
    throw new RangeError(`a raw image's code is at most ${L.ramSize - L.code} bytes, not ${code.length}`);
  memory.fill(0, 0x20000);
  memory.writeU64(L.gdt, 0n);
  memory.writeU64(L.gdt + RAW_SELECTORS.code, gdtEntry(code64Segment(RAW_SELECTORS.code)));
  memory.writeU64(L.gdt + RAW_SELECTORS.data, gdtEntry(dataSegment(RAW_SELECTORS.data)));
  // 64-bit TSS descriptor: 16 bytes, the upper 8 hold base[63:32]; base 0, as the vCPU's TR.
  memory.writeU64(L.gdt + RAW_SELECTORS.tss, gdtEntry(tssSegment(RAW_SELECTORS.tss, 0n)));
  memory.writeU64(L.gdt + RAW_SELECTORS.tss + 8, 0n);
  memory.writeU64(L.pml4, BigInt(L.pdpt) | PTE_PRESENT | PTE_WRITE);
  memory.writeU64(L.pdpt, BigInt(L.pd) | PTE_PRESENT | PTE_WRITE);
  for (let i = 0; i < 512; i++) memory.writeU64(L.pd + 8 * i, (BigInt(i) << 21n) | PTE_PRESENT | PTE_WRITE | PTE_PS);
  memory.write(L.code, code);
  return {
    entry: L.code,
    bootParams: 0,
    cr3: L.pml4,
    gdt: L.gdt,
    gdtLimit: RAW_SELECTORS.tss + 16 - 1,
    stackTop: L.stackTop,
    selectors: RAW_SELECTORS,
  };
}
