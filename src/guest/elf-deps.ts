// The shared-library closure of ELF executables, found the way the dynamic loader finds it:
// the program interpreter from PT_INTERP, then every DT_NEEDED entry of every loaded object,
// resolved breadth first through DT_RPATH (of the object and its loaders, when it has no
// DT_RUNPATH), DT_RUNPATH (of the object itself), then the standard Debian library
// directories. $ORIGIN, $LIB and $PLATFORM are expanded. Only ELF files of the same class and
// machine as the executable are accepted. No subprocess (ldd) is run: the ELF64 headers,
// program headers and dynamic section are parsed here.

import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, posix, resolve } from 'node:path';

/** The library directories searched after RPATH/RUNPATH (ld.so.conf order on Debian amd64). */
export const DEFAULT_LIBRARY_DIRS: readonly string[] = [
  '/usr/local/lib/x86_64-linux-gnu',
  '/usr/local/lib',
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/lib64',
  '/usr/lib64',
  '/lib',
  '/usr/lib',
];

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

/** What the loader needs to know about one ELF file. */
export interface ElfInfo {
  path: string;
  /** 1 = ELFCLASS32, 2 = ELFCLASS64. */
  elfClass: number;
  machine: number;
  /** ET_EXEC = 2, ET_DYN = 3. */
  type: number;
  interpreter?: string;
  needed: string[];
  soname?: string;
  rpath: string[];
  runpath: string[];
  /** True when the file has a PT_DYNAMIC segment. */
  dynamic: boolean;
}

export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElfError';
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

function cString(buf: Buffer, offset: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 ? buf.length : end);
}

/** Parses the ELF header, program headers and dynamic section of `path` (ELF64 little-endian). */
export function readElf(path: string): ElfInfo {
  const fd = openSync(path, 'r');
  try {
    const eh = readAt(fd, 0, 64);
    if (eh.length < 20 || eh.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${path}: not an ELF file`);
    const elfClass = eh[4]!;
    const data = eh[5]!;
    const type = eh.readUInt16LE(16);
    const machine = eh.readUInt16LE(18);
    const info: ElfInfo = { path, elfClass, machine, type, needed: [], rpath: [], runpath: [], dynamic: false };
    if (elfClass !== 2 || data !== 1) return info; // only ELF64 LE is followed further
    if (eh.length < 64) throw new ElfError(`${path}: truncated ELF header`);
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    if (phentsize < 56 || phnum === 0) return info;
    const ph = readAt(fd, phoff, phentsize * phnum);
    const loads: { vaddr: number; offset: number; filesz: number }[] = [];
    let dynamic: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (o + 56 > ph.length) break;
      const pType = ph.readUInt32LE(o);
      const offset = Number(ph.readBigUInt64LE(o + 8));
      const vaddr = Number(ph.readBigUInt64LE(o + 16));
      const filesz = Number(ph.readBigUInt64LE(o + 32));
      if (pType === PT_LOAD) loads.push({ vaddr, offset, filesz });
      else if (pType === PT_DYNAMIC) dynamic = { offset, size: filesz };
      else if (pType === PT_INTERP) info.interpreter = cString(readAt(fd, offset, filesz), 0);
    }
    if (dynamic === undefined) return info;
    info.dynamic = true;
    const dyn = readAt(fd, dynamic.offset, dynamic.size);
    const entries: { tag: number; value: number }[] = [];
    let strtab: number | undefined;
    let strsz: number | undefined;
    for (let o = 0; o + 16 <= dyn.length; o += 16) {
      const tag = Number(dyn.readBigInt64LE(o));
      if (tag === DT_NULL) break;
      const value = Number(dyn.readBigUInt64LE(o + 8));
      if (tag === DT_STRTAB) strtab = value;
      else if (tag === DT_STRSZ) strsz = value;
      else entries.push({ tag, value });
    }
    if (strtab === undefined || strsz === undefined) return info;
    const seg = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.filesz);
    if (seg === undefined) throw new ElfError(`${path}: DT_STRTAB 0x${strtab.toString(16)} is in no PT_LOAD segment`);
    const strings = readAt(fd, seg.offset + (strtab - seg.vaddr), strsz);
    for (const { tag, value } of entries) {
      if (tag === DT_NEEDED) info.needed.push(cString(strings, value));
      else if (tag === DT_SONAME) info.soname = cString(strings, value);
      else if (tag === DT_RPATH) info.rpath.push(...splitPath(cString(strings, value)));
      else if (tag === DT_RUNPATH) info.runpath.push(...splitPath(cString(strings, value)));
    }
    return info;
  } finally {
    closeSync(fd);
  }
}

function splitPath(value: string): string[] {
  return value.split(':').filter((s) => s !== '');
}

/** One library of the closure. */
export interface ResolvedLibrary {
  /** The DT_NEEDED name (or the interpreter path). */
  name: string;
  /** The path where the loader finds it (symlinks not resolved: copy it with its chain). */
  path: string;
  /** The file the path leads to. */
  realPath: string;
  /** The object that needs it first (breadth-first order). */
  neededBy: string;
}

export interface ElfClosure {
  /** The executables / libraries asked for, as given (absolute). */
  roots: string[];
  /** Program interpreters (PT_INTERP) of the roots, as named there. */
  interpreters: string[];
  /** Every library found, breadth first, each once (by real path). */
  libraries: ResolvedLibrary[];
  /** DT_NEEDED names that could not be found. */
  missing: { name: string; neededBy: string }[];
  /** roots + interpreters + library paths: everything to copy, each once. */
  files: string[];
}

export interface ClosureOptions {
  /** Directories searched after RPATH/RUNPATH; default DEFAULT_LIBRARY_DIRS. */
  libraryDirs?: readonly string[];
  /** Like LD_LIBRARY_PATH: searched after DT_RPATH, before DT_RUNPATH. Default none. */
  libraryPath?: readonly string[];
  /** Expansion of $PLATFORM; default "x86_64". */
  platform?: string;
  /** Expansion of $LIB; default "lib/x86_64-linux-gnu" (Debian). */
  lib?: string;
}

interface Loaded {
  path: string;
  info: ElfInfo;
  /** RPATHs inherited from the loader chain (used when the object has no RUNPATH). */
  inheritedRpath: string[];
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function expand(entry: string, origin: string, options: ClosureOptions): string {
  return entry
    .replace(/\$(\{ORIGIN\}|ORIGIN)/g, origin)
    .replace(/\$(\{PLATFORM\}|PLATFORM)/g, options.platform ?? 'x86_64')
    .replace(/\$(\{LIB\}|LIB)/g, options.lib ?? 'lib/x86_64-linux-gnu');
}

/**
 * The shared-library closure of `paths` (executables or shared objects). Throws ElfError when a
 * root is not an ELF file; unresolved libraries are listed in `missing`.
 */
export function sharedLibraryClosure(paths: readonly string[], options: ClosureOptions = {}): ElfClosure {
  const libraryDirs = options.libraryDirs ?? DEFAULT_LIBRARY_DIRS;
  const closure: ElfClosure = { roots: [], interpreters: [], libraries: [], missing: [], files: [] };
  const byReal = new Map<string, string>(); // real path -> path as found
  const bySoname = new Map<string, string>(); // loaded name or soname -> path as found
  const queue: Loaded[] = [];
  const files = new Set<string>();
  const addFile = (p: string): void => {
    if (!files.has(p)) { files.add(p); closure.files.push(p); }
  };

  for (const given of paths) {
    const path = resolve(given);
    const info = readElf(path);
    closure.roots.push(path);
    addFile(path);
    const real = realpathSync(path);
    byReal.set(real, path);
    if (info.interpreter !== undefined && !closure.interpreters.includes(info.interpreter)) {
      closure.interpreters.push(info.interpreter);
      if (isFile(info.interpreter)) {
        const interpReal = realpathSync(info.interpreter);
        if (!byReal.has(interpReal)) {
          byReal.set(interpReal, info.interpreter);
          bySoname.set(posix.basename(info.interpreter), info.interpreter);
          const interpInfo = readElf(info.interpreter);
          if (interpInfo.soname !== undefined) bySoname.set(interpInfo.soname, info.interpreter);
          closure.libraries.push({ name: info.interpreter, path: info.interpreter, realPath: interpReal, neededBy: path });
        }
        addFile(info.interpreter);
      } else {
        closure.missing.push({ name: info.interpreter, neededBy: path });
      }
    }
    // $ORIGIN of an executable is the directory of its real path (the kernel resolves
    // /proc/self/exe); for libraries it is the directory of the path they were found as
    queue.push({ path: real === path ? path : real, info, inheritedRpath: info.runpath.length === 0 ? expandAll(info.rpath, dirname(real), options) : [] });
  }

  const accepts = (candidate: ElfInfo, wanted: ElfInfo): boolean =>
    candidate.elfClass === wanted.elfClass && candidate.machine === wanted.machine;

  for (let q = 0; q < queue.length; q++) {
    const obj = queue[q]!;
    const origin = dirname(obj.path);
    const ownRunpath = expandAll(obj.info.runpath, origin, options);
    const ownRpath = obj.info.runpath.length === 0 ? expandAll(obj.info.rpath, origin, options) : [];
    const searchDirs = [
      ...(obj.info.runpath.length === 0 ? [...ownRpath, ...obj.inheritedRpath] : []),
      ...(options.libraryPath ?? []),
      ...ownRunpath,
      ...libraryDirs,
    ];
    for (const name of obj.info.needed) {
      if (bySoname.has(name)) continue;
      let found: { path: string; info: ElfInfo } | undefined;
      if (name.includes('/')) {
        const p = isAbsolute(name) ? name : resolve(name);
        if (isFile(p)) found = { path: p, info: readElf(p) };
      } else {
        for (const dir of searchDirs) {
          const p = posix.join(dir, name);
          if (!isFile(p)) continue;
          let info: ElfInfo;
          try {
            info = readElf(p);
          } catch {
            continue;
          }
          if (!accepts(info, obj.info)) continue;
          found = { path: p, info };
          break;
        }
      }
      if (found === undefined) {
        closure.missing.push({ name, neededBy: obj.path });
        bySoname.set(name, '');
        continue;
      }
      const real = realpathSync(found.path);
      bySoname.set(name, found.path);
      if (byReal.has(real)) continue;
      byReal.set(real, found.path);
      if (found.info.soname !== undefined && !bySoname.has(found.info.soname)) bySoname.set(found.info.soname, found.path);
      closure.libraries.push({ name, path: found.path, realPath: real, neededBy: obj.path });
      addFile(found.path);
      const inherited = obj.info.runpath.length === 0 ? [...ownRpath, ...obj.inheritedRpath] : [];
      queue.push({ path: found.path, info: found.info, inheritedRpath: inherited });
    }
  }
  return closure;
}

function expandAll(entries: readonly string[], origin: string, options: ClosureOptions): string[] {
  return entries.map((e) => expand(e, origin, options));
}
