// Runtime code addresses to names: kernel text through the vmlinux symbol table (KASLR
// applied), and JIT-compiled BPF programs through their images in guest memory
// (bpf_prog->bpf_func, jited_len), so a backtrace the kernel saved (scx_exit_info.bt) reads
// `ktstr_enqueue+0x4c [bpf]` instead of a bare address. Browser-safe.

import type { GuestKernel } from './guest-kernel.js';
import type { KernelImage } from './kernel-image.js';

interface SymbolTable {
  addrs: bigint[];
  sizes: number[];
  names: string[];
}

const tables = new WeakMap<KernelImage, SymbolTable>();

/** Sized symbols of the kernel image, sorted by address (built once per image). */
function kernelTable(kernel: KernelImage): SymbolTable {
  let t = tables.get(kernel);
  if (t !== undefined) return t;
  const rows: [bigint, number, string][] = [];
  for (const [name, addr] of kernel.symbols) {
    const size = kernel.symbolSizes.get(name) ?? 0;
    if (size > 0 && addr >= 0xffff_ffff_8000_0000n) rows.push([addr, size, name]);
  }
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  t = { addrs: rows.map((r) => r[0]), sizes: rows.map((r) => r[1]), names: rows.map((r) => r[2]) };
  tables.set(kernel, t);
  return t;
}

export interface JitImage {
  name: string;
  start: bigint;
  length: number;
}

/** The JIT images of programs (by their struct bpf_prog addresses), unreadable ones left out. */
export function jitImages(guest: GuestKernel, programs: readonly { name: string; progKva: bigint }[]): JitImage[] {
  let funcOff: number;
  let lenOff: number;
  try {
    funcOff = guest.kernel.btf.member('bpf_prog', 'bpf_func').offset;
    lenOff = guest.kernel.btf.member('bpf_prog', 'jited_len').offset;
  } catch {
    return [];
  }
  const out: JitImage[] = [];
  for (const p of programs) {
    const start = guest.read64(p.progKva + BigInt(funcOff));
    const length = guest.read32(p.progKva + BigInt(lenOff));
    if (start !== null && length !== null && start !== 0n && length > 0 && length < 1 << 24)
      out.push({ name: fullName(guest, p.progKva, p.name), start, length });
  }
  return out;
}

/**
 * A program's whole name: bpf_prog_aux.name holds 15 characters (`ktstr_cgroup_se`), its
 * kallsyms entry (aux->ksym.name, `bpf_prog_<tag>_<name>`) the BTF function name in full.
 * The short name when that is unreadable or does not extend it.
 */
function fullName(guest: GuestKernel, progKva: bigint, short: string): string {
  try {
    const btf = guest.kernel.btf;
    const aux = guest.read64(progKva + BigInt(btf.member('bpf_prog', 'aux').offset));
    if (aux === null || aux === 0n) return short;
    const at = aux + BigInt(btf.member('bpf_prog_aux', 'ksym').offset + btf.member('bpf_ksym', 'name').offset);
    const m = /^bpf_prog_[0-9a-f]{16}_(\w+)$/.exec(guest.readCString(at, 128) ?? '');
    return m !== null && m[1].startsWith(short) ? m[1] : short;
  } catch {
    return short;
  }
}

/** `name+0xoff` for a runtime address: a BPF program's image first, then kernel text; hex when unknown. */
export function symbolize(guest: GuestKernel, addr: bigint, jit: readonly JitImage[] = []): string {
  for (const j of jit) {
    if (addr >= j.start && addr < j.start + BigInt(j.length))
      return `${j.name}+0x${(addr - j.start).toString(16)} [bpf]`;
  }
  const t = kernelTable(guest.kernel);
  const link = addr - guest.layout.kaslrOffset;
  let lo = 0;
  let hi = t.addrs.length - 1;
  let hit = -1;
  while (lo <= hi) {
    // last symbol at or below `link`
    const mid = (lo + hi) >> 1;
    if (t.addrs[mid] <= link) {
      hit = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (hit >= 0 && link < t.addrs[hit] + BigInt(t.sizes[hit]))
    return `${t.names[hit]}+0x${(link - t.addrs[hit]).toString(16)}`;
  return `0x${addr.toString(16)}`;
}
