// ELF core dumps of a guest's physical memory, as written by QEMU's `dump-guest-memory`
// (ELF format) and by kdump (/proc/vmcore): the PT_LOAD segments give guest physical ranges
// (p_paddr) and where their bytes are in the file; the notes give VMCOREINFO and, for QEMU,
// each vCPU's control registers. Browser-safe (works on any ByteSource).

import { ElfFile, ElfError, ET_CORE, PT_LOAD, type ByteSource } from '../elf/file.js';
import { Vmcoreinfo } from './vmcoreinfo.js';

const EM_X86_64 = 62;
/** QEMUCPUState (QEMU target/i386 dump notes): version, size, 18 GPRs/rip/rflags, 10 segments
 * of 24 bytes, then cr[0..4]. */
const QEMU_CPU_CR0 = 8 + 18 * 8 + 10 * 24;

export interface DumpSegment {
  /** Guest physical start. */
  pa: number;
  fileOffset: number;
  size: number;
}

export interface DumpCpu {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
}

export interface CoreDump {
  segments: DumpSegment[];
  vmcoreinfo: Vmcoreinfo | null;
  /** Control registers per vCPU (QEMU dumps only). */
  cpus: DumpCpu[];
  /** Bytes of guest memory in the segments. */
  totalBytes: number;
}

export function readCoreDump(source: ByteSource, label = 'core dump'): CoreDump {
  const elf = new ElfFile(source, label);
  if (elf.type !== ET_CORE) throw new ElfError(`${label}: ELF type ${elf.type} is not a core dump (ET_CORE = 4)`);
  if (elf.machine !== EM_X86_64) throw new ElfError(`${label}: machine ${elf.machine} is not x86-64`);
  const loads = elf.programHeaders.filter((p) => p.type === PT_LOAD && p.filesz > 0);
  if (loads.length === 0) throw new ElfError(`${label}: no PT_LOAD segment holds memory`);
  const segments: DumpSegment[] = [];
  // kdump adds a kernel-text segment that repeats part of RAM: keep the first covering range
  const sorted = [...loads].sort((a, b) => (a.paddr < b.paddr ? -1 : a.paddr > b.paddr ? 1 : b.filesz - a.filesz));
  let covered = -1;
  for (const p of sorted) {
    if (p.paddr > BigInt(Number.MAX_SAFE_INTEGER))
      throw new ElfError(`${label}: segment physical address 0x${p.paddr.toString(16)} is too large`);
    const pa = Number(p.paddr);
    if (p.offset + p.filesz > source.size)
      throw new ElfError(
        `${label}: segment at physical 0x${pa.toString(16)} runs past the end of the file (truncated dump?)`,
      );
    if (pa + p.filesz <= covered) continue;
    if (pa < covered) throw new ElfError(`${label}: segments overlap partly at physical 0x${pa.toString(16)}`);
    segments.push({ pa, fileOffset: p.offset, size: p.filesz });
    covered = pa + p.filesz;
  }
  let vmcoreinfo: Vmcoreinfo | null = null;
  const cpus: DumpCpu[] = [];
  for (const note of elf.notes()) {
    if (note.name === 'VMCOREINFO' && vmcoreinfo === null) vmcoreinfo = Vmcoreinfo.fromNote(note.desc);
    if (note.name === 'QEMU' && note.desc.length >= QEMU_CPU_CR0 + 40) {
      const v = new DataView(note.desc.buffer, note.desc.byteOffset, note.desc.byteLength);
      cpus.push({
        cr0: v.getBigUint64(QEMU_CPU_CR0, true),
        cr3: v.getBigUint64(QEMU_CPU_CR0 + 24, true),
        cr4: v.getBigUint64(QEMU_CPU_CR0 + 32, true),
      });
    }
  }
  return { segments, vmcoreinfo, cpus, totalBytes: segments.reduce((s, x) => s + x.size, 0) };
}
