// One guest kernel, located: the introspection core configured for a kernel build (offsets,
// KASLR layout, per-CPU offsets) over one memory image, with the small kernel-named
// primitives every monitor walk composes (drgn's shape): `symbolKva`, `perCpuPtr`,
// `read64/32/Bytes`, `readCString`, `listForEach`, `writeBytes`. Every read goes through the
// WASM core and is bounded; a torn structure gives null or a GuestReadError, never a trap.
// Browser-safe.

import type { Introspector } from './introspector.js';
import { deriveLayout, type KernelLayout, type LayoutHints } from './kaslr.js';
import { symbol, type KernelImage } from './kernel-image.js';

export class GuestReadError extends Error {}

const MAX_CPU_SLOTS = 8192;
const PAGE = 4096n;

export class GuestKernel {
  /** nr_cpu_ids as the guest set it (1 when unreadable), capped at 8192. */
  readonly nrCpuIds: number;
  /** Per-CPU offsets (`__per_cpu_offset[cpu]`); 0n for a slot that could not be read. */
  readonly perCpuOffsets: bigint[];

  constructor(
    readonly intro: Introspector,
    readonly kernel: KernelImage,
    readonly layout: KernelLayout,
  ) {
    let nr = 1;
    if (kernel.symbols.has('nr_cpu_ids')) {
      const v = intro.readKva32(this.symbolKva('nr_cpu_ids'));
      if (v !== null && v > 0) nr = Math.min(v, MAX_CPU_SLOTS);
    }
    this.nrCpuIds = nr;
    this.perCpuOffsets = [];
    if (kernel.symbols.has('__per_cpu_offset')) {
      const size = kernel.symbolSizes.get('__per_cpu_offset');
      const slots = size !== undefined && size > 0 ? Math.min(size / 8, nr) : nr;
      const base = this.symbolKva('__per_cpu_offset');
      intro.setPerCpu(base, slots);
      for (let cpu = 0; cpu < slots; cpu++) this.perCpuOffsets.push(intro.readKva64(base + BigInt(cpu * 8)) ?? 0n);
    } else {
      intro.setPerCpu(0n, 0);
    }
  }

  /** Configures `intro` for `kernel` (offsets, layout from the hints) and locates it. */
  static open(intro: Introspector, kernel: KernelImage, hints: LayoutHints = {}): GuestKernel {
    intro.setOffsets(kernel.offsets);
    return new GuestKernel(intro, kernel, deriveLayout(intro, kernel, hints));
  }

  hasSymbol(name: string): boolean {
    return this.kernel.symbols.has(name);
  }

  /** Runtime address of a kernel symbol (KASLR applied). Throws when the build has no such symbol. */
  symbolKva(name: string): bigint {
    return symbol(this.kernel, name) + this.layout.kaslrOffset;
  }

  /** This CPU's instance of a per-CPU variable (e.g. `runqueues`), or null when its offset is unknown. */
  perCpuPtr(name: string, cpu: number): bigint | null {
    const off = this.perCpuOffsets[cpu];
    if (off === undefined || (off === 0n && cpu !== 0)) return null;
    return BigInt.asUintN(64, symbol(this.kernel, name) + off);
  }

  read64(kva: bigint): bigint | null {
    return this.intro.readKva64(kva);
  }
  read32(kva: bigint): number | null {
    return this.intro.readKva32(kva);
  }

  /** Exactly `len` bytes at `kva`, or null when any of them is unmapped. */
  readBytes(kva: bigint, len: number): Uint8Array | null {
    const scratch = this.intro.core.scratchSize();
    const out = new Uint8Array(len);
    for (let done = 0; done < len;) {
      const n = Math.min(scratch, len - done);
      const got = this.intro.readKvaBytes(kva + BigInt(done), n);
      if (got.length !== n) return null;
      out.set(got, done);
      done += n;
    }
    return out;
  }

  /** A NUL-terminated string of at most `max` bytes at `kva` (latin1); null when unmapped. */
  readCString(kva: bigint, max: number): string | null {
    const bytes = this.intro.readKvaBytes(kva, Math.min(max, this.intro.core.scratchSize()));
    if (bytes.length === 0) return null;
    const z = bytes.indexOf(0);
    return new TextDecoder('latin1').decode(z >= 0 ? bytes.subarray(0, z) : bytes);
  }

  /**
   * Walks a circular `list_head` from its head, yielding each node's address (not the head),
   * at most `limit` nodes; `truncated` tells whether the bound or a broken link stopped it.
   */
  listForEach(headKva: bigint, limit: number): { nodes: bigint[]; truncated: boolean } {
    const nodes: bigint[] = [];
    let node = this.read64(headKva);
    while (node !== null && node !== headKva) {
      if (nodes.length >= limit) return { nodes, truncated: true };
      nodes.push(node);
      node = this.read64(node);
    }
    return { nodes, truncated: node === null };
  }

  /**
   * Writes `bytes` at kernel virtual `kva` into guest memory (page by page through the
   * layout/page tables). Throws GuestReadError naming the first unmapped page; nothing is
   * written then.
   */
  writeBytes(kva: bigint, bytes: Uint8Array): void {
    const pieces: { offset: number; from: number; len: number }[] = [];
    for (let done = 0; done < bytes.length;) {
      const at = kva + BigInt(done);
      const len = Math.min(bytes.length - done, Number(PAGE - (at % PAGE)));
      const pa = this.intro.kvaToPa(at);
      const offset = pa === null ? null : this.intro.physOffset(Number(pa), len);
      if (offset === null) throw new GuestReadError(`cannot write guest memory at 0x${at.toString(16)}: not mapped`);
      pieces.push({ offset, from: done, len });
      done += len;
    }
    const mem = new Uint8Array(this.intro.memory.buffer);
    for (const p of pieces) mem.set(bytes.subarray(p.from, p.from + p.len), p.offset);
  }
}
