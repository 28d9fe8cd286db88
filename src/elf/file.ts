// The one ELF reader of the project: ELF64 little-endian files (a vmlinux, a shared library,
// an ELF core dump) over any random-access byte source (a Uint8Array in a browser, a file in
// Node via ./file-source.ts), so a 40 MB vmlinux or a multi-GB core is never read whole just
// to parse it. The file header is read at construction; program headers, section headers,
// notes and `.symtab` symbols on first use (errors about them are raised then). The
// identification bytes of any ELF file (class, data encoding, type, machine) can be read
// without the ELF64 layout. Every count and extent is checked against the source before a
// read. Browser-safe: no Node APIs. Users: src/monitor, src/vmm/boot, src/guest.

import { SymbolIndex, SymbolIndexError } from './symbol-index.js';

export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElfError';
  }
}

/** Random access to a file's bytes. */
export interface ByteSource {
  readonly size: number;
  /** `len` bytes at `offset` (a fresh or borrowed view; the caller does not keep it across reads). */
  read(offset: number, len: number): Uint8Array;
}

export function bytesSource(input: Uint8Array): ByteSource {
  // a plain Uint8Array view (slice() on a Node buffer would not copy)
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  return {
    size: bytes.length,
    read(offset, len) {
      if (offset < 0 || len < 0 || offset + len > bytes.length)
        throw new ElfError(`read [${offset}, +${len}) past the end (${bytes.length} bytes)`);
      return bytes.subarray(offset, offset + len);
    },
  };
}

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const ET_EXEC = 2;
export const ET_CORE = 4;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EM_X86_64 = 62;
const SHT_SYMTAB = 2;
const MAX_HEADERS = 65535;
const MAX_NOTES = 100_000;

/** e_ident and the class-independent e_type / e_machine. */
export interface ElfIdent {
  /** EI_CLASS: 1 = ELFCLASS32, 2 = ELFCLASS64. */
  elfClass: number;
  /** EI_DATA: 1 = little-endian, 2 = big-endian. */
  data: number;
  type: number;
  machine: number;
}

/** The ELF64 file header fields the reader uses (counts as written, before extended numbering). */
export interface ElfHeader extends ElfIdent {
  entry: bigint;
  phoff: number;
  phentsize: number;
  phnum: number;
  shoff: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: number;
}

export interface SectionHeader {
  name: string;
  type: number;
  addr: bigint;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

export interface ElfSymbol {
  name: string;
  value: bigint;
  size: number;
  type: number;
}

function safeNumber(v: bigint, what: string, label: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${label}: ${what} 0x${v.toString(16)} is too large`);
  return Number(v);
}

const latin1 = new TextDecoder('latin1');

function cString(bytes: Uint8Array, start: number): string {
  let end = start;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return latin1.decode(bytes.subarray(start, end));
}

/** A copy of `len` bytes at `offset`, or an ElfError with `message()` when they are not all in the file. */
function readChecked(source: ByteSource, offset: number, len: number, message: () => string): Uint8Array {
  if (offset + len > source.size) throw new ElfError(message());
  return source.read(offset, len).slice();
}

/** Class, data encoding, type and machine of any ELF file; ElfError when it is not one. */
export function readElfIdent(source: ByteSource, label = 'ELF file'): ElfIdent {
  if (source.size < 20) throw new ElfError(`${label}: too short for an ELF header (${source.size} bytes)`);
  const h = source.read(0, 20);
  if (h[0] !== 0x7f || h[1] !== 0x45 || h[2] !== 0x4c || h[3] !== 0x46)
    throw new ElfError(`${label}: not an ELF file (bad magic)`);
  const v = new DataView(h.buffer, h.byteOffset, 20);
  const little = h[5] !== 2;
  return { elfClass: h[4], data: h[5], type: v.getUint16(16, little), machine: v.getUint16(18, little) };
}

/** The ELF64 little-endian file header; ElfError for anything else. */
export function readElfHeader(source: ByteSource, label = 'ELF file'): ElfHeader {
  const ident = readElfIdent(source, label);
  if (ident.elfClass !== ELFCLASS64) throw new ElfError(`${label}: not a 64-bit ELF file`);
  if (ident.data !== ELFDATA2LSB) throw new ElfError(`${label}: not a little-endian ELF file`);
  if (source.size < 64) throw new ElfError(`${label}: too short for an ELF header (${source.size} bytes)`);
  const h = source.read(0, 64);
  const v = new DataView(h.buffer, h.byteOffset, 64);
  return {
    ...ident,
    entry: v.getBigUint64(24, true),
    phoff: safeNumber(v.getBigUint64(32, true), 'e_phoff', label),
    shoff: safeNumber(v.getBigUint64(40, true), 'e_shoff', label),
    phentsize: v.getUint16(54, true),
    phnum: v.getUint16(56, true),
    shentsize: v.getUint16(58, true),
    shnum: v.getUint16(60, true),
    shstrndx: v.getUint16(62, true),
  };
}

export class ElfFile {
  readonly header: ElfHeader;
  private phCache: ProgramHeader[] | undefined;
  private shCache: SectionHeader[] | undefined;
  private symbolTable: Map<string, ElfSymbol> | undefined;
  private index: SymbolIndex | undefined;

  constructor(
    readonly source: ByteSource,
    readonly label = 'ELF file',
  ) {
    this.header = readElfHeader(source, label);
  }

  get type(): number {
    return this.header.type;
  }
  get machine(): number {
    return this.header.machine;
  }

  /** Section header 0, which holds the real counts when the header fields overflow (extended numbering). */
  private extendedCounts(): { phnum: number; shnum: number; shstrndx: number } {
    const { shoff, shentsize } = this.header;
    let { phnum, shnum, shstrndx } = this.header;
    if (shoff !== 0 && (shnum === 0 || phnum === 0xffff || shstrndx === 0xffff)) {
      if (shentsize < 64) throw new ElfError(`${this.label}: section header 0 is out of the file`);
      const s0 = new DataView(
        readChecked(this.source, shoff, 64, () => `${this.label}: section header 0 is out of the file`).buffer,
      );
      if (shnum === 0) shnum = Math.min(safeNumber(s0.getBigUint64(32, true), 'sh_size', this.label), MAX_HEADERS);
      if (phnum === 0xffff) phnum = Math.min(s0.getUint32(44, true), MAX_HEADERS);
      if (shstrndx === 0xffff) shstrndx = s0.getUint32(40, true);
    }
    return { phnum, shnum, shstrndx };
  }

  get programHeaders(): readonly ProgramHeader[] {
    this.phCache ??= this.readProgramHeaders();
    return this.phCache;
  }

  get sections(): readonly SectionHeader[] {
    this.shCache ??= this.header.shoff === 0 ? [] : this.readSections();
    return this.shCache;
  }

  private readProgramHeaders(): ProgramHeader[] {
    const { phoff, phentsize: entsize } = this.header;
    const count = this.extendedCounts().phnum;
    if (count === 0) return [];
    if (entsize < 56) throw new ElfError(`${this.label}: program header size ${entsize} < 56`);
    const raw = readChecked(
      this.source,
      phoff,
      entsize * count,
      () => `${this.label}: program headers run past the end of the file`,
    );
    const v = new DataView(raw.buffer);
    const out: ProgramHeader[] = [];
    for (let i = 0; i < count; i++) {
      const o = i * entsize;
      out.push({
        type: v.getUint32(o, true),
        flags: v.getUint32(o + 4, true),
        offset: safeNumber(v.getBigUint64(o + 8, true), 'p_offset', this.label),
        vaddr: v.getBigUint64(o + 16, true),
        paddr: v.getBigUint64(o + 24, true),
        filesz: safeNumber(v.getBigUint64(o + 32, true), 'p_filesz', this.label),
        memsz: safeNumber(v.getBigUint64(o + 40, true), 'p_memsz', this.label),
      });
    }
    return out;
  }

  private readSections(): SectionHeader[] {
    const { shoff, shentsize: entsize } = this.header;
    const { shnum: count, shstrndx: strndx } = this.extendedCounts();
    if (count === 0) return [];
    if (entsize < 64) throw new ElfError(`${this.label}: section header size ${entsize} < 64`);
    const raw = readChecked(
      this.source,
      shoff,
      entsize * count,
      () => `${this.label}: section headers run past the end of the file`,
    );
    const v = new DataView(raw.buffer);
    const rows = [];
    for (let i = 0; i < count; i++) {
      const o = i * entsize;
      rows.push({
        nameOff: v.getUint32(o, true),
        type: v.getUint32(o + 4, true),
        addr: v.getBigUint64(o + 16, true),
        offset: safeNumber(v.getBigUint64(o + 24, true), 'sh_offset', this.label),
        size: safeNumber(v.getBigUint64(o + 32, true), 'sh_size', this.label),
        link: v.getUint32(o + 40, true),
        entsize: safeNumber(v.getBigUint64(o + 56, true), 'sh_entsize', this.label),
      });
    }
    const strtab = rows[strndx];
    const names =
      strtab !== undefined && strtab.offset + strtab.size <= this.source.size
        ? this.source.read(strtab.offset, strtab.size).slice()
        : new Uint8Array(0);
    return rows.map((r) => ({
      name: r.nameOff < names.length ? cString(names, r.nameOff) : '',
      type: r.type,
      addr: r.addr,
      offset: r.offset,
      size: r.size,
      link: r.link,
      entsize: r.entsize,
    }));
  }

  section(name: string): SectionHeader | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** A section's bytes (copied). */
  sectionBytes(section: SectionHeader): Uint8Array {
    return readChecked(
      this.source,
      section.offset,
      section.size,
      () => `${this.label}: section ${section.name} runs past the end of the file`,
    );
  }

  /** A segment's file bytes (p_filesz, copied). */
  segmentBytes(ph: ProgramHeader, what = 'segment'): Uint8Array {
    return readChecked(this.source, ph.offset, ph.filesz, () => `${this.label}: ${what} runs past the end of the file`);
  }

  /** Every note in every PT_NOTE segment. */
  notes(): ElfNote[] {
    const out: ElfNote[] = [];
    for (const ph of this.programHeaders) {
      if (ph.type !== PT_NOTE || ph.filesz === 0) continue;
      const raw = this.segmentBytes(ph, 'note segment');
      const v = new DataView(raw.buffer);
      let o = 0;
      while (o + 12 <= raw.length && out.length < MAX_NOTES) {
        const namesz = v.getUint32(o, true);
        const descsz = v.getUint32(o + 4, true);
        const type = v.getUint32(o + 8, true);
        const nameStart = o + 12;
        const descStart = nameStart + ((namesz + 3) & ~3);
        const next = descStart + ((descsz + 3) & ~3);
        if (descStart > raw.length || descStart + descsz > raw.length)
          throw new ElfError(`${this.label}: truncated note at segment offset ${o}`);
        const nameBytes = raw.subarray(nameStart, nameStart + namesz);
        const zero = nameBytes.indexOf(0);
        out.push({
          name: latin1.decode(zero >= 0 ? nameBytes.subarray(0, zero) : nameBytes),
          type,
          desc: raw.slice(descStart, descStart + descsz),
        });
        o = next;
      }
    }
    return out;
  }

  /** The `.symtab` symbols by name (first definition wins). */
  symbols(): Map<string, ElfSymbol> {
    if (this.symbolTable !== undefined) return this.symbolTable;
    const table = new Map<string, ElfSymbol>();
    for (const sym of this.symbolIndex().entries()) table.set(sym.name, sym);
    this.symbolTable = table;
    return table;
  }

  /** The `.symtab` symbols as a compact index (no object per symbol; see symbol-index.ts); empty without a .symtab. */
  symbolIndex(): SymbolIndex {
    if (this.index !== undefined) return this.index;
    const symtab = this.sections.find((s) => s.type === SHT_SYMTAB);
    if (symtab === undefined) this.index = new SymbolIndex(new Uint8Array(0), new Uint8Array(0), 24, this.label);
    else {
      const strtab = this.sections[symtab.link];
      if (strtab === undefined) throw new ElfError(`${this.label}: .symtab links to a missing string table`);
      try {
        this.index = new SymbolIndex(this.sectionBytes(strtab), this.sectionBytes(symtab), symtab.entsize, this.label);
      } catch (e) {
        if (e instanceof SymbolIndexError) throw new ElfError(e.message);
        throw e;
      }
    }
    return this.index;
  }

  /** Bytes at link-time virtual address `addr` from the PT_LOAD segment holding them. */
  readVirtual(addr: bigint, len: number): Uint8Array | undefined {
    for (const ph of this.programHeaders) {
      if (ph.type !== PT_LOAD) continue;
      if (addr >= ph.vaddr && addr + BigInt(len) <= ph.vaddr + BigInt(ph.filesz)) {
        return this.source.read(ph.offset + Number(addr - ph.vaddr), len).slice();
      }
    }
    return undefined;
  }
}
