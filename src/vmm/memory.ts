// Guest RAM as one shared WebAssembly.Memory (DESIGN.md "Memory layout"): the first
// GUEST_BASE bytes belong to the WASM core (its data and stack), guest physical 0 is at
// offset GUEST_BASE. x86 keeps [3 GiB, 4 GiB) for MMIO (the PCI hole: LAPIC, IOAPIC, the
// TSS/identity-map pages KVM needs), so RAM beyond 3 GiB is mapped as a second KVM slot
// at 4 GiB. The memory is contiguous in the WASM buffer either way:
//
//     pa in [0, lowSize)                -> GUEST_BASE + pa                  (slot 0)
//     pa in [4 GiB, 4 GiB + highSize)   -> GUEST_BASE + lowSize + pa - 4 GiB (slot 1)
//
// paToOffset() is that map, and the only place that knows it. A wasm32 memory is at most
// 65536 pages (4 GiB), so guest RAM is at most 4 GiB - GUEST_BASE.

/** Bytes below guest physical 0 that belong to the WASM core (64 KiB multiple). */
export const GUEST_BASE = 4 * 1024 * 1024;
export const WASM_PAGE = 65536;
/** Start of the x86 PCI hole: RAM above this moves to HIGH_RAM_START. */
export const PCI_HOLE_START = 3 * 1024 * 1024 * 1024;
export const HIGH_RAM_START = 4 * 1024 * 1024 * 1024;
export const MAX_WASM_PAGES = 65536;
export const HUGE_PAGE = 2 * 1024 * 1024;
export const MAX_GUEST_RAM = MAX_WASM_PAGES * WASM_PAGE - GUEST_BASE;

export interface RamRegion {
  /** Guest physical start. */
  guestPhysAddr: number;
  size: number;
  /** Byte offset of guestPhysAddr in the WASM memory. */
  offset: number;
}

export class GuestMemoryError extends RangeError {}

/** The RAM regions (one or two) for `ramBytes` of guest RAM, without allocating anything. */
export function ramLayout(ramBytes: number, base = GUEST_BASE): RamRegion[] {
  if (!Number.isSafeInteger(ramBytes) || ramBytes <= 0 || ramBytes % WASM_PAGE !== 0) {
    throw new GuestMemoryError(`guest RAM size ${ramBytes} must be a positive multiple of 64 KiB`);
  }
  if (ramBytes > MAX_WASM_PAGES * WASM_PAGE - base) {
    throw new GuestMemoryError(
      `guest RAM ${ramBytes / 2 ** 20} MiB exceeds the ${MAX_GUEST_RAM / 2 ** 20} MiB a wasm32 memory can hold after GUEST_BASE`,
    );
  }
  const low = Math.min(ramBytes, PCI_HOLE_START);
  const regions: RamRegion[] = [{ guestPhysAddr: 0, size: low, offset: base }];
  if (ramBytes > low) regions.push({ guestPhysAddr: HIGH_RAM_START, size: ramBytes - low, offset: base + low });
  return regions;
}

/** Guest RAM: the shared WebAssembly.Memory and accessors by guest physical address. */
export class GuestMemory {
  readonly memory: WebAssembly.Memory;
  readonly buffer: SharedArrayBuffer;
  readonly regions: readonly RamRegion[];
  readonly bytes: Uint8Array;
  readonly view: DataView;

  /**
   * `addressOf` (the VMM passes the binding's sharedBufferAddress) lets guest physical 0 sit
   * on a 2 MiB boundary of the host address space: V8 places the backing store 64 KiB short
   * of one, and KVM maps guest RAM with 2 MiB pages only where guest-physical and host
   * addresses agree modulo 2 MiB. Then guest physical 0 is at GUEST_BASE plus up to 2 MiB
   * (`regions[0].offset`); without it, at GUEST_BASE exactly.
   */
  constructor(
    readonly ramBytes: number,
    addressOf?: (buffer: SharedArrayBuffer) => bigint,
  ) {
    const pad = addressOf === undefined || ramBytes + HUGE_PAGE > MAX_GUEST_RAM ? 0 : HUGE_PAGE;
    const pages = (GUEST_BASE + pad + ramBytes) / WASM_PAGE;
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    let base = GUEST_BASE;
    if (pad > 0)
      base += Number(
        (BigInt(HUGE_PAGE) - ((addressOf!(this.buffer) + BigInt(GUEST_BASE)) % BigInt(HUGE_PAGE))) % BigInt(HUGE_PAGE),
      );
    this.regions = ramLayout(ramBytes, base);
    this.bytes = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
  }

  /** Size of low RAM (below the PCI hole). */
  get lowSize(): number {
    return this.regions[0].size;
  }

  /** Memory offset of guest physical `pa`, for `len` bytes that must not cross a region end. */
  paToOffset(pa: number, len = 1): number {
    for (const r of this.regions) {
      if (pa >= r.guestPhysAddr && pa + len <= r.guestPhysAddr + r.size) return r.offset + (pa - r.guestPhysAddr);
    }
    throw new GuestMemoryError(`guest physical [0x${pa.toString(16)}, 0x${(pa + len).toString(16)}) is not guest RAM`);
  }

  /** A view of guest physical memory (no copy). */
  slice(pa: number, len: number): Uint8Array {
    return new Uint8Array(this.buffer, this.paToOffset(pa, len), len);
  }

  write(pa: number, data: Uint8Array): void {
    this.bytes.set(data, this.paToOffset(pa, data.length));
  }
  read(pa: number, len: number): Uint8Array {
    return this.slice(pa, len).slice();
  }
  fill(pa: number, len: number, value = 0): void {
    this.slice(pa, len).fill(value);
  }
  readU32(pa: number): number {
    return this.view.getUint32(this.paToOffset(pa, 4), true);
  }
  writeU32(pa: number, v: number): void {
    this.view.setUint32(this.paToOffset(pa, 4), v >>> 0, true);
  }
  readU64(pa: number): bigint {
    return this.view.getBigUint64(this.paToOffset(pa, 8), true);
  }
  writeU64(pa: number, v: bigint): void {
    this.view.setBigUint64(this.paToOffset(pa, 8), BigInt.asUintN(64, v), true);
  }
}
