// DataView-based views of the KVM structs the vCPU setup passes to ioctl:
// kvm_userspace_memory_region, kvm_regs, kvm_sregs (with kvm_segment and kvm_dtable),
// kvm_cpuid2 (with its kvm_cpuid_entry2 array), and the encoders of the variable-length
// kvm_msrs and kvm_irq_routing.
// Each view owns a right-sized ArrayBuffer (or wraps one at an offset) and is passed to
// `ioctl` as its `bytes`. Offsets come from layout.ts (checked against the C headers).
// 64-bit fields are bigints.

import {
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_DTABLE,
  KVM_IRQ_ROUTING,
  KVM_IRQ_ROUTING_ENTRY,
  KVM_MSR_ENTRY,
  KVM_MSRS,
  KVM_REGS,
  KVM_SEGMENT,
  KVM_SREGS,
  KVM_USERSPACE_MEMORY_REGION,
  type StructLayout,
} from './layout.js';

/** A fixed-size C struct over bytes: `view` for field access, `bytes` for ioctl. */
export class StructView {
  readonly view: DataView;
  readonly bytes: Uint8Array;

  constructor(
    readonly layout: StructLayout,
    buffer?: ArrayBufferLike,
    byteOffset = 0,
  ) {
    const buf = buffer ?? new ArrayBuffer(layout.size);
    this.view = new DataView(buf, byteOffset, layout.size);
    this.bytes = new Uint8Array(buf, byteOffset, layout.size);
  }

  protected u64(off: number): bigint {
    return this.view.getBigUint64(off, true);
  }
  protected setU64(off: number, v: bigint | number): void {
    this.view.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
  }
  protected u32(off: number): number {
    return this.view.getUint32(off, true);
  }
  protected setU32(off: number, v: number): void {
    this.view.setUint32(off, v >>> 0, true);
  }
}

export interface MemoryRegionFields {
  slot: number;
  flags: number;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
}

/** struct kvm_userspace_memory_region (KVM_SET_USER_MEMORY_REGION). */
export class UserspaceMemoryRegion extends StructView {
  constructor(fields?: Partial<MemoryRegionFields>) {
    super(KVM_USERSPACE_MEMORY_REGION);
    if (fields) this.assign(fields);
  }
  assign(f: Partial<MemoryRegionFields>): this {
    if (f.slot !== undefined) this.slot = f.slot;
    if (f.flags !== undefined) this.flags = f.flags;
    if (f.guestPhysAddr !== undefined) this.guestPhysAddr = f.guestPhysAddr;
    if (f.memorySize !== undefined) this.memorySize = f.memorySize;
    if (f.userspaceAddr !== undefined) this.userspaceAddr = f.userspaceAddr;
    return this;
  }
  get slot(): number {
    return this.u32(KVM_USERSPACE_MEMORY_REGION.offsets.slot);
  }
  set slot(v: number) {
    this.setU32(KVM_USERSPACE_MEMORY_REGION.offsets.slot, v);
  }
  get flags(): number {
    return this.u32(KVM_USERSPACE_MEMORY_REGION.offsets.flags);
  }
  set flags(v: number) {
    this.setU32(KVM_USERSPACE_MEMORY_REGION.offsets.flags, v);
  }
  get guestPhysAddr(): bigint {
    return this.u64(KVM_USERSPACE_MEMORY_REGION.offsets.guest_phys_addr);
  }
  set guestPhysAddr(v: bigint) {
    this.setU64(KVM_USERSPACE_MEMORY_REGION.offsets.guest_phys_addr, v);
  }
  get memorySize(): bigint {
    return this.u64(KVM_USERSPACE_MEMORY_REGION.offsets.memory_size);
  }
  set memorySize(v: bigint) {
    this.setU64(KVM_USERSPACE_MEMORY_REGION.offsets.memory_size, v);
  }
  get userspaceAddr(): bigint {
    return this.u64(KVM_USERSPACE_MEMORY_REGION.offsets.userspace_addr);
  }
  set userspaceAddr(v: bigint) {
    this.setU64(KVM_USERSPACE_MEMORY_REGION.offsets.userspace_addr, v);
  }
}

export type RegName = keyof typeof KVM_REGS.offsets;
export const REG_NAMES = Object.keys(KVM_REGS.offsets) as RegName[];

/** struct kvm_regs (KVM_GET_REGS / KVM_SET_REGS). */
export class KvmRegs extends StructView {
  constructor(buffer?: ArrayBufferLike, byteOffset = 0) {
    super(KVM_REGS, buffer, byteOffset);
  }
  get(name: RegName): bigint {
    return this.u64(KVM_REGS.offsets[name]);
  }
  set(name: RegName, value: bigint | number): this {
    this.setU64(KVM_REGS.offsets[name], value);
    return this;
  }
  toObject(): Record<RegName, bigint> {
    return Object.fromEntries(REG_NAMES.map((n) => [n, this.get(n)])) as Record<RegName, bigint>;
  }
}

/** struct kvm_segment: the hidden (descriptor-cache) part of a segment register. */
export interface KvmSegment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** struct kvm_dtable: GDTR / IDTR. */
export interface KvmDtable {
  base: bigint;
  limit: number;
}

export type SegmentName = 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt';
export type DtableName = 'gdt' | 'idt';
export type ControlName = 'cr0' | 'cr2' | 'cr3' | 'cr4' | 'cr8' | 'efer' | 'apic_base';
export const SEGMENT_NAMES: readonly SegmentName[] = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'];

const SEG = KVM_SEGMENT.offsets;
const SEG_BYTES = ['type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const;

/** struct kvm_sregs (KVM_GET_SREGS / KVM_SET_SREGS). */
export class KvmSregs extends StructView {
  constructor(buffer?: ArrayBufferLike, byteOffset = 0) {
    super(KVM_SREGS, buffer, byteOffset);
  }

  segment(name: SegmentName): KvmSegment {
    const o = KVM_SREGS.offsets[name];
    const v = this.view;
    return {
      base: v.getBigUint64(o + SEG.base, true),
      limit: v.getUint32(o + SEG.limit, true),
      selector: v.getUint16(o + SEG.selector, true),
      type: v.getUint8(o + SEG.type),
      present: v.getUint8(o + SEG.present),
      dpl: v.getUint8(o + SEG.dpl),
      db: v.getUint8(o + SEG.db),
      s: v.getUint8(o + SEG.s),
      l: v.getUint8(o + SEG.l),
      g: v.getUint8(o + SEG.g),
      avl: v.getUint8(o + SEG.avl),
      unusable: v.getUint8(o + SEG.unusable),
    };
  }

  setSegment(name: SegmentName, seg: KvmSegment): this {
    const o = KVM_SREGS.offsets[name];
    const v = this.view;
    v.setBigUint64(o + SEG.base, BigInt.asUintN(64, seg.base), true);
    v.setUint32(o + SEG.limit, seg.limit >>> 0, true);
    v.setUint16(o + SEG.selector, seg.selector, true);
    for (const k of SEG_BYTES) v.setUint8(o + SEG[k], seg[k]);
    v.setUint8(o + SEG.padding, 0);
    return this;
  }

  dtable(name: DtableName): KvmDtable {
    const o = KVM_SREGS.offsets[name];
    return {
      base: this.view.getBigUint64(o + KVM_DTABLE.offsets.base, true),
      limit: this.view.getUint16(o + KVM_DTABLE.offsets.limit, true),
    };
  }

  setDtable(name: DtableName, t: KvmDtable): this {
    const o = KVM_SREGS.offsets[name];
    this.view.setBigUint64(o + KVM_DTABLE.offsets.base, BigInt.asUintN(64, t.base), true);
    this.view.setUint16(o + KVM_DTABLE.offsets.limit, t.limit, true);
    return this;
  }

  get(name: ControlName): bigint {
    return this.u64(KVM_SREGS.offsets[name]);
  }
  set(name: ControlName, value: bigint | number): this {
    this.setU64(KVM_SREGS.offsets[name], value);
    return this;
  }

  /** One 64-bit word of the pending-interrupt bitmap (4 words, 256 vectors). */
  interruptBitmap(word: number): bigint {
    if (word < 0 || word > 3) throw new RangeError('interrupt_bitmap has 4 words');
    return this.u64(KVM_SREGS.offsets.interrupt_bitmap + 8 * word);
  }
}

/** One CPUID leaf/subleaf as KVM reports and takes it (struct kvm_cpuid_entry2). */
export interface CpuidEntry {
  function: number;
  index: number;
  /** KVM_CPUID_FLAG_* (bit 0: the index is significant). */
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

const CPUID_REGS = ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const;

/**
 * struct kvm_cpuid2 with room for `capacity` entries (KVM_GET_SUPPORTED_CPUID,
 * KVM_SET_CPUID2). `nent` is the number of valid entries.
 */
export class KvmCpuid2 {
  readonly bytes: Uint8Array;
  readonly view: DataView;

  constructor(readonly capacity: number) {
    this.bytes = new Uint8Array(KVM_CPUID2.size + capacity * KVM_CPUID_ENTRY2.size);
    this.view = new DataView(this.bytes.buffer);
    this.nent = capacity;
  }

  static from(entries: readonly CpuidEntry[]): KvmCpuid2 {
    const c = new KvmCpuid2(entries.length);
    entries.forEach((e, i) => c.setEntry(i, e));
    return c;
  }

  get nent(): number {
    return this.view.getUint32(KVM_CPUID2.offsets.nent, true);
  }
  set nent(n: number) {
    if (n < 0 || n > this.capacity) throw new RangeError(`nent ${n} exceeds the capacity ${this.capacity}`);
    this.view.setUint32(KVM_CPUID2.offsets.nent, n, true);
  }

  entry(i: number): CpuidEntry {
    if (i < 0 || i >= this.nent) throw new RangeError(`cpuid entry ${i} of ${this.nent}`);
    const base = KVM_CPUID2.offsets.entries + i * KVM_CPUID_ENTRY2.size;
    const e = {} as CpuidEntry;
    for (const k of CPUID_REGS) e[k] = this.view.getUint32(base + KVM_CPUID_ENTRY2.offsets[k], true);
    return e;
  }

  setEntry(i: number, e: CpuidEntry): this {
    if (i < 0 || i >= this.capacity) throw new RangeError(`cpuid entry ${i} of capacity ${this.capacity}`);
    const base = KVM_CPUID2.offsets.entries + i * KVM_CPUID_ENTRY2.size;
    for (const k of CPUID_REGS) this.view.setUint32(base + KVM_CPUID_ENTRY2.offsets[k], e[k] >>> 0, true);
    return this;
  }

  entries(): CpuidEntry[] {
    return Array.from({ length: this.nent }, (_, i) => this.entry(i));
  }

  /** The entry for a leaf (and subleaf, when the entry's index is significant). */
  find(fn: number, index = 0): CpuidEntry | undefined {
    return this.entries().find((e) => e.function === fn && ((e.flags & 1) === 0 || e.index === index));
  }
}

/** An MSR and its value, as KVM_GET_MSRS / KVM_SET_MSRS take them. */
export type MsrEntry = [index: number, data: bigint];

/** struct kvm_msrs with the entries (KVM_SET_MSRS; for KVM_GET_MSRS the data is filled in). */
export function encodeMsrs(msrs: readonly MsrEntry[]): Uint8Array {
  const b = new Uint8Array(KVM_MSRS.size + KVM_MSR_ENTRY.size * msrs.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(KVM_MSRS.offsets.nmsrs, msrs.length, true);
  msrs.forEach(([index, data], i) => {
    const o = KVM_MSRS.offsets.entries + KVM_MSR_ENTRY.size * i;
    dv.setUint32(o + KVM_MSR_ENTRY.offsets.index, index, true);
    dv.setBigUint64(o + KVM_MSR_ENTRY.offsets.data, BigInt.asUintN(64, data), true);
  });
  return b;
}

/** The first `count` entries of an encoded kvm_msrs. */
export function decodeMsrs(b: Uint8Array, count: number): MsrEntry[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: count }, (_, i): MsrEntry => {
    const o = KVM_MSRS.offsets.entries + KVM_MSR_ENTRY.size * i;
    return [dv.getUint32(o + KVM_MSR_ENTRY.offsets.index, true), dv.getBigUint64(o + KVM_MSR_ENTRY.offsets.data, true)];
  });
}

/** A GSI wired to a pin of an in-kernel interrupt controller (chip 0: master PIC, 1: slave PIC, 2: I/O APIC). */
export interface IrqchipRoute {
  gsi: number;
  chip: number;
  pin: number;
}

/** KVM_IRQ_ROUTING_IRQCHIP: a routing entry whose union is { irqchip, pin }. */
export const KVM_IRQ_ROUTING_IRQCHIP = 1;

/** struct kvm_irq_routing with one KVM_IRQ_ROUTING_IRQCHIP entry per route (KVM_SET_GSI_ROUTING). */
export function encodeIrqRouting(routes: readonly IrqchipRoute[]): Uint8Array {
  const b = new Uint8Array(KVM_IRQ_ROUTING.size + routes.length * KVM_IRQ_ROUTING_ENTRY.size);
  const v = new DataView(b.buffer);
  v.setUint32(KVM_IRQ_ROUTING.offsets.nr, routes.length, true);
  routes.forEach((r, i) => {
    const o = KVM_IRQ_ROUTING.offsets.entries + i * KVM_IRQ_ROUTING_ENTRY.size;
    v.setUint32(o + KVM_IRQ_ROUTING_ENTRY.offsets.gsi, r.gsi, true);
    v.setUint32(o + KVM_IRQ_ROUTING_ENTRY.offsets.type, KVM_IRQ_ROUTING_IRQCHIP, true);
    v.setUint32(o + KVM_IRQ_ROUTING_ENTRY.offsets.u, r.chip, true);
    v.setUint32(o + KVM_IRQ_ROUTING_ENTRY.offsets.u + 4, r.pin, true);
  });
  return b;
}
