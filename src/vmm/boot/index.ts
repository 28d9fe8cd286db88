// Kernel boot on x86-64, in two halves:
//  - loadBootFiles(): reads and validates the kernel (bzImage or vmlinux ELF) and the
//    initrd, and plans where everything goes. Pure host work: a corrupt or truncated
//    image or a missing initrd fails here, before any VM exists.
//  - writeBoot(): puts the plan into guest RAM -- kernel, initrd, command line, the
//    boot_params "zero page" with its e820 map, a GDT and identity page tables -- and
//    returns the 64-bit entry state.
//
// Entry: the 64-bit boot protocol (boot.rst "64-bit BOOT PROTOCOL"): long mode, paging on
// with an identity map of the low 4 GiB (2 MiB pages; covers kernel, zero page, command
// line and initrd), CS = __BOOT_CS (0x10) flat 64-bit, DS/ES/SS = __BOOT_DS (0x18),
// interrupts off, rsi = boot_params. A bzImage is entered at its load address + 0x200
// (its decompressor relocates it, KASLR included), a vmlinux at its physical e_entry.
//
// Guest physical layout of the boot data (all below 1 MiB, in e820 RAM the kernel
// reclaims): GDT 0x500, boot_params 0x7000, page tables 0x9000-0xefff, command line
// 0x20000. [0x9fc00, 0x100000) is reserved (EBDA, VGA, BIOS); ACPI tables, when the acpi
// hook provides them, go in [0xe0000, 0x100000) (ACPI_REGION).

import type { BootEntry } from './entry-state.js';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { GuestMemory } from '../memory.js';
import { HIGH_RAM_START } from '../memory.js';
import { parseBzImage, looksLikeBzImage, type BzImage, HDR, LOADFLAG_CAN_USE_HEAP } from './bzimage.js';
import { isElf, parseVmlinux, parseVmlinuxFile, type VmlinuxImage } from './elf.js';
import { BootImageError } from './errors.js';

export { BootImageError } from './errors.js';
export { parseBzImage, type BzImage } from './bzimage.js';
export { parseVmlinux, parseVmlinuxFile, type VmlinuxImage } from './elf.js';

export const BOOT_LAYOUT = {
  gdt: 0x500,
  bootParams: 0x7000,
  stackTop: 0x8ff0,
  pml4: 0x9000,
  pdpt: 0xa000,
  /** Four page directories: 4 GiB in 2 MiB pages. */
  pd: 0xb000,
  cmdline: 0x20000,
  cmdlineMax: 0x10000,
  ebdaStart: 0x9fc00,
  highMemory: 0x100000,
  /** Where a bzImage's protected-mode kernel is loaded. */
  bzKernelLoad: 0x100000,
} as const;

/** Reserved range the ACPI builder may fill (the RSDP must be in [0xe0000, 0x100000) for a BIOS scan too). */
export const ACPI_REGION = { start: 0xe0000, end: 0x100000 } as const;

export const BOOT_SELECTORS = { code: 0x10, data: 0x18, tss: 0x20 } as const;

/** boot_params offsets outside the setup header. */
export const BP = {
  acpi_rsdp_addr: 0x070,
  ext_ramdisk_image: 0x0c0,
  ext_ramdisk_size: 0x0c4,
  ext_cmd_line_ptr: 0x0c8,
  e820_entries: 0x1e8,
  e820_table: 0x2d0,
  size: 0x1000,
} as const;
export const E820_MAX = 128;
export const E820_RAM = 1;
export const E820_RESERVED = 2;
export const E820_ACPI = 3;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/** One piece of the initrd: bytes, or a file read straight into guest RAM by writeBoot. */
export type InitrdPart = { bytes: Uint8Array } | { path: string; size: number };

export interface BootFiles {
  kernelPath: string;
  kernel: BzImage | VmlinuxImage;
  /** The initrd's pieces, placed one after another (concatenated cpio archives). */
  initrd?: InitrdPart[];
  /** Their total size. */
  initrdSize?: number;
  initrdPath?: string;
  cmdline: string;
}

/** What `initrd` may be: a path, bytes, or several of them (concatenated in guest RAM, never on the host). */
export type InitrdInput = string | Uint8Array | readonly (string | Uint8Array)[];

/** Reads and validates the kernel and initrd. Throws BootImageError with the path and what is wrong. */
export function loadBootFiles(o: {
  kernel: string | Uint8Array;
  initrd?: InitrdInput;
  cmdline: string;
  kernelPath?: string;
}): BootFiles {
  const kernelPath = typeof o.kernel === 'string' ? o.kernel : (o.kernelPath ?? '<kernel buffer>');
  const kernel = loadKernel(o.kernel, kernelPath);
  let initrd: InitrdPart[] | undefined;
  let initrdPath: string | undefined;
  let initrdSize: number | undefined;
  if (o.initrd !== undefined) {
    const inputs = typeof o.initrd === 'string' || o.initrd instanceof Uint8Array ? [o.initrd] : o.initrd;
    initrdPath = inputs.map((i) => (typeof i === 'string' ? i : '<initrd buffer>')).join(' + ');
    // files are only checked here; writeBoot reads them straight into guest RAM
    initrd = inputs.map((i) => {
      if (typeof i !== 'string') return { bytes: i };
      checkRegularFile(i, 'initrd');
      return { path: i, size: statSync(i).size };
    });
    initrdSize = initrd.reduce((a, p) => a + ('bytes' in p ? p.bytes.length : p.size), 0);
    if (initrdSize === 0) throw new BootImageError('initrd is empty', initrdPath);
  }
  const limit =
    kernel.kind === 'bzimage' && kernel.cmdlineSize > 0
      ? Math.min(kernel.cmdlineSize, BOOT_LAYOUT.cmdlineMax - 1)
      : 2047;
  if (Buffer.byteLength(o.cmdline) > limit)
    throw new BootImageError(
      `kernel command line is ${Buffer.byteLength(o.cmdline)} bytes; the kernel takes at most ${limit}`,
      kernelPath,
    );
  return { kernelPath, kernel, initrd, initrdSize, initrdPath, cmdline: o.cmdline };
}

/** Reads exactly `dest.length` bytes of `path` into `dest` (guest RAM); a file that changed size since it was checked is refused. */
function readFileInto(path: string, dest: Uint8Array): void {
  const fd = openSync(path, 'r');
  try {
    if (fstatSync(fd).size !== dest.length)
      throw new BootImageError(`initrd changed size while the VM was set up (${dest.length} bytes expected)`, path);
    let off = 0;
    while (off < dest.length) {
      const n = readSync(fd, dest, off, Math.min(dest.length - off, 1 << 24), off);
      if (n === 0) throw new BootImageError(`initrd ended after ${off} of ${dest.length} bytes`, path);
      off += n;
    }
  } finally {
    closeSync(fd);
  }
}

function loadKernel(input: string | Uint8Array, path: string): BzImage | VmlinuxImage {
  // A vmlinux file is not read whole: writeBoot reads its segments straight into guest RAM.
  if (typeof input === 'string' && isElf(readHead(input, 'kernel'))) return parseVmlinuxFile(input);
  const kbuf = typeof input === 'string' ? readFileSync(input) : input; // readHead checked the file
  if (isElf(kbuf)) return parseVmlinux(kbuf, path);
  if (looksLikeBzImage(kbuf) || kbuf.length >= 0x202) return parseBzImage(kbuf, path);
  throw new BootImageError(`not a kernel image (${kbuf.length} bytes: neither an ELF vmlinux nor a bzImage)`, path);
}

function checkRegularFile(path: string, what: string): void {
  if (!existsSync(path)) throw new BootImageError(`${what} not found`, path);
  if (!statSync(path).isFile()) throw new BootImageError(`${what} is not a regular file`, path);
}

/** The first bytes of a file (fewer if it is shorter): enough to tell an ELF file. */
function readHead(path: string, what: string): Uint8Array {
  checkRegularFile(path, what);
  const fd = openSync(path, 'r');
  try {
    const head = new Uint8Array(4);
    return head.subarray(0, readSync(fd, head, 0, 4, 0));
  } finally {
    closeSync(fd);
  }
}

/** The e820 map for a RAM layout: low RAM below the EBDA, reserved to 1 MiB, RAM to the hole, RAM from 4 GiB. */
export function e820Map(mem: Pick<GuestMemory, 'regions'>): E820Entry[] {
  const low = mem.regions[0].size;
  if (low < 2 * BOOT_LAYOUT.highMemory) throw new BootImageError(`guest RAM of ${low} bytes is too small to boot`);
  const map: E820Entry[] = [
    { addr: 0, size: BOOT_LAYOUT.ebdaStart, type: E820_RAM },
    { addr: BOOT_LAYOUT.ebdaStart, size: BOOT_LAYOUT.highMemory - BOOT_LAYOUT.ebdaStart, type: E820_RESERVED },
    { addr: BOOT_LAYOUT.highMemory, size: low - BOOT_LAYOUT.highMemory, type: E820_RAM },
  ];
  for (const r of mem.regions.slice(1)) map.push({ addr: r.guestPhysAddr, size: r.size, type: E820_RAM });
  return map;
}

export interface BootPlacement {
  kernelLoad: number;
  kernelEnd: number;
  entry: number;
  initrdAddr?: number;
  initrdSize?: number;
}

const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;

/** Where kernel and initrd go for this RAM size (throws when they do not fit). */
export function placeBoot(files: BootFiles, lowRam: number): BootPlacement {
  const k = files.kernel;
  let kernelLoad: number;
  let kernelEnd: number;
  let entry: number;
  if (k.kind === 'bzimage') {
    kernelLoad = BOOT_LAYOUT.bzKernelLoad;
    const runAt = Math.max(alignUp(kernelLoad, k.kernelAlignment), Number(k.prefAddress));
    kernelEnd = Math.max(kernelLoad + k.kernel.length, runAt + k.initSize);
    entry = kernelLoad + 0x200;
  } else {
    kernelLoad = k.low;
    kernelEnd = k.high;
    entry = k.entry;
  }
  if (kernelEnd > lowRam)
    throw new BootImageError(
      `the kernel needs RAM up to 0x${kernelEnd.toString(16)}; guest RAM below 3 GiB ends at 0x${lowRam.toString(16)}`,
      files.kernelPath,
    );
  const p: BootPlacement = { kernelLoad, kernelEnd, entry };
  if (files.initrd && files.initrdSize !== undefined) {
    const size = files.initrdSize;
    const max = k.kind === 'bzimage' && k.initrdAddrMax > 0 ? k.initrdAddrMax : 0x37ffffff;
    const top = Math.min(max + 1, lowRam);
    const addr =
      Math.floor((top - size) / 0x200000) * 0x200000 >= kernelEnd
        ? Math.floor((top - size) / 0x200000) * 0x200000
        : Math.floor((top - size) / 4096) * 4096;
    if (addr < kernelEnd) {
      throw new BootImageError(
        `initrd of ${size} bytes does not fit between the kernel (ends 0x${kernelEnd.toString(16)}) and 0x${top.toString(16)}: give the guest more memory`,
        files.initrdPath,
      );
    }
    p.initrdAddr = addr;
    p.initrdSize = size;
  }
  return p;
}

/** A Linux boot written into guest RAM: where the boot CPU starts, and the memory map it was given. */
export interface BootState extends BootEntry {
  e820: E820Entry[];
  placement: BootPlacement;
}

export interface WriteBootOptions {
  /** Physical address of the ACPI RSDP (from the acpi hook); 0 or absent: no ACPI. */
  acpiRsdp?: number;
  /** Extra e820 entries (e.g. E820_ACPI ranges the ACPI builder used inside reserved memory). */
  extraE820?: E820Entry[];
  /**
   * Bytes at the top of RAM below 3 GiB kept from the guest kernel (an E820_RESERVED range the
   * kernel never allocates; the initrd goes below it): the host<->guest shared region. A
   * multiple of 2 MiB.
   */
  reserveTop?: number;
}

/** The reserved range writeBoot leaves at the top of low RAM for `reserveTop` bytes. */
export function reservedTop(mem: Pick<GuestMemory, 'lowSize'>, bytes: number): { addr: number; size: number } {
  if (!Number.isInteger(bytes) || bytes <= 0 || bytes % 0x200000 !== 0)
    throw new BootImageError(`reserved region of ${bytes} bytes must be a positive multiple of 2 MiB`);
  if (bytes > mem.lowSize / 4)
    throw new BootImageError(`reserved region of ${bytes} bytes is more than a quarter of guest RAM below 3 GiB`);
  return { addr: mem.lowSize - bytes, size: bytes };
}

/** Writes kernel, initrd, command line, boot_params, GDT and page tables into guest RAM. */
export function writeBoot(mem: GuestMemory, files: BootFiles, o: WriteBootOptions = {}): BootState {
  const L = BOOT_LAYOUT;
  const reserved = o.reserveTop ? reservedTop(mem, o.reserveTop) : undefined;
  const placement = placeBoot(files, reserved?.addr ?? mem.lowSize);
  const k = files.kernel;
  if (k.kind === 'bzimage') {
    mem.write(placement.kernelLoad, k.kernel);
  } else {
    for (const s of k.segments) {
      k.readSegment(s, mem.slice(s.paddr, s.filesz));
      if (s.memsz > s.filesz) mem.fill(s.paddr + s.filesz, s.memsz - s.filesz);
    }
  }
  if (files.initrd && placement.initrdAddr !== undefined) {
    let at = placement.initrdAddr;
    for (const part of files.initrd) {
      if ('bytes' in part) {
        mem.write(at, part.bytes);
        at += part.bytes.length;
      } else {
        readFileInto(part.path, mem.slice(at, part.size));
        at += part.size;
      }
    }
  }

  const cmd = Buffer.from(files.cmdline + '\0', 'utf8');
  mem.fill(L.cmdline, L.cmdlineMax);
  mem.write(L.cmdline, cmd);

  // boot_params
  mem.fill(L.bootParams, BP.size);
  const bp = mem.slice(L.bootParams, BP.size);
  const dv = new DataView(bp.buffer, bp.byteOffset, BP.size);
  if (k.kind === 'bzimage') {
    bp.set(k.setupHeader, HDR.setup_sects);
  } else {
    dv.setUint16(HDR.boot_flag, 0xaa55, true);
    dv.setUint32(HDR.header, 0x53726448, true);
    dv.setUint16(HDR.version, 0x20c, true);
    dv.setUint32(HDR.kernel_alignment, 0x1000000, true);
  }
  bp[HDR.type_of_loader] = 0xff; // undefined loader
  bp[HDR.loadflags] |= LOADFLAG_CAN_USE_HEAP;
  dv.setUint16(HDR.heap_end_ptr, 0xfe00, true);
  dv.setUint32(HDR.cmd_line_ptr, L.cmdline, true);
  dv.setUint32(BP.ext_cmd_line_ptr, 0, true);
  dv.setUint32(HDR.cmdline_size, cmd.length - 1, true);
  if (placement.initrdAddr !== undefined) {
    dv.setUint32(HDR.ramdisk_image, placement.initrdAddr, true);
    dv.setUint32(HDR.ramdisk_size, placement.initrdSize!, true);
  }
  if (o.acpiRsdp) dv.setBigUint64(BP.acpi_rsdp_addr, BigInt(o.acpiRsdp), true);
  let e820 = [...e820Map(mem), ...(o.extraE820 ?? [])];
  if (reserved !== undefined) {
    // cut the reserved range out of the low RAM entry that holds it
    e820 = e820.flatMap((e) =>
      e.type !== E820_RAM || e.addr > reserved.addr || e.addr + e.size < reserved.addr + reserved.size
        ? [e]
        : [
            { addr: e.addr, size: reserved.addr - e.addr, type: E820_RAM },
            { addr: reserved.addr, size: reserved.size, type: E820_RESERVED },
            ...(e.addr + e.size > reserved.addr + reserved.size
              ? [
                  {
                    addr: reserved.addr + reserved.size,
                    size: e.addr + e.size - reserved.addr - reserved.size,
                    type: E820_RAM,
                  },
                ]
              : []),
          ],
    );
  }
  e820.sort((a, b) => a.addr - b.addr);
  if (e820.length > E820_MAX) throw new BootImageError(`e820 map has ${e820.length} entries (max ${E820_MAX})`);
  bp[BP.e820_entries] = e820.length;
  e820.forEach((e, i) => {
    const off = BP.e820_table + 20 * i;
    dv.setBigUint64(off, BigInt(e.addr), true);
    dv.setBigUint64(off + 8, BigInt(e.size), true);
    dv.setUint32(off + 16, e.type, true);
  });

  // GDT: null, null, __BOOT_CS (64-bit code), __BOOT_DS, 64-bit TSS (16 bytes).
  mem.fill(L.gdt, 0x30);
  mem.writeU64(L.gdt + BOOT_SELECTORS.code, 0x00af9b000000ffffn);
  mem.writeU64(L.gdt + BOOT_SELECTORS.data, 0x00cf93000000ffffn);
  mem.writeU64(L.gdt + BOOT_SELECTORS.tss, 0x00008b0000000067n);
  mem.writeU64(L.gdt + BOOT_SELECTORS.tss + 8, 0n);

  // Identity map [0, 4 GiB) with 2 MiB pages.
  mem.fill(L.pml4, 0x6000);
  mem.writeU64(L.pml4, BigInt(L.pdpt) | 3n);
  for (let i = 0; i < 4; i++) {
    const pd = L.pd + i * 0x1000;
    mem.writeU64(L.pdpt + 8 * i, BigInt(pd) | 3n);
    for (let j = 0; j < 512; j++) mem.writeU64(pd + 8 * j, ((BigInt(i) << 30n) + (BigInt(j) << 21n)) | 0x83n);
  }
  void HIGH_RAM_START;
  return {
    entry: placement.entry,
    bootParams: L.bootParams,
    cr3: L.pml4,
    gdt: L.gdt,
    gdtLimit: BOOT_SELECTORS.tss + 16 - 1,
    stackTop: L.stackTop,
    e820,
    placement,
  };
}
