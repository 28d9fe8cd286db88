// The shared-library closure of ELF executables, found the way the dynamic loader finds it:
// the program interpreter from PT_INTERP, then every DT_NEEDED entry of every loaded object,
// resolved breadth first through DT_RPATH (of the object and its loaders, when it has no
// DT_RUNPATH), DT_RUNPATH (of the object itself), then the standard Debian library
// directories. $ORIGIN, $LIB and $PLATFORM are expanded. Only ELF files of the same class and
// machine as the executable are accepted. No subprocess (ldd) is run: the headers come from
// the shared ELF reader (src/elf/file.ts) over the file; the dynamic section is parsed here.

import { realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, posix, resolve } from 'node:path';
import { ELFCLASS64, ELFDATA2LSB, ElfError, ElfFile, PT_DYNAMIC, PT_INTERP, readElfIdent } from '../elf/file.js';
import { withFileSource } from '../elf/file-source.js';

export { ElfError } from '../elf/file.js';

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

const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_SONAME = 14n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;
/** Bytes of one Elf64_Dyn entry (d_tag, d_val). */
const DYN_SIZE = 16;

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

const utf8 = new TextDecoder();

function cString(bytes: Uint8Array, offset: number): string {
  if (offset >= bytes.length) return '';
  const end = bytes.indexOf(0, offset);
  return utf8.decode(bytes.subarray(offset, end < 0 ? bytes.length : end));
}

/**
 * The ELF header, program interpreter and dynamic section of `path`, read through the shared
 * ELF reader (src/elf/file.ts) over the file (only the bytes needed are read). ELF32 and
 * big-endian files give their class, machine and type only; a non-ELF file throws ElfError.
 */
export function readElf(path: string): ElfInfo {
  return withFileSource(path, (source) => {
    const { elfClass, data, type, machine } = readElfIdent(source, path);
    const info: ElfInfo = { path, elfClass, machine, type, needed: [], rpath: [], runpath: [], dynamic: false };
    if (elfClass !== ELFCLASS64 || data !== ELFDATA2LSB) return info; // only ELF64 LE is followed further
    const elf = new ElfFile(source, path);
    const interp = elf.programHeaders.find((ph) => ph.type === PT_INTERP);
    if (interp !== undefined) info.interpreter = cString(elf.segmentBytes(interp, 'PT_INTERP'), 0);
    const dynamic = elf.programHeaders.find((ph) => ph.type === PT_DYNAMIC);
    if (dynamic === undefined) return info;
    info.dynamic = true;
    const dyn = elf.segmentBytes(dynamic, 'PT_DYNAMIC');
    const v = new DataView(dyn.buffer, dyn.byteOffset, dyn.byteLength);
    const entries: { tag: bigint; value: bigint }[] = [];
    let strtab: bigint | undefined;
    let strsz: bigint | undefined;
    for (let o = 0; o + DYN_SIZE <= dyn.length; o += DYN_SIZE) {
      const tag = v.getBigInt64(o, true);
      if (tag === DT_NULL) break;
      const value = v.getBigUint64(o + 8, true);
      if (tag === DT_STRTAB) strtab = value;
      else if (tag === DT_STRSZ) strsz = value;
      else entries.push({ tag, value });
    }
    if (strtab === undefined || strsz === undefined) return info;
    const strings = elf.readVirtual(strtab, Number(strsz));
    if (strings === undefined)
      throw new ElfError(`${path}: DT_STRTAB 0x${strtab.toString(16)} (+${strsz} bytes) is in no PT_LOAD segment`);
    for (const { tag, value } of entries) {
      const text = cString(strings, Number(value)); // '' past the end of the table
      if (tag === DT_NEEDED) info.needed.push(text);
      else if (tag === DT_SONAME) info.soname = text;
      else if (tag === DT_RPATH) info.rpath.push(...splitPath(text));
      else if (tag === DT_RUNPATH) info.runpath.push(...splitPath(text));
    }
    return info;
  });
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
    if (!files.has(p)) {
      files.add(p);
      closure.files.push(p);
    }
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
          closure.libraries.push({
            name: info.interpreter,
            path: info.interpreter,
            realPath: interpReal,
            neededBy: path,
          });
        }
        addFile(info.interpreter);
      } else {
        closure.missing.push({ name: info.interpreter, neededBy: path });
      }
    }
    // $ORIGIN of an executable is the directory of its real path (the kernel resolves
    // /proc/self/exe); for libraries it is the directory of the path they were found as
    queue.push({
      path: real === path ? path : real,
      info,
      inheritedRpath: info.runpath.length === 0 ? expandAll(info.rpath, dirname(real), options) : [],
    });
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
      if (found.info.soname !== undefined && !bySoname.has(found.info.soname))
        bySoname.set(found.info.soname, found.path);
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
