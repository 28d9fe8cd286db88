// The boot CPU's registers at a 64-bit entry point: flat code and data segments from the
// image's GDT, a TSS, paging on through the image's page tables (CR3), long mode active,
// RIP at the entry, RSI at the boot parameters and RSP at the stack top. Linux's boot state
// (boot/index.ts) is one such entry, a raw code image (boot/raw-image.ts) another.

import { KvmRegs, type KvmSregs } from '../../kvm/structs.js';
import {
  CR0_ET,
  CR0_NE,
  CR0_PE,
  CR0_PG,
  CR4_PAE,
  EFER_LMA,
  EFER_LME,
  code64Segment,
  dataSegment,
  tssSegment,
  unusableLdt,
} from '../../kvm/x86.js';
import { BOOT_SELECTORS } from './index.js';

/** GDT selectors of the flat 64-bit code segment, the flat data segment and the 64-bit TSS. */
export interface GdtSelectors {
  code: number;
  data: number;
  tss: number;
}

/** Where an image leaves the boot CPU: what its registers are set from. */
export interface BootEntry {
  entry: number;
  /** RSI at entry (Linux: struct boot_params). */
  bootParams: number;
  /** The identity-mapped page tables' root (CR3). */
  cr3: number;
  gdt: number;
  gdtLimit: number;
  stackTop: number;
  /** The GDT's selectors; default BOOT_SELECTORS (Linux's). */
  selectors?: GdtSelectors;
}

/** Sets the segments, descriptor tables and control registers of a 64-bit entry in `s`. */
export function bootSregs(s: KvmSregs, boot: BootEntry): KvmSregs {
  const sel = boot.selectors ?? BOOT_SELECTORS;
  s.setSegment('cs', code64Segment(sel.code));
  for (const r of ['ds', 'es', 'fs', 'gs', 'ss'] as const) s.setSegment(r, dataSegment(sel.data));
  s.setSegment('tr', tssSegment(sel.tss, 0n));
  s.setSegment('ldt', unusableLdt());
  s.setDtable('gdt', { base: BigInt(boot.gdt), limit: boot.gdtLimit });
  s.setDtable('idt', { base: 0n, limit: 0 });
  s.set('cr0', CR0_PE | CR0_ET | CR0_NE | CR0_PG);
  s.set('cr3', BigInt(boot.cr3));
  s.set('cr4', CR4_PAE);
  s.set('efer', EFER_LME | EFER_LMA);
  return s;
}

/** The general registers at the entry: RIP, RSI, RSP and RFLAGS' reserved bit. */
export function bootRegs(boot: BootEntry): KvmRegs {
  const regs = new KvmRegs();
  regs.set('rip', boot.entry).set('rsi', boot.bootParams).set('rsp', boot.stackTop).set('rflags', 2n);
  return regs;
}
