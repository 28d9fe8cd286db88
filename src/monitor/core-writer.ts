// ELF cores of a guest's physical memory, in the shape QEMU's `dump-guest-memory` (ELF,
// paging=false) gives them, so that readCoreDump / `ktstr-wasm inspect --core`, crash and
// drgn open what we write: ELF64 x86-64 ET_CORE; one PT_NOTE holding one NT_PRSTATUS ("CORE")
// per vCPU (general registers), then one "QEMU" note per vCPU (QEMUCPUState: registers,
// segments with their bases, CR0..CR4), then the guest's VMCOREINFO note; one PT_LOAD per RAM
// region (p_paddr = guest physical, p_vaddr 0). Segment data starts page-aligned and every
// all-zero 4 KiB page is left out of the writes, so a file sink that seeks (positioned
// writes, then a truncate to `fileBytes`) leaves holes: a core costs the disk the guest
// touched. Memory is handed over as views and written run by run, never copied whole.
// Browser-safe: the bytes go to a `CoreSink` (src/cell/core-file.ts is the Node file sink).
//
// Facts used (not code): the ELF64 header and program header layout; struct elf_prstatus on
// x86-64 (336 bytes: pr_pid at 32, pr_reg = user_regs_struct at 112); QEMU's QEMUCPUState
// (version 1; 24-byte segments {selector, limit, flags, pad, base}); the kernel keeps its
// VMCOREINFO text at `vmcoreinfo_data` (a page pointer) with its length in `vmcoreinfo_size`
// (kernel/vmcore_info.c).

import type { GuestKernel } from './guest-kernel.js';

export class CoreWriteError extends Error {}

export const CORE_PAGE = 4096;
const EHDR = 64;
const PHDR = 56;
const PT_LOAD = 1;
const PT_NOTE = 4;
const NT_PRSTATUS = 1;
const PRSTATUS_SIZE = 336;
const PRSTATUS_PID = 32;
const PRSTATUS_REGS = 112;
const QEMU_CPU_STATE_VERSION = 1;
/** version, size; 18 registers; 10 segments; cr[5]; kernel_gs_base. */
const QEMU_CPU_STATE_SIZE = 8 + 18 * 8 + 10 * 24 + 5 * 8 + 8;
/** The largest run of pages handed to the sink in one write. */
const MAX_RUN = 8 * 1024 * 1024;
/** VMCOREINFO_BYTES is one page on x86-64. */
const MAX_VMCOREINFO = 4096;

/** A segment register as KVM reports it (kvm_segment's fields we need). */
export interface CoreSegment {
  selector: number;
  base: bigint;
  limit: number;
  type: number;
  s: number;
  dpl: number;
  present: number;
  avl: number;
  l: number;
  db: number;
  g: number;
}

export type CoreGpr =
  | 'rax'
  | 'rbx'
  | 'rcx'
  | 'rdx'
  | 'rsi'
  | 'rdi'
  | 'rsp'
  | 'rbp'
  | 'r8'
  | 'r9'
  | 'r10'
  | 'r11'
  | 'r12'
  | 'r13'
  | 'r14'
  | 'r15'
  | 'rip'
  | 'rflags';

/** One vCPU's registers at dump time (the shape of src/vmm's VcpuRegisters). */
export interface CoreCpu {
  gprs: Record<CoreGpr, bigint>;
  segments: Record<'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt', CoreSegment>;
  gdt: { base: bigint; limit: number };
  idt: { base: bigint; limit: number };
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
}

/** One RAM region: its guest physical start and a view of its bytes (not copied). */
export interface CoreRegion {
  pa: number;
  bytes: Uint8Array;
}

export interface CoreInput {
  regions: readonly CoreRegion[];
  /** One entry per vCPU, in order; null: registers unknown (its notes hold zeros, pid still index + 1). */
  cpus: readonly (CoreCpu | null)[];
  /** The guest's VMCOREINFO text; null: no VMCOREINFO note. */
  vmcoreinfo: string | null;
}

/** Where the bytes go: positioned writes; the caller sets the file length to `fileBytes` afterwards. */
export interface CoreSink {
  write(bytes: Uint8Array, position: number): void;
}

export interface CoreWriteStats {
  /** The core's length (apparent size). */
  fileBytes: number;
  /** Bytes of guest memory in the segments. */
  memoryBytes: number;
  /** Bytes actually written (headers, notes, non-zero pages). */
  writtenBytes: number;
  zeroPages: number;
  pages: number;
}

function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name + '\0');
  const pad = (n: number): number => (n + 3) & ~3;
  const out = new Uint8Array(12 + pad(nameBytes.length) + pad(desc.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, nameBytes.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(desc, 12 + pad(nameBytes.length));
  return out;
}

/** user_regs_struct order (x86-64). */
const USER_REGS = [
  'r15',
  'r14',
  'r13',
  'r12',
  'rbp',
  'rbx',
  'r11',
  'r10',
  'r9',
  'r8',
  'rax',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'orig_rax',
  'rip',
  'cs',
  'eflags',
  'rsp',
  'ss',
  'fs_base',
  'gs_base',
  'ds',
  'es',
  'fs',
  'gs',
] as const;

function userReg(cpu: CoreCpu, name: (typeof USER_REGS)[number]): bigint {
  switch (name) {
    case 'orig_rax':
      return BigInt.asUintN(64, -1n);
    case 'eflags':
      return cpu.gprs.rflags;
    case 'cs':
    case 'ss':
    case 'ds':
    case 'es':
    case 'fs':
    case 'gs':
      return BigInt(cpu.segments[name].selector);
    case 'fs_base':
      return cpu.segments.fs.base;
    case 'gs_base':
      return cpu.segments.gs.base;
    default:
      return cpu.gprs[name];
  }
}

/** NT_PRSTATUS descriptor (struct elf_prstatus, x86-64) for vCPU `index`. */
export function prstatus(index: number, cpu: CoreCpu | null): Uint8Array {
  const d = new Uint8Array(PRSTATUS_SIZE);
  const v = new DataView(d.buffer);
  v.setUint32(PRSTATUS_PID, index + 1, true);
  if (cpu !== null)
    USER_REGS.forEach((r, i) => v.setBigUint64(PRSTATUS_REGS + i * 8, BigInt.asUintN(64, userReg(cpu, r)), true));
  return d;
}

/** Descriptor attribute bits as in the high dword of a segment descriptor (QEMU's segment flags). */
function segmentFlags(s: CoreSegment): number {
  return (
    ((s.type & 0xf) << 8) |
    ((s.s & 1) << 12) |
    ((s.dpl & 3) << 13) |
    ((s.present & 1) << 15) |
    ((s.avl & 1) << 20) |
    ((s.l & 1) << 21) |
    ((s.db & 1) << 22) |
    ((s.g & 1) << 23)
  );
}

/** QEMUCPUState descriptor (the "QEMU" note) for one vCPU. */
export function qemuCpuState(cpu: CoreCpu | null): Uint8Array {
  const d = new Uint8Array(QEMU_CPU_STATE_SIZE);
  const v = new DataView(d.buffer);
  v.setUint32(0, QEMU_CPU_STATE_VERSION, true);
  v.setUint32(4, QEMU_CPU_STATE_SIZE, true);
  if (cpu === null) return d;
  let o = 8;
  const u64 = (x: bigint): void => {
    v.setBigUint64(o, BigInt.asUintN(64, x), true);
    o += 8;
  };
  for (const r of [
    'rax',
    'rbx',
    'rcx',
    'rdx',
    'rsi',
    'rdi',
    'rsp',
    'rbp',
    'r8',
    'r9',
    'r10',
    'r11',
    'r12',
    'r13',
    'r14',
    'r15',
    'rip',
    'rflags',
  ] as const)
    u64(cpu.gprs[r]);
  const seg = (selector: number, limit: number, flags: number, base: bigint): void => {
    v.setUint32(o, selector, true);
    v.setUint32(o + 4, limit >>> 0, true);
    v.setUint32(o + 8, flags >>> 0, true);
    v.setBigUint64(o + 16, BigInt.asUintN(64, base), true);
    o += 24;
  };
  for (const r of ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldt', 'tr'] as const) {
    const s = cpu.segments[r];
    seg(s.selector, s.limit, segmentFlags(s), s.base);
  }
  seg(0, cpu.gdt.limit, 0, cpu.gdt.base);
  seg(0, cpu.idt.limit, 0, cpu.idt.base);
  for (const cr of [cpu.cr0, 0n, cpu.cr2, cpu.cr3, cpu.cr4]) u64(cr); // cr[1] does not exist
  u64(0n); // kernel_gs_base: an MSR KVM_GET_SREGS does not give
  return d;
}

/** The PT_NOTE payload: every vCPU's NT_PRSTATUS, then every vCPU's QEMU note, then VMCOREINFO. */
export function coreNotes(input: Pick<CoreInput, 'cpus' | 'vmcoreinfo'>): Uint8Array {
  const parts: Uint8Array[] = [];
  input.cpus.forEach((c, i) => parts.push(note('CORE', NT_PRSTATUS, prstatus(i, c))));
  for (const c of input.cpus) parts.push(note('QEMU', 0, qemuCpuState(c)));
  if (input.vmcoreinfo !== null) parts.push(note('VMCOREINFO', 0, new TextEncoder().encode(input.vmcoreinfo)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Where each region's bytes go in the file; throws on input a core cannot describe. */
function plan(
  input: CoreInput,
  notesSize: number,
): { headerBytes: number; dataStart: number; offsets: number[]; fileBytes: number } {
  if (input.regions.length === 0) throw new CoreWriteError('no memory region to write');
  if (input.regions.length + 1 >= 0xffff)
    throw new CoreWriteError(`${input.regions.length} regions: more program headers than an ELF header counts`);
  const sorted = [...input.regions].sort((a, b) => a.pa - b.pa);
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i];
    if (!Number.isSafeInteger(r.pa) || r.pa < 0 || r.pa % CORE_PAGE !== 0)
      throw new CoreWriteError(`region at 0x${r.pa.toString(16)}: not a page-aligned guest physical address`);
    if (r.bytes.length === 0 || r.bytes.length % CORE_PAGE !== 0)
      throw new CoreWriteError(
        `region at 0x${r.pa.toString(16)}: size ${r.bytes.length} is not a non-zero multiple of ${CORE_PAGE}`,
      );
    if (i > 0 && sorted[i - 1].pa + sorted[i - 1].bytes.length > r.pa)
      throw new CoreWriteError(`regions at 0x${sorted[i - 1].pa.toString(16)} and 0x${r.pa.toString(16)} overlap`);
  }
  const headerBytes = EHDR + PHDR * (input.regions.length + 1);
  const dataStart = Math.ceil((headerBytes + notesSize) / CORE_PAGE) * CORE_PAGE;
  const offsets: number[] = [];
  let at = dataStart;
  for (const r of input.regions) {
    offsets.push(at);
    at += r.bytes.length;
  }
  return { headerBytes, dataStart, offsets, fileBytes: at };
}

/** ELF header + program headers. */
function headers(input: CoreInput, notesOffset: number, notesSize: number, offsets: number[]): Uint8Array {
  const n = input.regions.length + 1;
  const out = new Uint8Array(EHDR + PHDR * n);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE
  v.setUint16(16, 4, true); // ET_CORE
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(32, BigInt(EHDR), true); // e_phoff
  v.setUint16(52, EHDR, true);
  v.setUint16(54, PHDR, true);
  v.setUint16(56, n, true);
  const ph = (i: number, type: number, flags: number, offset: number, paddr: number, size: number): void => {
    const o = EHDR + i * PHDR;
    v.setUint32(o, type, true);
    v.setUint32(o + 4, flags, true);
    v.setBigUint64(o + 8, BigInt(offset), true);
    v.setBigUint64(o + 16, 0n, true); // p_vaddr: paging=false dumps carry physical addresses only
    v.setBigUint64(o + 24, BigInt(paddr), true);
    v.setBigUint64(o + 32, BigInt(size), true);
    v.setBigUint64(o + 40, BigInt(size), true);
    v.setBigUint64(o + 48, 0n, true);
  };
  ph(0, PT_NOTE, 0, notesOffset, 0, notesSize);
  input.regions.forEach((r, i) => ph(i + 1, PT_LOAD, 7, offsets[i], r.pa, r.bytes.length));
  return out;
}

function isZeroPage(bytes: Uint8Array, at: number): boolean {
  // 4 bytes at a time where aligned (guest RAM regions are page-aligned views)
  if ((bytes.byteOffset + at) % 4 === 0) {
    const w = new Int32Array(bytes.buffer, bytes.byteOffset + at, CORE_PAGE / 4);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < CORE_PAGE; i++) if (bytes[at + i] !== 0) return false;
  return true;
}

/**
 * Writes the core to `sink`: headers and notes, then each region's non-zero pages at their
 * positions (runs of at most 8 MiB). All-zero pages are never written: the caller's file,
 * extended to `fileBytes`, has holes there.
 */
export function writeCore(input: CoreInput, sink: CoreSink): CoreWriteStats {
  const notes = coreNotes(input);
  const p = plan(input, notes.length);
  const head = headers(input, p.headerBytes, notes.length, p.offsets);
  sink.write(head, 0);
  sink.write(notes, p.headerBytes);
  let written = head.length + notes.length;
  let zeroPages = 0;
  let pages = 0;
  input.regions.forEach((r, i) => {
    const b = r.bytes;
    let runStart = -1;
    const flush = (end: number): void => {
      if (runStart < 0) return;
      sink.write(b.subarray(runStart, end), p.offsets[i] + runStart);
      written += end - runStart;
      runStart = -1;
    };
    for (let at = 0; at < b.length; at += CORE_PAGE) {
      pages++;
      if (isZeroPage(b, at)) {
        zeroPages++;
        flush(at);
      } else {
        if (runStart < 0) runStart = at;
        if (at + CORE_PAGE - runStart >= MAX_RUN) flush(at + CORE_PAGE);
      }
    }
    flush(b.length);
  });
  return {
    fileBytes: p.fileBytes,
    memoryBytes: input.regions.reduce((n, r) => n + r.bytes.length, 0),
    writtenBytes: written,
    zeroPages,
    pages,
  };
}

/**
 * The guest kernel's own VMCOREINFO text (what kdump and QEMU's vmcoreinfo device publish),
 * read from guest memory: `vmcoreinfo_data` points at it, `vmcoreinfo_size` is its length.
 * Throws CoreWriteError saying why when it cannot be read (no such symbols: a kernel without
 * CONFIG_VMCORE_INFO; unmapped; not VMCOREINFO text).
 */
export function guestVmcoreinfo(guest: GuestKernel): string {
  for (const s of ['vmcoreinfo_data', 'vmcoreinfo_size']) {
    if (!guest.hasSymbol(s)) throw new CoreWriteError(`the kernel has no ${s} (built without CONFIG_VMCORE_INFO?)`);
  }
  const data = guest.read64(guest.symbolKva('vmcoreinfo_data'));
  const size = guest.read64(guest.symbolKva('vmcoreinfo_size'));
  if (data === null || size === null)
    throw new CoreWriteError('vmcoreinfo_data/vmcoreinfo_size are not readable in guest memory');
  if (data === 0n || size === 0n)
    throw new CoreWriteError('the guest has not filled its VMCOREINFO yet (vmcoreinfo_data or vmcoreinfo_size is 0)');
  if (size > BigInt(MAX_VMCOREINFO))
    throw new CoreWriteError(`vmcoreinfo_size ${size} is larger than a page: not believed`);
  const bytes = guest.readBytes(data, Number(size));
  if (bytes === null) throw new CoreWriteError(`the VMCOREINFO text at 0x${data.toString(16)} is not mapped`);
  const z = bytes.indexOf(0);
  const text = new TextDecoder('latin1').decode(z >= 0 ? bytes.subarray(0, z) : bytes);
  if (!/^OSRELEASE=/m.test(text))
    throw new CoreWriteError('the text at vmcoreinfo_data is not VMCOREINFO (no OSRELEASE= line)');
  return text;
}
