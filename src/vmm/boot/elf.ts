// An uncompressed x86-64 `vmlinux`: ELF64 little-endian, EM_X86_64, ET_EXEC. Its PT_LOAD
// segments go to their physical addresses (p_paddr); the 64-bit entry is e_entry made
// physical (the kernel links `ENTRY(phys_startup_64)`, so it normally is already; a virtual
// e_entry is moved by the vaddr-paddr delta of the segment holding it). Every offset and
// size is checked against the file before it is used. The headers are read by the shared
// ELF reader (src/elf/file.ts); the checks a bootable kernel needs are made here. Over a
// file (parseVmlinuxFile), only the headers are read up front: writeBoot() later reads each
// segment straight into guest RAM, so the ~40 MB file (symbols, BTF) is never read whole.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { BootImageError } from './errors.js';
import {
  ELFCLASS64,
  ELFDATA2LSB,
  EM_X86_64,
  ET_EXEC,
  ElfError,
  ElfFile,
  PT_LOAD,
  bytesSource,
  readElfIdent,
  type ByteSource,
  type ProgramHeader,
} from '../../elf/file.js';
import { fileSource } from '../../elf/file-source.js';

export interface LoadSegment {
  paddr: number;
  /** p_offset: where its bytes start in the file. */
  offset: number;
  /** p_filesz: bytes from the file. */
  filesz: number;
  /** p_memsz: bytes to reserve; the part past filesz is zero (bss). */
  memsz: number;
}

export interface VmlinuxImage {
  kind: 'elf';
  segments: LoadSegment[];
  /** Copies a segment's file bytes into `into` (filesz bytes, e.g. a view of guest RAM). */
  readSegment(segment: LoadSegment, into: Uint8Array): void;
  /** Physical address of the 64-bit entry point. */
  entry: number;
  /** Lowest and highest physical byte (exclusive) the segments cover. */
  low: number;
  high: number;
}

const MAX_PHNUM = 256;

export function isElf(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

function num(v: bigint, what: string, path?: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new BootImageError(`ELF ${what} 0x${v.toString(16)} is out of range`, path);
  return Number(v);
}

/** e_entry and the program headers, through the shared reader; its errors become BootImageErrors. */
function readHeaders(source: ByteSource, path?: string): { entry: bigint; programHeaders: readonly ProgramHeader[] } {
  if (source.size < 4 || !isElf(source.read(0, 4))) throw new BootImageError('not an ELF file', path);
  if (source.size < 64) throw new BootImageError(`truncated ELF header (${source.size} bytes)`, path);
  const { elfClass, data, machine, type } = readElfIdent(source);
  if (elfClass !== ELFCLASS64) throw new BootImageError('not a 64-bit ELF (EI_CLASS is not ELFCLASS64)', path);
  if (data !== ELFDATA2LSB) throw new BootImageError('not a little-endian ELF', path);
  if (machine !== EM_X86_64) throw new BootImageError(`ELF machine ${machine} is not x86-64 (62)`, path);
  if (type !== ET_EXEC) throw new BootImageError(`ELF type ${type} is not ET_EXEC: not a vmlinux`, path);
  try {
    const elf = new ElfFile(source, 'ELF');
    const { phoff, phentsize, phnum } = elf.header;
    if (phentsize < 56) throw new BootImageError(`ELF e_phentsize ${phentsize} is smaller than 56`, path);
    if (phnum === 0 || phnum > MAX_PHNUM) throw new BootImageError(`ELF has ${phnum} program headers`, path);
    if (phoff + phnum * phentsize > source.size)
      throw new BootImageError(
        `truncated ELF: program headers end at ${phoff + phnum * phentsize}, file is ${source.size} bytes`,
        path,
      );
    return { entry: elf.header.entry, programHeaders: elf.programHeaders };
  } catch (err) {
    if (err instanceof ElfError) throw new BootImageError(err.message, path);
    throw err;
  }
}

/** A vmlinux in memory. */
export function parseVmlinux(buf: Uint8Array, path?: string): VmlinuxImage {
  return parseVmlinuxSource(bytesSource(buf), path, (seg, into) =>
    into.set(buf.subarray(seg.offset, seg.offset + seg.filesz)),
  );
}

/**
 * A vmlinux file: the headers are read and checked now; each segment is read from the file
 * when written into guest RAM (the file must still have the size it had here).
 */
export function parseVmlinuxFile(path: string): VmlinuxImage {
  const fd = openSync(path, 'r');
  let size: number;
  let image: VmlinuxImage;
  try {
    const source = fileSource(fd, path);
    size = source.size;
    image = parseVmlinuxSource(source, path, (seg, into) => readSegmentFromFile(path, size, seg, into));
  } catch (err) {
    if (err instanceof ElfError) throw new BootImageError(err.message, path);
    throw err;
  } finally {
    closeSync(fd);
  }
  return image;
}

function readSegmentFromFile(path: string, size: number, seg: LoadSegment, into: Uint8Array): void {
  const fd = openSync(path, 'r');
  try {
    const now = fstatSync(fd).size;
    if (now !== size) throw new BootImageError(`changed while booting (${size} bytes when checked, ${now} now)`, path);
    for (let done = 0; done < seg.filesz;) {
      const n = readSync(fd, into, done, seg.filesz - done, seg.offset + done);
      if (n === 0) throw new BootImageError(`ended early at byte ${seg.offset + done}`, path);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

function parseVmlinuxSource(
  source: ByteSource,
  path: string | undefined,
  readSegment: VmlinuxImage['readSegment'],
): VmlinuxImage {
  const { entry: entryRaw, programHeaders } = readHeaders(source, path);
  const segments: LoadSegment[] = [];
  let entry: number | undefined;
  programHeaders.forEach((ph, i) => {
    if (ph.type !== PT_LOAD) return;
    const { offset, filesz, memsz } = ph;
    const paddr = num(ph.paddr, 'p_paddr', path);
    if (filesz > memsz) throw new BootImageError(`PT_LOAD ${i}: p_filesz ${filesz} > p_memsz ${memsz}`, path);
    if (offset + filesz > source.size)
      throw new BootImageError(
        `truncated ELF: PT_LOAD ${i} needs bytes up to ${offset + filesz}, file is ${source.size} bytes`,
        path,
      );
    segments.push({ paddr, offset, filesz, memsz });
    if (entryRaw >= ph.vaddr && entryRaw < ph.vaddr + BigInt(memsz))
      entry = num(entryRaw - ph.vaddr + ph.paddr, 'entry', path);
  });
  if (segments.length === 0) throw new BootImageError('ELF has no PT_LOAD segment', path);
  const low = Math.min(...segments.map((s) => s.paddr));
  const high = Math.max(...segments.map((s) => s.paddr + s.memsz));
  if (entry === undefined) {
    // Already physical (phys_startup_64)?
    const e = num(entryRaw, 'e_entry', path);
    if (e >= low && e < high) entry = e;
    else throw new BootImageError(`ELF entry 0x${entryRaw.toString(16)} lies in no PT_LOAD segment`, path);
  }
  return { kind: 'elf', segments, entry, low, high, readSegment };
}
