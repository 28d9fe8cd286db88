// ELF64 little-endian reader for what the monitor needs from a vmlinux or an ELF core dump:
// the file header, program headers (PT_LOAD / PT_NOTE), section headers by name, notes and
// the `.symtab` symbols. Works on any random-access byte source (a Uint8Array in a browser, a
// file in Node), so a 40 MB vmlinux or a multi-GB core is never read whole just to parse it.
// Browser-safe: no Node APIs.

export class ElfError extends Error {}

/** Random access to a file's bytes. */
export interface ByteSource {
  readonly size: number;
  /** `len` bytes at `offset` (a fresh or borrowed view; the caller does not keep it across reads). */
  read(offset: number, len: number): Uint8Array;
}

export function bytesSource(input: Uint8Array): ByteSource {
  // a plain Uint8Array view: Node Buffers' slice() does not copy
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  return {
    size: bytes.length,
    read(offset, len) {
      if (offset < 0 || len < 0 || offset + len > bytes.length) throw new ElfError(`read [${offset}, +${len}) past the end (${bytes.length} bytes)`);
      return bytes.subarray(offset, offset + len);
    },
  };
}

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const ET_EXEC = 2;
export const ET_CORE = 4;
const SHT_SYMTAB = 2;
const MAX_HEADERS = 65535;
const MAX_NOTES = 100_000;

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

function safeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} 0x${v.toString(16)} is too large`);
  return Number(v);
}

function cString(bytes: Uint8Array, start: number): string {
  let end = start;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return new TextDecoder('latin1').decode(bytes.subarray(start, end));
}

export class ElfFile {
  readonly type: number;
  readonly machine: number;
  readonly programHeaders: readonly ProgramHeader[];
  readonly sections: readonly SectionHeader[];
  private symbolTable: Map<string, ElfSymbol> | undefined;

  constructor(readonly source: ByteSource, readonly label = 'ELF file') {
    if (source.size < 64) throw new ElfError(`${label}: too short for an ELF header (${source.size} bytes)`);
    const h = source.read(0, 64);
    if (h[0] !== 0x7f || h[1] !== 0x45 || h[2] !== 0x4c || h[3] !== 0x46) throw new ElfError(`${label}: not an ELF file (bad magic)`);
    if (h[4] !== 2) throw new ElfError(`${label}: not a 64-bit ELF file`);
    if (h[5] !== 1) throw new ElfError(`${label}: not a little-endian ELF file`);
    const v = new DataView(h.buffer, h.byteOffset, 64);
    this.type = v.getUint16(16, true);
    this.machine = v.getUint16(18, true);
    const phoff = safeNumber(v.getBigUint64(32, true), 'e_phoff');
    const shoff = safeNumber(v.getBigUint64(40, true), 'e_shoff');
    const phentsize = v.getUint16(54, true);
    let phnum = v.getUint16(56, true);
    const shentsize = v.getUint16(58, true);
    let shnum = v.getUint16(60, true);
    let shstrndx = v.getUint16(62, true);
    // extended numbering: the real counts live in section header 0
    if (shoff !== 0 && (shnum === 0 || phnum === 0xffff || shstrndx === 0xffff)) {
      if (shentsize < 64 || shoff + 64 > source.size) throw new ElfError(`${label}: section header 0 is out of the file`);
      const s0 = new DataView(source.read(shoff, 64).slice().buffer);
      if (shnum === 0) shnum = Math.min(safeNumber(s0.getBigUint64(32, true), 'sh_size'), MAX_HEADERS);
      if (phnum === 0xffff) phnum = Math.min(s0.getUint32(44, true), MAX_HEADERS);
      if (shstrndx === 0xffff) shstrndx = s0.getUint32(40, true);
    }
    this.programHeaders = this.readProgramHeaders(phoff, phentsize, phnum);
    this.sections = shoff === 0 ? [] : this.readSections(shoff, shentsize, shnum, shstrndx);
  }

  private readProgramHeaders(phoff: number, entsize: number, count: number): ProgramHeader[] {
    if (count === 0) return [];
    if (entsize < 56) throw new ElfError(`${this.label}: program header size ${entsize} < 56`);
    if (phoff + entsize * count > this.source.size) throw new ElfError(`${this.label}: program headers run past the end of the file`);
    const raw = this.source.read(phoff, entsize * count).slice();
    const v = new DataView(raw.buffer);
    const out: ProgramHeader[] = [];
    for (let i = 0; i < count; i++) {
      const o = i * entsize;
      out.push({
        type: v.getUint32(o, true),
        flags: v.getUint32(o + 4, true),
        offset: safeNumber(v.getBigUint64(o + 8, true), 'p_offset'),
        vaddr: v.getBigUint64(o + 16, true),
        paddr: v.getBigUint64(o + 24, true),
        filesz: safeNumber(v.getBigUint64(o + 32, true), 'p_filesz'),
        memsz: safeNumber(v.getBigUint64(o + 40, true), 'p_memsz'),
      });
    }
    return out;
  }

  private readSections(shoff: number, entsize: number, count: number, strndx: number): SectionHeader[] {
    if (count === 0) return [];
    if (entsize < 64) throw new ElfError(`${this.label}: section header size ${entsize} < 64`);
    if (shoff + entsize * count > this.source.size) throw new ElfError(`${this.label}: section headers run past the end of the file`);
    const raw = this.source.read(shoff, entsize * count).slice();
    const v = new DataView(raw.buffer);
    const rows = [];
    for (let i = 0; i < count; i++) {
      const o = i * entsize;
      rows.push({
        nameOff: v.getUint32(o, true),
        type: v.getUint32(o + 4, true),
        addr: v.getBigUint64(o + 16, true),
        offset: safeNumber(v.getBigUint64(o + 24, true), 'sh_offset'),
        size: safeNumber(v.getBigUint64(o + 32, true), 'sh_size'),
        link: v.getUint32(o + 40, true),
        entsize: safeNumber(v.getBigUint64(o + 56, true), 'sh_entsize'),
      });
    }
    const strtab = rows[strndx];
    const names = strtab !== undefined && strtab.offset + strtab.size <= this.source.size
      ? this.source.read(strtab.offset, strtab.size).slice() : new Uint8Array(0);
    return rows.map((r) => ({
      name: r.nameOff < names.length ? cString(names, r.nameOff) : '',
      type: r.type, addr: r.addr, offset: r.offset, size: r.size, link: r.link, entsize: r.entsize,
    }));
  }

  section(name: string): SectionHeader | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** A section's bytes (copied). */
  sectionBytes(section: SectionHeader): Uint8Array {
    if (section.offset + section.size > this.source.size) throw new ElfError(`${this.label}: section ${section.name} runs past the end of the file`);
    return this.source.read(section.offset, section.size).slice();
  }

  /** Every note in every PT_NOTE segment. */
  notes(): ElfNote[] {
    const out: ElfNote[] = [];
    for (const ph of this.programHeaders) {
      if (ph.type !== PT_NOTE || ph.filesz === 0) continue;
      if (ph.offset + ph.filesz > this.source.size) throw new ElfError(`${this.label}: note segment runs past the end of the file`);
      const raw = this.source.read(ph.offset, ph.filesz).slice();
      const v = new DataView(raw.buffer);
      let o = 0;
      while (o + 12 <= raw.length && out.length < MAX_NOTES) {
        const namesz = v.getUint32(o, true);
        const descsz = v.getUint32(o + 4, true);
        const type = v.getUint32(o + 8, true);
        const nameStart = o + 12;
        const descStart = nameStart + ((namesz + 3) & ~3);
        const next = descStart + ((descsz + 3) & ~3);
        if (descStart > raw.length || descStart + descsz > raw.length) throw new ElfError(`${this.label}: truncated note at segment offset ${o}`);
        const nameBytes = raw.subarray(nameStart, nameStart + namesz);
        const zero = nameBytes.indexOf(0);
        out.push({ name: new TextDecoder('latin1').decode(zero >= 0 ? nameBytes.subarray(0, zero) : nameBytes), type, desc: raw.slice(descStart, descStart + descsz) });
        o = next;
      }
    }
    return out;
  }

  /** The `.symtab` symbols by name (first definition wins). */
  symbols(): Map<string, ElfSymbol> {
    if (this.symbolTable !== undefined) return this.symbolTable;
    const table = new Map<string, ElfSymbol>();
    const symtab = this.sections.find((s) => s.type === SHT_SYMTAB);
    if (symtab !== undefined) {
      const strtab = this.sections[symtab.link];
      if (strtab === undefined) throw new ElfError(`${this.label}: .symtab links to a missing string table`);
      const strings = this.sectionBytes(strtab);
      const raw = this.sectionBytes(symtab);
      const v = new DataView(raw.buffer);
      const entsize = symtab.entsize >= 24 ? symtab.entsize : 24;
      const decoder = new TextDecoder('latin1');
      for (let o = 0; o + 24 <= raw.length; o += entsize) {
        const nameOff = v.getUint32(o, true);
        if (nameOff === 0 || nameOff >= strings.length) continue;
        let end = nameOff;
        while (end < strings.length && strings[end] !== 0) end++;
        const name = decoder.decode(strings.subarray(nameOff, end));
        if (table.has(name)) continue;
        const shndx = v.getUint16(o + 6, true);
        if (shndx === 0) continue; // undefined
        table.set(name, { name, value: v.getBigUint64(o + 8, true), size: safeNumber(v.getBigUint64(o + 16, true), 'st_size'), type: raw[o + 4] & 0xf });
      }
    }
    this.symbolTable = table;
    return table;
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
