// x86-64 architectural bits a VMM sets when it puts a vCPU straight into long mode:
// CR0/CR4/EFER flags, page-table entry flags, and the segment descriptors of a flat
// 64-bit GDT in both forms (the 8-byte GDT entry in guest memory and the kvm_segment KVM
// loads into the hidden segment state). Values from the Intel SDM / AMD APM.

import type { KvmSegment } from './structs.js';

export const CR0_PE = 1n << 0n;
export const CR0_MP = 1n << 1n;
export const CR0_ET = 1n << 4n;
export const CR0_NE = 1n << 5n;
export const CR0_WP = 1n << 16n;
export const CR0_AM = 1n << 18n;
export const CR0_PG = 1n << 31n;

export const CR4_PAE = 1n << 5n;
export const CR4_PGE = 1n << 7n;
export const CR4_OSFXSR = 1n << 9n;
export const CR4_OSXMMEXCPT = 1n << 10n;

export const EFER_SCE = 1n << 0n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;

/** RFLAGS bit 1 is reserved and always set. */
export const RFLAGS_RESERVED = 2n;

/** Page-table entry flags. */
export const PTE_PRESENT = 1n << 0n;
export const PTE_WRITE = 1n << 1n;
export const PTE_USER = 1n << 2n;
/** Page size: a 2 MiB page in a page-directory entry, 1 GiB in a PDPT entry. */
export const PTE_PS = 1n << 7n;

/** Segment types (the 4-bit type field). */
export const SEG_TYPE_CODE_XR_ACCESSED = 0xb;
export const SEG_TYPE_DATA_RW_ACCESSED = 0x3;
export const SEG_TYPE_TSS64_BUSY = 0xb;
export const SEG_TYPE_LDT = 0x2;

/** Encodes an 8-byte GDT descriptor from the kvm_segment fields. */
export function gdtEntry(seg: KvmSegment): bigint {
  const base = seg.base & 0xffffffffn;
  // With G set the descriptor holds the limit in 4 KiB units.
  const limit = BigInt(seg.g ? seg.limit >>> 12 : seg.limit) & 0xfffffn;
  const access = BigInt(seg.type | (seg.s << 4) | (seg.dpl << 5) | (seg.present << 7));
  const flags = BigInt(seg.avl | (seg.l << 1) | (seg.db << 2) | (seg.g << 3));
  return (
    (limit & 0xffffn) |
    ((base & 0xffffffn) << 16n) |
    (access << 40n) |
    (((limit >> 16n) & 0xfn) << 48n) |
    (flags << 52n) |
    (((base >> 24n) & 0xffn) << 56n)
  );
}

/** The flat 64-bit code segment (L=1, D=0), ring 0. */
export function code64Segment(selector: number): KvmSegment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector,
    type: SEG_TYPE_CODE_XR_ACCESSED,
    present: 1,
    dpl: 0,
    db: 0,
    s: 1,
    l: 1,
    g: 1,
    avl: 0,
    unusable: 0,
  };
}

/** A flat read/write data segment, ring 0. */
export function dataSegment(selector: number): KvmSegment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector,
    type: SEG_TYPE_DATA_RW_ACCESSED,
    present: 1,
    dpl: 0,
    db: 1,
    s: 1,
    l: 0,
    g: 1,
    avl: 0,
    unusable: 0,
  };
}

/** A busy 64-bit TSS (VMX requires a usable TR on entry). */
export function tssSegment(selector: number, base: bigint, limit = 0x67): KvmSegment {
  return {
    base,
    limit,
    selector,
    type: SEG_TYPE_TSS64_BUSY,
    present: 1,
    dpl: 0,
    db: 0,
    s: 0,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 0,
  };
}

/** An unusable LDT (selector 0). */
export function unusableLdt(): KvmSegment {
  return {
    base: 0n,
    limit: 0,
    selector: 0,
    type: SEG_TYPE_LDT,
    present: 0,
    dpl: 0,
    db: 0,
    s: 0,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 1,
  };
}
