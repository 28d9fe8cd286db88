// What the monitor needs from a kernel build: link-time symbol addresses and sizes (vmlinux
// .symtab, or a System.map), the BTF-derived offset table, and the `linux_banner` bytes used
// to find the kernel in physical memory. Browser-safe (a ByteSource over the vmlinux bytes).

import { Btf, BtfError } from './btf.js';
import { ElfFile, type ByteSource } from '../elf/file.js';
import type { SymbolMap } from '../elf/symbol-index.js';
import { kernelOffsets, type KernelOffsets } from './kernel-offsets.js';
import { parseSystemMap } from './system-map.js';

export class KernelImageError extends Error {}

export interface KernelImage {
  /** Link-time addresses (a vmlinux's: its compact .symtab index; a Map in tests and with a System.map). */
  symbols: SymbolMap<bigint>;
  /** st_size from .symtab, when known. */
  symbolSizes: SymbolMap<number>;
  btf: Btf;
  offsets: KernelOffsets;
  /** `linux_banner` as stored in the image ("Linux version ..."), without the NUL. */
  banner: Uint8Array | null;
}

export interface KernelImageOptions {
  /** System.map text: replaces the .symtab addresses. */
  systemMap?: string;
  /** Raw BTF (e.g. /sys/kernel/btf/vmlinux) when the vmlinux has no .BTF. */
  btf?: Uint8Array;
}

const BANNER_MAX = 512;

export function loadKernelImage(source: ByteSource, options: KernelImageOptions = {}, label = 'vmlinux'): KernelImage {
  const elf = new ElfFile(source, label);
  const index = elf.symbolIndex();
  let symbols: SymbolMap<bigint> = index.addresses;
  let count = index.count;
  if (options.systemMap !== undefined) {
    // the System.map's addresses replace the .symtab's (a Map: this path is rare)
    const merged = new Map(index.addresses);
    for (const [name, addr] of parseSystemMap(options.systemMap)) merged.set(name, addr);
    symbols = merged;
    count = merged.size;
  }
  if (count === 0) throw new KernelImageError(`${label} has no .symtab: pass a System.map`);
  const symbolSizes = index.sizes;
  for (const need of ['_text', 'prog_idr', 'init_top_pgt']) {
    if (!symbols.has(need)) throw new KernelImageError(`${label}: symbol ${need} not found`);
  }
  let btfBytes = options.btf;
  if (btfBytes === undefined) {
    const section = elf.section('.BTF');
    if (section === undefined)
      throw new KernelImageError(
        `${label} has no .BTF section (build with CONFIG_DEBUG_INFO_BTF=y or pass the BTF separately)`,
      );
    btfBytes = elf.sectionBytes(section);
  }
  let btf: Btf;
  let offsets: KernelOffsets;
  try {
    btf = new Btf(btfBytes, `${label} BTF`);
    offsets = kernelOffsets(btf);
  } catch (err) {
    if (err instanceof BtfError) throw new KernelImageError(`${label}: ${err.message}`);
    throw err;
  }
  let banner: Uint8Array | null = null;
  const bannerAddr = symbols.get('linux_banner');
  if (bannerAddr !== undefined) {
    const size = Math.min(symbolSizes.get('linux_banner') || BANNER_MAX, BANNER_MAX);
    const raw = elf.readVirtual(bannerAddr, size);
    if (raw !== undefined) {
      const z = raw.indexOf(0);
      banner = z >= 0 ? raw.slice(0, z) : raw;
    }
  }
  return { symbols, symbolSizes, btf, offsets, banner };
}

export function symbol(kernel: KernelImage, name: string): bigint {
  const v = kernel.symbols.get(name);
  if (v === undefined) throw new KernelImageError(`symbol ${name} not found`);
  return v;
}
