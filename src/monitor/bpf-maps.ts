// The guest's BPF maps, read from the host: `openMaps(guest)` walks `map_idr` (the IDR every
// map is registered in) and gives each map's identity (id, name, type, sizes, flags, BTF type
// ids, address). A `BpfMap` reads its elements straight out of the kernel's own structures
// (ARRAY, PERCPU_ARRAY and the hash family: bpf-map-walk.ts), decodes them with the
// map's own BTF (the blob the loader gave, kept at `bpf_map.btf->data`), so a `.rodata`
// variable reads as `nr_cpus = 4`, and writes ARRAY elements and `.bss`/`.data` fields back.
// Guest memory is hostile: every walk is bounded and a torn structure is a flagged partial
// result or a BpfMapError, never a hang. Browser-safe.

import { Btf, BtfError, BTF_KIND } from './btf.js';
import { BtfRenderer, encodeField, fieldLocation, type BtfValue, type ScalarInput } from './btf-value.js';
import { bpfMapLayout, type BpfMapLayout } from './bpf-map-layout.js';
import type { GuestKernel } from './guest-kernel.js';
import { NOT_MAPPED } from './introspector.js';
import { arrayElement, arrayElementKva, arrayWalk, hashWalk, type MapDump, type MapWalk } from './bpf-map-walk.js';

export type { MapDump, MapEntry } from './bpf-map-walk.js';

export class BpfMapError extends Error {}

const MAX_MAPS = 4096;
const MAX_ID = 0x7fff_ffff;
const MAX_BTF_BYTES = 16 << 20;
const MAX_KEY_OR_VALUE = 1 << 20;
/** Elements read by `entries()` unless told otherwise. */
export const DEFAULT_ENTRY_LIMIT = 100_000;
const BPF_F_RDONLY_PROG = 1 << 7;

export interface BpfMapInfo {
  id: number;
  name: string;
  /** Short type name as bpftool prints it ("array", "percpu_hash"), or "type N" when unknown. */
  type: string;
  typeId: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  mapExtra: bigint;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  btfVmlinuxValueTypeId: number;
  frozen: boolean;
  kva: bigint;
}

const hex = (v: bigint): string => '0x' + v.toString(16);

function le(n: number | bigint, size: number, what: string): Uint8Array {
  const v = BigInt(n);
  if (v < 0n || (size < 8 && v >= 1n << BigInt(size * 8)))
    throw new BpfMapError(`${what} ${n} does not fit in ${size} bytes`);
  const out = new Uint8Array(size);
  for (let i = 0; i < size && i < 8; i++) out[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

export class BpfMap {
  private btfCache: Btf | null | undefined;
  private btfProblem: string | null = null;

  constructor(
    readonly maps: BpfMaps,
    readonly info: BpfMapInfo,
  ) {}

  get id(): number {
    return this.info.id;
  }
  get name(): string {
    return this.info.name;
  }
  get type(): string {
    return this.info.type;
  }

  private get guest(): GuestKernel {
    return this.maps.guest;
  }
  private get layout(): BpfMapLayout {
    return this.maps.layout;
  }

  isPerCpu(): boolean {
    return this.type === 'percpu_array' || this.type === 'percpu_hash' || this.type === 'lru_percpu_hash';
  }
  isArray(): boolean {
    return this.type === 'array' || this.type === 'percpu_array';
  }
  isHash(): boolean {
    return (
      this.type === 'hash' || this.type === 'lru_hash' || this.type === 'percpu_hash' || this.type === 'lru_percpu_hash'
    );
  }
  /** Whether `entries()` can read this map's elements. */
  readable(): boolean {
    return (this.isArray() && this.layout.array !== null) || (this.isHash() && this.layout.htab !== null);
  }

  /** The map's own BTF (the loader's blob), or null without one; `btfError()` says why not. */
  btf(): Btf | null {
    if (this.btfCache !== undefined) return this.btfCache;
    this.btfCache = null;
    const l = this.layout.btf;
    const btfKva = this.guest.read64(this.info.kva + BigInt(this.layout.map.btf));
    if (btfKva === null) {
      this.btfProblem = 'bpf_map.btf is unreadable';
      return null;
    }
    if (btfKva === 0n) return null;
    const base = l.baseBtf === null ? 0n : this.guest.read64(btfKva + BigInt(l.baseBtf));
    if (base === null) {
      this.btfProblem = `struct btf at ${hex(btfKva)} is unreadable`;
      return null;
    }
    if (base !== 0n) {
      this.btfProblem = 'the map BTF is split BTF (on a base), which is not supported';
      return null;
    }
    const data = this.guest.read64(btfKva + BigInt(l.data));
    const size = this.guest.read32(btfKva + BigInt(l.dataSize));
    if (data === null || size === null) {
      this.btfProblem = `struct btf at ${hex(btfKva)} is unreadable`;
      return null;
    }
    if (size > MAX_BTF_BYTES) {
      this.btfProblem = `the map BTF claims ${size} bytes (more than ${MAX_BTF_BYTES})`;
      return null;
    }
    const bytes = this.guest.readBytes(data, size);
    if (bytes === null) {
      this.btfProblem = `the map BTF data at ${hex(data)} is unreadable`;
      return null;
    }
    try {
      this.btfCache = new Btf(bytes, `map ${this.name} BTF`);
    } catch (err) {
      if (!(err instanceof BtfError)) throw err;
      this.btfProblem = err.message;
    }
    return this.btfCache;
  }

  /** Why `btf()` is null despite a BTF pointer, or null. */
  btfError(): string | null {
    this.btf();
    return this.btfProblem;
  }

  /** The map BTF's value type id, when the map has BTF and the id is in it. */
  valueType(): { btf: Btf; id: number } | null {
    return this.typeOf(this.info.btfValueTypeId);
  }
  keyType(): { btf: Btf; id: number } | null {
    return this.typeOf(this.info.btfKeyTypeId);
  }

  private typeOf(id: number): { btf: Btf; id: number } | null {
    const btf = id === 0 ? null : this.btf();
    return btf === null || id >= btf.count ? null : { btf, id };
  }

  /** A DATASEC-valued ARRAY: `.bss`, `.data`, `.rodata`, `.data.<name>`... (the section name). */
  section(): string | null {
    const v = this.valueType();
    if (v === null || this.type !== 'array') return null;
    try {
      const t = v.btf.resolve(v.id);
      return t.kind === BTF_KIND.DATASEC ? t.name : null;
    } catch (err) {
      if (err instanceof BtfError) return null; // a typedef chain into nowhere
      throw err;
    }
  }

  /** Reads the elements (at most `limit`). */
  entries(limit = DEFAULT_ENTRY_LIMIT): MapDump {
    if (this.isArray()) return arrayWalk(this.walk(), limit);
    if (this.isHash()) return hashWalk(this.walk(), limit);
    return { entries: [], truncated: false, problems: [`${this.type} maps are listed, not read`] };
  }

  /** The value for `key` (an index for arrays, or the key's bytes); per-CPU maps give one value
   * per CPU; null when absent. */
  lookup(key: number | bigint | Uint8Array): Uint8Array | (Uint8Array | null)[] | null {
    const k = key instanceof Uint8Array ? key : le(key, this.info.keySize, `${this.name}: key`);
    if (k.length !== this.info.keySize)
      throw new BpfMapError(`${this.name}: the key is ${this.info.keySize} bytes, not ${k.length}`);
    if (this.isArray()) {
      if (k.length !== 4) throw new BpfMapError(`${this.name}: an array map with a ${k.length}-byte key`);
      const index = new DataView(k.buffer, k.byteOffset, 4).getUint32(0, true);
      if (index >= this.info.maxEntries) return null;
      const e = arrayElement(this.walk(), index);
      return this.isPerCpu() ? e.perCpu! : e.value;
    }
    if (!this.isHash()) throw new BpfMapError(`${this.name}: lookup in ${this.type} maps is not supported`);
    const dump = hashWalk(this.walk(), this.info.maxEntries);
    const hit = dump.entries.find((e) => e.key.length === k.length && e.key.every((b, i) => b === k[i]));
    return hit === undefined ? null : (hit.perCpu ?? hit.value);
  }

  /** Writes element `index` of an ARRAY map. */
  update(key: number | bigint | Uint8Array, value: Uint8Array): void {
    this.checkWritable();
    const index =
      key instanceof Uint8Array
        ? key.length === 4
          ? new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true)
          : -1
        : Number(key);
    if (!Number.isInteger(index) || index < 0 || index >= this.info.maxEntries) {
      throw new BpfMapError(`${this.name}: index ${String(key)} is out of range (max_entries ${this.info.maxEntries})`);
    }
    if (value.length !== this.info.valueSize)
      throw new BpfMapError(`${this.name}: the value is ${this.info.valueSize} bytes, not ${value.length}`);
    this.guest.writeBytes(this.elementKva(index), value);
  }

  /** A field of element `index` (default 0) by dotted path, rendered through the map BTF:
   * `field('nr_cpus')` in `.rodata`, `field('stats.cnt[2]')`. */
  field(path: string, index = 0): BtfValue {
    const { btf, loc } = this.locate(path);
    const value = this.readElementValue(index);
    try {
      return new BtfRenderer(btf).field(loc, value);
    } catch (err) {
      if (err instanceof BtfError) throw new BpfMapError(`${this.name}: ${err.message}`);
      throw err;
    }
  }

  /** Sets a field of element `index` (default 0) of a writable ARRAY map (`.bss`, `.data`). */
  setField(path: string, value: ScalarInput, index = 0): void {
    this.checkWritable();
    const { btf, loc } = this.locate(path);
    const bytes = this.readElementValue(index);
    try {
      encodeField(btf, loc, value, bytes);
    } catch (err) {
      if (err instanceof BtfError) throw new BpfMapError(`${this.name}: ${err.message}`);
      throw err;
    }
    this.guest.writeBytes(
      this.elementKva(index) + BigInt(loc.offset),
      bytes.subarray(loc.offset, loc.offset + loc.size),
    );
  }

  /** Where a field of element `index` of an ARRAY map lives in guest memory (a watchpoint's target). */
  fieldAddress(path: string, index = 0): { kva: bigint; size: number; path: string } {
    if (this.type !== 'array')
      throw new BpfMapError(`${this.name}: fields are located in ARRAY maps, this is ${this.type}`);
    if (!Number.isInteger(index) || index < 0 || index >= this.info.maxEntries)
      throw new BpfMapError(`${this.name}: index ${index} is out of range (max_entries ${this.info.maxEntries})`);
    const { loc } = this.locate(path);
    if (loc.bitSize !== 0) throw new BpfMapError(`${this.name}: ${loc.path} is a bitfield; a watch needs whole bytes`);
    return { kva: this.elementKva(index) + BigInt(loc.offset), size: loc.size, path: loc.path };
  }

  /** Elements rendered through the map BTF where there is one (hex bytes otherwise). */
  render(value: Uint8Array): BtfValue {
    const v = this.valueType();
    if (v === null) return hexBytes(value);
    try {
      return new BtfRenderer(v.btf).render(v.id, value);
    } catch (err) {
      if (err instanceof BtfError) return hexBytes(value);
      throw err;
    }
  }

  renderKey(key: Uint8Array): BtfValue {
    const k = this.keyType();
    if (k === null)
      return this.isArray() && key.length === 4
        ? new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true)
        : hexBytes(key);
    try {
      return new BtfRenderer(k.btf).render(k.id, key);
    } catch (err) {
      if (err instanceof BtfError) return hexBytes(key);
      throw err;
    }
  }

  private locate(path: string): { btf: Btf; loc: ReturnType<typeof fieldLocation> } {
    const v = this.valueType();
    if (v === null)
      throw new BpfMapError(
        `${this.name}: no BTF value type to find "${path}" in${this.btfError() !== null ? ` (${this.btfError()})` : ''}`,
      );
    try {
      const loc = fieldLocation(v.btf, v.id, path, this.name);
      if (loc.offset + loc.size > this.info.valueSize) {
        throw new BpfMapError(
          `${this.name}: ${loc.path} (bytes ${loc.offset}..${loc.offset + loc.size - 1}) lies outside the ${this.info.valueSize}-byte value`,
        );
      }
      return { btf: v.btf, loc };
    } catch (err) {
      if (err instanceof BtfError) throw new BpfMapError(err.message);
      throw err;
    }
  }

  private checkWritable(): void {
    if (this.type !== 'array')
      throw new BpfMapError(`${this.name}: writes go to ARRAY maps only, this is ${this.type}`);
    if (this.layout.array === null) throw new BpfMapError('this kernel has no struct bpf_array in its BTF');
    if (this.info.frozen || (this.info.flags & BPF_F_RDONLY_PROG) !== 0) {
      throw new BpfMapError(
        `${this.name}: the map is frozen (read-only to programs${this.section() === '.rodata' ? ': .rodata' : ''}); refusing to write`,
      );
    }
  }

  private elementKva(index: number): bigint {
    const kva = arrayElementKva(this.walk(), index);
    if (kva === null)
      throw new BpfMapError(`${this.name}: bpf_array.elem_size is unreadable or smaller than the value`);
    return kva;
  }

  private walk(): MapWalk {
    const i = this.info;
    return {
      guest: this.guest,
      layout: this.layout,
      kva: i.kva,
      keySize: i.keySize,
      valueSize: i.valueSize,
      maxEntries: i.maxEntries,
      perCpu: this.isPerCpu(),
    };
  }

  private readElementValue(index: number): Uint8Array {
    if (this.type !== 'array')
      throw new BpfMapError(`${this.name}: fields are read from ARRAY maps, this is ${this.type}`);
    if (!Number.isInteger(index) || index < 0 || index >= this.info.maxEntries)
      throw new BpfMapError(`${this.name}: index ${index} is out of range (max_entries ${this.info.maxEntries})`);
    const bytes = this.guest.readBytes(this.elementKva(index), this.info.valueSize);
    if (bytes === null) throw new BpfMapError(`${this.name}: element ${index} is unreadable`);
    return bytes;
  }
}

export function hexBytes(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export class BpfMaps {
  readonly layout: BpfMapLayout;
  private readonly list: BpfMap[] = [];
  /** map_idr entries that were not readable maps, in words. */
  readonly problems: string[] = [];
  /** More than MAX_MAPS entries: the list is partial. */
  truncated = false;

  constructor(readonly guest: GuestKernel) {
    try {
      this.layout = bpfMapLayout(guest.kernel.btf);
    } catch (err) {
      if (err instanceof BtfError)
        throw new BpfMapError(`this kernel's BTF lacks what the map walk needs: ${err.message}`);
      throw err;
    }
    this.enumerate();
  }

  private enumerate(): void {
    const l = this.layout;
    const idr = this.guest.symbolKva('map_idr');
    const head = this.guest.read64(idr + BigInt(l.idrRt + l.xaHead));
    const base = this.guest.read32(idr + BigInt(l.idrBase));
    if (head === null || base === null)
      throw new BpfMapError(`map_idr at ${hex(idr)} is unreadable (wrong KASLR layout or memory image?)`);
    const core = this.guest.intro.core;
    let index = 0n;
    for (let n = 0; ; n++) {
      if (n >= MAX_MAPS) {
        this.truncated = true;
        break;
      }
      const found = BigInt.asUintN(64, core.xaFind(head, index, BigInt(MAX_ID)));
      if (found === NOT_MAPPED) break;
      const entry = BigInt.asUintN(64, core.foundEntry());
      const id = Number(found) + base;
      index = found + 1n;
      const info = this.readInfo(entry, id);
      if (typeof info === 'string') this.problems.push(`map_idr id ${id}: ${info}`);
      else this.list.push(new BpfMap(this, info));
    }
  }

  private readInfo(kva: bigint, id: number): BpfMapInfo | string {
    if ((kva & 7n) !== 0n) return `entry ${hex(kva)} is not a struct bpf_map pointer`;
    const m = this.layout.map;
    const g = this.guest;
    const at = (o: number): bigint => kva + BigInt(o);
    const u32 = [
      m.id,
      m.type,
      m.keySize,
      m.valueSize,
      m.maxEntries,
      m.flags,
      m.btfKeyTypeId,
      m.btfValueTypeId,
      m.btfVmlinuxValueTypeId,
    ].map((o) => g.read32(at(o)));
    const nameBytes = g.readBytes(at(m.name), 16);
    const mapExtra = g.read64(at(m.mapExtra));
    const frozen = m.frozen === null ? 0 : (g.readBytes(at(m.frozen), 1)?.[0] ?? null);
    if (u32.some((v) => v === null) || nameBytes === null || mapExtra === null || frozen === null)
      return `struct bpf_map at ${hex(kva)} is unreadable`;
    const [ownId, typeId, keySize, valueSize, maxEntries, flags, keyTid, valueTid, vmlinuxTid] = u32 as number[];
    if (ownId !== id) return `struct bpf_map at ${hex(kva)} has id ${ownId}, not ${id}`;
    if (keySize > MAX_KEY_OR_VALUE || valueSize > MAX_KEY_OR_VALUE)
      return `struct bpf_map at ${hex(kva)}: key/value size ${keySize}/${valueSize} is implausible`;
    const z = nameBytes.indexOf(0);
    return {
      id,
      name: new TextDecoder('latin1').decode(z >= 0 ? nameBytes.subarray(0, z) : nameBytes),
      type: this.layout.typeNames.get(typeId) ?? `type ${typeId}`,
      typeId,
      keySize,
      valueSize,
      maxEntries,
      flags,
      mapExtra,
      btfKeyTypeId: keyTid,
      btfValueTypeId: valueTid,
      btfVmlinuxValueTypeId: vmlinuxTid,
      frozen: frozen !== 0,
      kva,
    };
  }

  maps(): readonly BpfMap[] {
    return this.list;
  }

  /** A map by its exact name, else the one map whose name ends with `name` (".rodata"). */
  map(name: string): BpfMap {
    const exact = this.list.filter((m) => m.name === name);
    if (exact.length === 1) return exact[0];
    const suffix = exact.length === 0 ? this.list.filter((m) => m.name.endsWith(name)) : exact;
    if (suffix.length === 1) return suffix[0];
    const names = this.list.map((m) => m.name).join(', ') || '(none)';
    if (suffix.length > 1)
      throw new BpfMapError(
        `${suffix.length} maps match "${name}" (${suffix.map((m) => `${m.name} id ${m.id}`).join(', ')}): use mapById()`,
      );
    throw new BpfMapError(`no BPF map named "${name}"; the guest has: ${names}`);
  }

  mapById(id: number): BpfMap {
    const m = this.list.find((x) => x.id === id);
    if (m === undefined) throw new BpfMapError(`no BPF map with id ${id}`);
    return m;
  }
}

/** Walks `map_idr` of an opened guest kernel. */
export function openMaps(guest: GuestKernel): BpfMaps {
  return new BpfMaps(guest);
}
