// An uncompressed x86-64 `vmlinux`: ELF64 little-endian, EM_X86_64, ET_EXEC. Its PT_LOAD
// segments go to their physical addresses (p_paddr); the 64-bit entry is e_entry made
// physical (the kernel links `ENTRY(phys_startup_64)`, so it normally is already; a virtual
// e_entry is moved by the vaddr-paddr delta of the segment holding it). Every offset and
// size is checked against the file before it is used.

import { BootImageError } from './errors.js';

export interface LoadSegment {
  paddr: number;
  /** Bytes from the file (p_filesz). */
  data: Uint8Array;
  /** p_memsz: bytes to reserve; the part past data is zero (bss). */
  memsz: number;
}

export interface VmlinuxImage {
  kind: 'elf';
  segments: LoadSegment[];
  /** Physical address of the 64-bit entry point. */
  entry: number;
  /** Lowest and highest physical byte (exclusive) the segments cover. */
  low: number;
  high: number;
}

const PT_LOAD = 1;
const EM_X86_64 = 62;
const MAX_PHNUM = 256;

export function isElf(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

function num(v: bigint, what: string, path?: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BootImageError(`ELF ${what} 0x${v.toString(16)} is out of range`, path);
  return Number(v);
}

export function parseVmlinux(buf: Uint8Array, path?: string): VmlinuxImage {
  if (!isElf(buf)) throw new BootImageError('not an ELF file', path);
  if (buf.length < 64) throw new BootImageError(`truncated ELF header (${buf.length} bytes)`, path);
  if (buf[4] !== 2) throw new BootImageError('not a 64-bit ELF (EI_CLASS is not ELFCLASS64)', path);
  if (buf[5] !== 1) throw new BootImageError('not a little-endian ELF', path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_X86_64) throw new BootImageError(`ELF machine ${machine} is not x86-64 (62)`, path);
  const type = dv.getUint16(16, true);
  if (type !== 2) throw new BootImageError(`ELF type ${type} is not ET_EXEC: not a vmlinux`, path);
  const entryRaw = dv.getBigUint64(24, true);
  const phoff = num(dv.getBigUint64(32, true), 'e_phoff', path);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phentsize < 56) throw new BootImageError(`ELF e_phentsize ${phentsize} is smaller than 56`, path);
  if (phnum === 0 || phnum > MAX_PHNUM) throw new BootImageError(`ELF has ${phnum} program headers`, path);
  if (phoff + phnum * phentsize > buf.length) throw new BootImageError(`truncated ELF: program headers end at ${phoff + phnum * phentsize}, file is ${buf.length} bytes`, path);
  const segments: LoadSegment[] = [];
  let entry: number | undefined;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (dv.getUint32(o, true) !== PT_LOAD) continue;
    const offset = num(dv.getBigUint64(o + 8, true), 'p_offset', path);
    const vaddr = dv.getBigUint64(o + 16, true);
    const paddrBig = dv.getBigUint64(o + 24, true);
    const paddr = num(paddrBig, 'p_paddr', path);
    const filesz = num(dv.getBigUint64(o + 32, true), 'p_filesz', path);
    const memsz = num(dv.getBigUint64(o + 40, true), 'p_memsz', path);
    if (filesz > memsz) throw new BootImageError(`PT_LOAD ${i}: p_filesz ${filesz} > p_memsz ${memsz}`, path);
    if (offset + filesz > buf.length) throw new BootImageError(`truncated ELF: PT_LOAD ${i} needs bytes up to ${offset + filesz}, file is ${buf.length} bytes`, path);
    segments.push({ paddr, data: buf.subarray(offset, offset + filesz), memsz });
    if (entryRaw >= vaddr && entryRaw < vaddr + BigInt(memsz)) entry = num(entryRaw - vaddr + paddrBig, 'entry', path);
  }
  if (segments.length === 0) throw new BootImageError('ELF has no PT_LOAD segment', path);
  const low = Math.min(...segments.map((s) => s.paddr));
  const high = Math.max(...segments.map((s) => s.paddr + s.memsz));
  if (entry === undefined) {
    // Already physical (phys_startup_64)?
    const e = num(entryRaw, 'e_entry', path);
    if (e >= low && e < high) entry = e;
    else throw new BootImageError(`ELF entry 0x${entryRaw.toString(16)} lies in no PT_LOAD segment`, path);
  }
  return { kind: 'elf', segments, entry, low, high };
}
