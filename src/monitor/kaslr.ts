// KASLR: where the running kernel actually is. Three sources, best first:
//  - a dump's VMCOREINFO (KERNELOFFSET, phys_base, pgtable_l5_enabled);
//  - live/dumped vCPU registers (CR3, CR4.LA57) plus symbols: the kernel's physical load
//    address is found by its `linux_banner` bytes at 2 MiB-aligned candidates, and the text
//    map is walked through CR3 to find the virtual slot that maps it;
//  - memory alone: as above, with CR3 = the physical address of `init_top_pgt`.
// page_offset_base is then read from the kernel's own variable. Browser-safe.

import type { Introspector } from './introspector.js';
import { symbol, type KernelImage } from './kernel-image.js';
import type { Vmcoreinfo } from './vmcoreinfo.js';

export class KaslrError extends Error {}

export const START_KERNEL_MAP = 0xffff_ffff_8000_0000n;
const KERNEL_ALIGN = 0x20_0000; // CONFIG_PHYSICAL_ALIGN on x86-64 defconfigs
const TEXT_SLOTS = 512; // 1 GiB kernel image space / 2 MiB
const CR4_LA57 = 1n << 12n;
const DEFAULT_PAGE_OFFSET_4L = 0xffff_8880_0000_0000n;
const DEFAULT_PAGE_OFFSET_5L = 0xff11_0000_0000_0000n;
const MAX_BANNER_CANDIDATES = 1 << 20;

export interface KernelLayout {
  /** Runtime minus link-time kernel text address. */
  kaslrOffset: bigint;
  physBase: bigint;
  pageOffsetBase: bigint;
  /** Page-table root used for walks. */
  cr3: bigint;
  la57: boolean;
  /** Physical address of `_text`. */
  textPa: bigint;
  source: 'vmcoreinfo' | 'registers' | 'memory';
  /** Cross-checks that passed, human-readable. */
  checks: string[];
}

export interface LayoutHints {
  cr3?: bigint;
  cr4?: bigint;
  vmcoreinfo?: Vmcoreinfo | null;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Physical address of `_text`, found by the banner bytes; null when not found. */
export function findKernelTextPa(intro: Introspector, kernel: KernelImage): bigint | null {
  if (kernel.banner === null || kernel.banner.length < 16) return null;
  const bannerOff = Number(symbol(kernel, 'linux_banner') - symbol(kernel, '_text'));
  let tried = 0;
  for (const r of intro.regions) {
    const first = Math.ceil(r.pa / KERNEL_ALIGN) * KERNEL_ALIGN;
    for (
      let pa = first;
      pa + bannerOff + kernel.banner.length <= r.pa + r.size && tried < MAX_BANNER_CANDIDATES;
      pa += KERNEL_ALIGN, tried++
    ) {
      const got = intro.readPhysBytes(pa + bannerOff, kernel.banner.length);
      if (got !== null && equalBytes(got, kernel.banner)) return BigInt(pa);
    }
  }
  return null;
}

/** Runtime `_text` virtual address: the 2 MiB kernel-map slot whose walk lands on textPa. */
function findTextVa(intro: Introspector, cr3: bigint, la57: boolean, textPa: bigint): bigint | null {
  intro.setPaging(cr3, la57);
  for (let k = 0; k < TEXT_SLOTS; k++) {
    const va = START_KERNEL_MAP + BigInt(k) * BigInt(KERNEL_ALIGN);
    if (intro.walk(va) === textPa) return va;
  }
  return null;
}

function finish(
  intro: Introspector,
  kernel: KernelImage,
  partial: Omit<KernelLayout, 'pageOffsetBase' | 'checks'>,
): KernelLayout {
  const checks: string[] = [];
  intro.setPaging(partial.cr3, partial.la57);
  intro.setKernel({ pageOffsetBase: 0n, physBase: partial.physBase });
  const rt = (name: string): bigint | undefined => {
    const s = kernel.symbols.get(name);
    return s === undefined ? undefined : s + partial.kaslrOffset;
  };
  let pageOffsetBase = partial.la57 ? DEFAULT_PAGE_OFFSET_5L : DEFAULT_PAGE_OFFSET_4L;
  const pobVar = rt('page_offset_base');
  if (pobVar !== undefined) {
    const v = intro.readKva64(pobVar);
    if (v === null) throw new KaslrError('page_offset_base is not readable at the derived layout');
    if ((v & 0xfff_ffffn) !== 0n || v < 0xff00_0000_0000_0000n)
      throw new KaslrError(`page_offset_base reads 0x${v.toString(16)}: the derived layout is wrong`);
    pageOffsetBase = v;
    checks.push('page_offset_base read from the kernel');
  }
  const physVar = rt('phys_base');
  if (physVar !== undefined) {
    const v = intro.readKva64(physVar);
    if (v !== partial.physBase)
      throw new KaslrError(
        `the kernel's phys_base (0x${v?.toString(16)}) differs from the derived 0x${partial.physBase.toString(16)}`,
      );
    checks.push('phys_base matches the kernel variable');
  }
  const l5Var = rt('__pgtable_l5_enabled');
  if (l5Var !== undefined) {
    const v = intro.readKva32(l5Var);
    if (v !== null && (v !== 0) !== partial.la57)
      throw new KaslrError(`__pgtable_l5_enabled=${v} but the layout says ${partial.la57 ? '5' : '4'}-level paging`);
    if (v !== null) checks.push('paging mode matches __pgtable_l5_enabled');
  }
  const bannerVa = rt('linux_banner');
  if (bannerVa !== undefined && kernel.banner !== null) {
    const pa = intro.walk(bannerVa);
    if (pa !== null && pa === partial.textPa + (symbol(kernel, 'linux_banner') - symbol(kernel, '_text')))
      checks.push('linux_banner page-walks to the kernel image');
  }
  intro.setKernel({ pageOffsetBase, physBase: partial.physBase });
  return { ...partial, pageOffsetBase, checks };
}

/** Derives the layout and leaves `intro` configured with it (paging + kernel layout). */
export function deriveLayout(intro: Introspector, kernel: KernelImage, hints: LayoutHints = {}): KernelLayout {
  const textLink = symbol(kernel, '_text');
  const topLink = symbol(kernel, 'init_top_pgt');
  const info = hints.vmcoreinfo ?? null;
  const la57Hint = hints.cr4 !== undefined ? (hints.cr4 & CR4_LA57) !== 0n : undefined;

  if (info !== null && info.kernelOffset !== undefined && info.number('phys_base') !== undefined) {
    const kaslrOffset = info.kernelOffset;
    const physBase = info.number('phys_base')!;
    const l5 = info.number('pgtable_l5_enabled');
    const la57 = l5 !== undefined ? l5 !== 0n : (la57Hint ?? false);
    const cr3 = BigInt.asUintN(64, topLink + kaslrOffset - START_KERNEL_MAP + physBase);
    const textPa = BigInt.asUintN(64, textLink + kaslrOffset - START_KERNEL_MAP + physBase);
    return finish(intro, kernel, { kaslrOffset, physBase, cr3, la57, textPa, source: 'vmcoreinfo' });
  }

  const textPa = findKernelTextPa(intro, kernel);
  if (textPa === null)
    throw new KaslrError(
      'the kernel image (linux_banner) was not found in guest memory: wrong vmlinux for this memory image?',
    );
  const modes = la57Hint !== undefined ? [la57Hint] : [false, true];
  const attempts: { cr3: bigint; source: KernelLayout['source'] }[] = [];
  if (hints.cr3 !== undefined) attempts.push({ cr3: hints.cr3, source: 'registers' });
  attempts.push({ cr3: textPa + (topLink - textLink), source: 'memory' });
  for (const a of attempts) {
    for (const la57 of modes) {
      const va = findTextVa(intro, a.cr3, la57, textPa);
      if (va === null) continue;
      const kaslrOffset = va - textLink;
      // phys_base wraps below zero when the kernel sits physically lower than its virtual slot
      const physBase = BigInt.asUintN(64, textPa - (va - START_KERNEL_MAP));
      return finish(intro, kernel, { kaslrOffset, physBase, cr3: a.cr3, la57, textPa, source: a.source });
    }
  }
  throw new KaslrError(
    `the kernel is at physical 0x${textPa.toString(16)} but no kernel-map page maps it (page tables unreadable?)`,
  );
}
