// Typed loader and driver for the WASM introspection core (build/introspect.wasm, or
// build/introspect.unshared.wasm for a non-shared memory). It instantiates the module over the
// caller's WebAssembly.Memory, keeps the physical region table, sets paging/kernel layout/
// offsets, and decodes the core's records into objects. Browser-safe: no Node APIs; the
// caller supplies the module bytes (Node: src/monitor/wasm-file.ts; browser: fetch()).

import * as abi from '../../assembly/introspect-abi.js';
import { OFFSET_INDEX, OFFSET_ORDER, type KernelOffsets } from './kernel-offsets.js';

export class IntrospectError extends Error {}

/** Raw exports of assembly/introspect.ts (u64 <-> bigint). */
export interface IntrospectExports {
  dataEnd(): number;
  scratchPtr(): number;
  scratchSize(): number;
  outPtr(): number;
  outCapacity(): number;
  lastFault(): number;
  clearFault(): void;
  clearRegions(): void;
  addRegion(pa: bigint, size: bigint, offset: bigint): number;
  regionTotal(): number;
  physToOffset(pa: bigint): bigint;
  readPhys64(pa: bigint): bigint;
  readPhys32(pa: bigint): number;
  setPaging(cr3: bigint, la57: number): void;
  walk(va: bigint): bigint;
  walkBatch(inPtr: number, count: number, outPtr: number): number;
  setKernel(pageOffsetBase: bigint, physBase: bigint, directMapBytes: bigint): void;
  kvaToPa(kva: bigint): bigint;
  readKva64(kva: bigint): bigint;
  readKva32(kva: bigint): number;
  readKvaBytes(kva: bigint, len: number): number;
  setOffset(index: number, value: number): number;
  xaLoad(head: bigint, index: bigint): bigint;
  xaLoadBatch(head: bigint, inPtr: number, count: number, outPtr: number): number;
  xaFind(head: bigint, start: bigint, maxIndex: bigint): bigint;
  foundEntry(): bigint;
  setPerCpu(arrayKva: bigint, slots: number): void;
  enumStructOps(idrKva: bigint, maxRecords: number): number;
  programsSeen(): number;
  setMonitorOffset(index: number, value: number): number;
  setRunqueues(symbolValue: bigint): number;
  sampleRunqueues(firstCpu: number, count: number, listLimit: number): number;
  rqOutPtr(): number;
  rqOutCapacity(): number;
}

export const NOT_MAPPED = 0xffff_ffff_ffff_ffffn;
/** Bytes per struct_ops program record (the ABI: assembly/introspect-abi.ts). */
export const RECORD_SIZE = abi.RECORD_SIZE;

/** One struct_ops program as read from guest memory. */
export interface StructOpsProgram {
  id: number;
  name: string;
  verifiedInsns: number;
  /** Runtime stats summed over CPUs; null when the per-CPU stats could not be read. */
  stats: { cnt: bigint; nsecs: bigint; misses: bigint; cpus: number; saturated: boolean } | null;
  /** `<obj>` of the program's `<obj>.bss/.data/.rodata` maps in used_maps (the longest, least
   * truncated prefix), if any. */
  obj: string | null;
  usedMapCount: number;
  progKva: bigint;
  auxKva: bigint;
  nameReadable: boolean;
}

export interface Enumeration {
  programs: StructOpsProgram[];
  /** struct_ops programs found (may exceed programs.length when the output block was full). */
  structOpsCount: number;
  /** Live IDR entries visited. */
  idrEntries: number;
  /** The active scheduler's object name (activeObject()). */
  activeObj: string | null;
}

export interface PhysRegion {
  /** Guest physical start. */
  pa: number;
  size: number;
  /** Byte offset in the memory. */
  offset: number;
}

function decodeName(bytes: Uint8Array): string {
  const z = bytes.indexOf(0);
  return new TextDecoder('latin1').decode(z >= 0 ? bytes.subarray(0, z) : bytes);
}

/** ns per call (0 when the program never ran). */
export function nsPerCall(stats: { cnt: bigint; nsecs: bigint }): number {
  return stats.cnt > 0n ? Number(stats.nsecs) / Number(stats.cnt) : 0;
}

/** misses / (cnt + misses), 0 without any attempt. */
export function missRate(stats: { cnt: bigint; misses: bigint }): number {
  let total = stats.cnt + stats.misses;
  if (total > NOT_MAPPED) total = NOT_MAPPED;
  return total > 0n ? Number(stats.misses) / Number(total) : 0;
}

/** The first program's obj name (id order), or a longer one of another program that it is a
 * prefix of: libbpf truncates `<obj>` differently per section suffix. */
export function activeObject(programs: readonly StructOpsProgram[]): string | null {
  let obj: string | null = null;
  for (const p of programs) {
    if (p.obj === null) continue;
    if (obj === null || (p.obj.length > obj.length && p.obj.startsWith(obj))) obj = p.obj;
  }
  return obj;
}

export function isSharedMemory(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/** Which module file a memory needs: the shared build for a shared memory. */
export function introspectWasmName(memory: WebAssembly.Memory): string {
  return isSharedMemory(memory) ? 'introspect.wasm' : 'introspect.unshared.wasm';
}

export class Introspector {
  readonly core: IntrospectExports;
  private readonly regionList: PhysRegion[] = [];

  /** Instantiates the core over `memory`; `module` must be the matching build (introspectWasmName). */
  constructor(
    module: WebAssembly.Module,
    readonly memory: WebAssembly.Memory,
  ) {
    const instance = new WebAssembly.Instance(module, {
      env: {
        memory,
        abort: (_m: number, _f: number, line: number, col: number) => {
          throw new IntrospectError(`introspection core aborted at ${line}:${col}`);
        },
      },
    });
    this.core = instance.exports as unknown as IntrospectExports;
  }

  static async create(wasm: BufferSource | WebAssembly.Module, memory: WebAssembly.Memory): Promise<Introspector> {
    const module = wasm instanceof WebAssembly.Module ? wasm : await WebAssembly.compile(wasm);
    return new Introspector(module, memory);
  }

  /** First memory offset a guest image may use. */
  get dataEnd(): number {
    return this.core.dataEnd();
  }

  get regions(): readonly PhysRegion[] {
    return this.regionList;
  }

  clearRegions(): void {
    this.core.clearRegions();
    this.regionList.length = 0;
  }

  /** Guest physical [pa, pa+size) lives at memory offset `offset`. */
  addRegion(pa: number, size: number, offset: number): void {
    const status = this.core.addRegion(BigInt(pa), BigInt(size), BigInt(offset));
    const why = [
      '',
      'too many regions (64)',
      'the range is empty or leaves the memory',
      `it overlaps the core's own data (below ${this.dataEnd})`,
      'it overlaps another region',
    ];
    if (status !== 0)
      throw new IntrospectError(
        `cannot map guest physical 0x${pa.toString(16)}+0x${size.toString(16)} at offset 0x${offset.toString(16)}: ${why[-status] ?? status}`,
      );
    this.regionList.push({ pa, size, offset });
  }

  setPaging(cr3: bigint, la57: boolean): void {
    this.core.setPaging(cr3, la57 ? 1 : 0);
  }

  setKernel(layout: { pageOffsetBase: bigint; physBase: bigint; directMapBytes?: bigint }): void {
    this.core.setKernel(layout.pageOffsetBase, layout.physBase, layout.directMapBytes ?? 0n);
  }

  setOffsets(offsets: KernelOffsets): void {
    for (const key of OFFSET_ORDER) {
      const v = offsets[key];
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
        throw new IntrospectError(`offset ${key} = ${v} is not a u32`);
      if (this.core.setOffset(OFFSET_INDEX[key], v) !== 0)
        throw new IntrospectError(
          `the core has no offset-table slot ${OFFSET_INDEX[key]} (${key}): a stale build/introspect*.wasm?`,
        );
    }
  }

  setPerCpu(arrayKva: bigint, slots: number): void {
    this.core.setPerCpu(arrayKva, slots);
  }

  /** Physical address through the page tables, or null. */
  walk(va: bigint): bigint | null {
    const pa = BigInt.asUintN(64, this.core.walk(BigInt.asUintN(64, va)));
    return pa === NOT_MAPPED ? null : pa;
  }

  kvaToPa(kva: bigint): bigint | null {
    const pa = BigInt.asUintN(64, this.core.kvaToPa(BigInt.asUintN(64, kva)));
    return pa === NOT_MAPPED ? null : pa;
  }

  /** u64 at kernel virtual `kva`, null when unreadable. */
  readKva64(kva: bigint): bigint | null {
    this.core.clearFault();
    const v = this.core.readKva64(BigInt.asUintN(64, kva));
    return this.core.lastFault() !== 0 ? null : BigInt.asUintN(64, v);
  }

  readKva32(kva: bigint): number | null {
    this.core.clearFault();
    const v = this.core.readKva32(BigInt.asUintN(64, kva)) >>> 0;
    return this.core.lastFault() !== 0 ? null : v;
  }

  /** Up to scratchSize bytes at `kva`; shorter when a page is unmapped. */
  readKvaBytes(kva: bigint, len: number): Uint8Array {
    const n = this.core.readKvaBytes(BigInt.asUintN(64, kva), len);
    if (n < 0)
      throw new IntrospectError(`readKvaBytes: length ${len} exceeds the scratch block (${this.core.scratchSize()})`);
    return new Uint8Array(this.memory.buffer, this.core.scratchPtr(), n).slice();
  }

  /** Memory offset of guest physical [pa, pa+len), or null when it is not inside one region. */
  physOffset(pa: number, len: number): number | null {
    for (const r of this.regionList) if (pa >= r.pa && pa + len <= r.pa + r.size) return r.offset + pa - r.pa;
    return null;
  }

  /** Bytes at guest physical `pa` (copied), or null when not inside one region. */
  readPhysBytes(pa: number, len: number): Uint8Array | null {
    for (const r of this.regionList) {
      if (pa >= r.pa && pa + len <= r.pa + r.size)
        return new Uint8Array(this.memory.buffer, r.offset + pa - r.pa, len).slice();
    }
    return null;
  }

  xaLoad(head: bigint, index: bigint): bigint {
    return BigInt.asUintN(64, this.core.xaLoad(BigInt.asUintN(64, head), index));
  }

  /** Enumerates the struct_ops programs of `prog_idr` (kernel virtual address of the idr). */
  structOpsPrograms(progIdrKva: bigint): Enumeration {
    const count = this.core.enumStructOps(BigInt.asUintN(64, progIdrKva), this.core.outCapacity());
    if (count < 0)
      throw new IntrospectError(
        `prog_idr at 0x${progIdrKva.toString(16)} is not readable (wrong KASLR layout or memory image?)`,
      );
    const n = Math.min(count, this.core.outCapacity());
    const base = this.core.outPtr();
    const bytes = new Uint8Array(this.memory.buffer, base, n * RECORD_SIZE).slice();
    const v = new DataView(bytes.buffer);
    const programs: StructOpsProgram[] = [];
    for (let i = 0; i < n; i++) {
      const o = i * RECORD_SIZE;
      const flags = v.getUint32(o + abi.REC_FLAGS, true);
      programs.push({
        progKva: v.getBigUint64(o + abi.REC_PROG_KVA, true), // records are read from memory: already unsigned
        auxKva: v.getBigUint64(o + abi.REC_AUX_KVA, true),
        stats:
          (flags & abi.FLAG_STATS) !== 0
            ? {
                cnt: v.getBigUint64(o + abi.REC_CNT, true),
                nsecs: v.getBigUint64(o + abi.REC_NSECS, true),
                misses: v.getBigUint64(o + abi.REC_MISSES, true),
                cpus: v.getUint32(o + abi.REC_CPUS, true),
                saturated: (flags & abi.FLAG_SATURATED) !== 0,
              }
            : null,
        id: v.getUint32(o + abi.REC_ID, true),
        verifiedInsns: v.getUint32(o + abi.REC_VERIFIED, true),
        usedMapCount: v.getUint32(o + abi.REC_USED_MAPS, true),
        name: decodeName(bytes.subarray(o + abi.REC_NAME, o + abi.REC_NAME + abi.NAME_LEN)),
        obj:
          (flags & abi.FLAG_OBJ) !== 0
            ? decodeName(bytes.subarray(o + abi.REC_OBJ, o + abi.REC_OBJ + abi.NAME_LEN))
            : null,
        nameReadable: (flags & abi.FLAG_NAME_FAULT) === 0,
      });
    }
    return { programs, structOpsCount: count, idrEntries: this.core.programsSeen(), activeObj: activeObject(programs) };
  }
}
