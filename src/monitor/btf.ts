// BTF (BPF Type Format) parser: reads a kernel's `.BTF` section (or /sys/kernel/btf/vmlinux)
// and answers the questions the monitor asks — "where is member a.b of struct S, how wide is
// it, what is enum value V" — resolving through typedefs, const/volatile/restrict/type-tag
// modifiers, anonymous struct/union members and bitfields. Browser-safe: no Node APIs.

import { hashName, hashTableName, slotTable, tableNameIs } from '../elf/name-hash.js';

export class BtfError extends Error {}

export const BTF_KIND = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

const BTF_MAGIC = 0xeb9f;
const MAX_RESOLVE_DEPTH = 64;

export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the enclosing struct, in bits. */
  bitOffset: number;
  /** Bitfield width in bits; 0 for a plain member. */
  bitSize: number;
}

export interface BtfType {
  id: number;
  kind: number;
  name: string;
  /** size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, referenced type id for the others. */
  sizeOrType: number;
  members?: BtfMember[];
  enumValues?: { name: string; value: bigint }[];
  array?: { type: number; indexType: number; nelems: number };
  /** DATASEC: its variables (VAR type id, byte offset in the section, size). */
  vars?: { type: number; offset: number; size: number }[];
  /** INT: encoding (1 signed, 2 char, 4 bool), bit offset and width in bits. */
  int?: { encoding: number; bitOffset: number; bits: number };
  /** ENUM/ENUM64: the kind flag (signed values). */
  signed?: boolean;
}

/** Where a member lives, resolved from the outermost struct. */
export interface MemberLocation {
  /** Byte offset of the member (for a bitfield: of the byte holding its first bit). */
  offset: number;
  bitOffset: number;
  bitSize: number;
  /** Size in bytes of the member's type (after typedefs/modifiers). */
  size: number;
  type: number;
}

/**
 * A BTF blob, indexed at construction and decoded on demand: the constructor walks the type
 * section once (every record's extent checked, its offset and kind kept, named types hashed by
 * their name bytes into an open-addressing index) and decodes no type. A vmlinux has ~100k
 * types; decoding them all into objects cost a fresh process ~0.3 s (seconds under emulation)
 * before the monitor could start, for the few dozen structs it asks about.
 */
export class Btf {
  /** Types in the blob, `void` (id 0) included: ids run from 0 to count - 1. */
  readonly count: number;
  private readonly view: DataView;
  private readonly strings: Uint8Array;
  private stringText: string | undefined;
  /** Where type id's record starts in the blob (id 0: none). */
  private readonly offsets: Uint32Array;
  private readonly kinds: Uint8Array;
  /** Open addressing over named types, linear probing: 0 empty, else the type id. */
  private readonly nameSlots: Int32Array;
  private readonly nameHashes: Uint32Array;
  private readonly decoded: (BtfType | undefined)[] = [];

  constructor(
    bytes: Uint8Array,
    readonly label = 'BTF',
  ) {
    if (bytes.length < 24) throw new BtfError(`${label}: too short for a BTF header`);
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (v.getUint16(0, true) !== BTF_MAGIC)
      throw new BtfError(
        `${label}: bad magic 0x${v.getUint16(0, true).toString(16)} (big-endian BTF is not supported)`,
      );
    const hdrLen = v.getUint32(4, true);
    const typeOff = v.getUint32(8, true);
    const typeLen = v.getUint32(12, true);
    const strOff = v.getUint32(16, true);
    const strLen = v.getUint32(20, true);
    const typesStart = hdrLen + typeOff;
    const strStart = hdrLen + strOff;
    if (hdrLen < 24 || typesStart + typeLen > bytes.length || strStart + strLen > bytes.length) {
      throw new BtfError(`${label}: type or string section lies outside the ${bytes.length} bytes`);
    }
    this.view = v;
    this.strings = bytes.subarray(strStart, strStart + strLen);
    const end = typesStart + typeLen;
    // pass 1: every record's extent (a bad one is an error now, not at first use)
    const starts: number[] = [0];
    for (let o = typesStart; o < end;) {
      if (o + 12 > end) throw new BtfError(`${label}: truncated type at offset ${o}`);
      starts.push(o);
      const info = v.getUint32(o + 4, true);
      const length = 12 + trailerLength((info >>> 24) & 0x1f, info & 0xffff, label, starts.length - 1);
      if (o + length > end) throw new BtfError(`${label}: type ${starts.length - 1} runs past the type section`);
      const nameOff = v.getUint32(o, true);
      if (nameOff !== 0 && nameOff >= strLen)
        throw new BtfError(`${label}: string offset ${nameOff} outside the string section`);
      o += length;
    }
    this.count = starts.length;
    this.offsets = Uint32Array.from(starts);
    this.kinds = new Uint8Array(this.count);
    this.nameHashes = new Uint32Array(this.count);
    this.nameSlots = slotTable(this.count);
    // pass 2: kinds, and the name index (hashes of the name bytes: no string made)
    const mask = this.nameSlots.length - 1;
    for (let id = 1; id < this.count; id++) {
      const o = this.offsets[id];
      this.kinds[id] = (v.getUint32(o + 4, true) >>> 24) & 0x1f;
      const nameOff = v.getUint32(o, true);
      if (nameOff === 0 || this.strings[nameOff] === 0) continue;
      const h = hashTableName(this.strings, nameOff);
      this.nameHashes[id] = h;
      let slot = h & mask;
      while (this.nameSlots[slot] !== 0) slot = (slot + 1) & mask;
      this.nameSlots[slot] = id;
    }
  }

  /** The name at `off` in the string section (decoded once, as one string: offsets stay byte offsets). */
  private str(off: number): string {
    if (off >= this.strings.length)
      throw new BtfError(`${this.label}: string offset ${off} outside the string section`);
    this.stringText ??= new TextDecoder('latin1').decode(this.strings);
    const end = this.stringText.indexOf('\0', off);
    return this.stringText.slice(off, end < 0 ? this.stringText.length : end);
  }

  /** Ids of the types named `name`, in id order. */
  private idsNamed(name: string): number[] {
    const h = hashName(name);
    if (h < 0) return [];
    const ids: number[] = [];
    const mask = this.nameSlots.length - 1;
    for (
      let slot = h & mask, id = this.nameSlots[slot];
      id !== 0;
      slot = (slot + 1) & mask, id = this.nameSlots[slot]
    ) {
      if (this.nameHashes[id] === h && tableNameIs(this.strings, this.view.getUint32(this.offsets[id], true), name))
        ids.push(id);
    }
    return ids.sort((a, b) => a - b);
  }

  /** The types named `name`, in id order. */
  named(name: string): BtfType[] {
    return this.idsNamed(name).map((id) => this.type(id));
  }

  /** The first enum (ENUM or ENUM64) with an enumerator named `valueName`. */
  enumWith(valueName: string): BtfType | undefined {
    for (let id = 1; id < this.count; id++) {
      if (this.kinds[id] !== BTF_KIND.ENUM && this.kinds[id] !== BTF_KIND.ENUM64) continue;
      const t = this.type(id);
      if (t.enumValues!.some((e) => e.name === valueName)) return t;
    }
    return undefined;
  }

  type(id: number): BtfType {
    if (!Number.isInteger(id) || id < 0 || id >= this.count)
      throw new BtfError(`${this.label}: type id ${id} does not exist`);
    let t = this.decoded[id];
    if (t === undefined) {
      t = id === 0 ? { id: 0, kind: 0, name: 'void', sizeOrType: 0 } : this.decode(id);
      this.decoded[id] = t;
    }
    return t;
  }

  /** Type `id` as an object, from its record (whose extent the constructor checked). */
  private decode(id: number): BtfType {
    const v = this.view;
    let o = this.offsets[id];
    const info = v.getUint32(o + 4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kindFlag = info >>> 31 === 1;
    const t: BtfType = { id, kind, name: this.str(v.getUint32(o, true)), sizeOrType: v.getUint32(o + 8, true) };
    o += 12;
    switch (kind) {
      case BTF_KIND.INT: {
        const w = v.getUint32(o, true);
        t.int = { encoding: (w >>> 24) & 0xf, bitOffset: (w >>> 16) & 0xff, bits: w & 0xff };
        break;
      }
      case BTF_KIND.ARRAY:
        t.array = { type: v.getUint32(o, true), indexType: v.getUint32(o + 4, true), nelems: v.getUint32(o + 8, true) };
        break;
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION:
        t.members = [];
        for (let i = 0; i < vlen; i++, o += 12) {
          const raw = v.getUint32(o + 8, true);
          t.members.push({
            name: this.str(v.getUint32(o, true)),
            type: v.getUint32(o + 4, true),
            bitOffset: kindFlag ? raw & 0xffffff : raw,
            bitSize: kindFlag ? raw >>> 24 : 0,
          });
        }
        break;
      case BTF_KIND.ENUM:
        t.enumValues = [];
        t.signed = kindFlag;
        for (let i = 0; i < vlen; i++, o += 8) {
          const value = kindFlag ? BigInt(v.getInt32(o + 4, true)) : BigInt(v.getUint32(o + 4, true));
          t.enumValues.push({ name: this.str(v.getUint32(o, true)), value });
        }
        break;
      case BTF_KIND.ENUM64:
        t.enumValues = [];
        t.signed = kindFlag;
        for (let i = 0; i < vlen; i++, o += 12) {
          const value = (BigInt(v.getUint32(o + 8, true)) << 32n) | BigInt(v.getUint32(o + 4, true));
          t.enumValues.push({
            name: this.str(v.getUint32(o, true)),
            value: kindFlag ? BigInt.asIntN(64, value) : value,
          });
        }
        break;
      case BTF_KIND.DATASEC:
        t.vars = [];
        for (let i = 0; i < vlen; i++, o += 12)
          t.vars.push({ type: v.getUint32(o, true), offset: v.getUint32(o + 4, true), size: v.getUint32(o + 8, true) });
        break;
    }
    return t;
  }

  /** Follows typedefs and modifiers to the underlying type. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let i = 0; i < MAX_RESOLVE_DEPTH; i++) {
      if (
        t.kind !== BTF_KIND.TYPEDEF &&
        t.kind !== BTF_KIND.VOLATILE &&
        t.kind !== BTF_KIND.CONST &&
        t.kind !== BTF_KIND.RESTRICT &&
        t.kind !== BTF_KIND.TYPE_TAG
      )
        return t;
      t = this.type(t.sizeOrType);
    }
    throw new BtfError(`${this.label}: typedef/modifier chain from type ${id} is too deep`);
  }

  /** Size in bytes of a type. */
  sizeOf(id: number, depth = 0): number {
    if (depth > MAX_RESOLVE_DEPTH) throw new BtfError(`${this.label}: type ${id} nests too deeply`);
    const t = this.resolve(id);
    switch (t.kind) {
      case BTF_KIND.INT:
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION:
      case BTF_KIND.ENUM:
      case BTF_KIND.ENUM64:
      case BTF_KIND.FLOAT:
      case BTF_KIND.DATASEC:
        return t.sizeOrType;
      case BTF_KIND.PTR:
        return 8;
      case BTF_KIND.VAR:
        return this.sizeOf(t.sizeOrType, depth + 1);
      case BTF_KIND.ARRAY:
        return t.array!.nelems * this.sizeOf(t.array!.type, depth + 1);
      default:
        throw new BtfError(`${this.label}: type ${id} (kind ${t.kind}) has no size`);
    }
  }

  /** The complete struct (or union) named `name` (a forward declaration does not count). */
  struct(name: string): BtfType {
    for (const id of this.idsNamed(name)) {
      if (this.kinds[id] === BTF_KIND.STRUCT || this.kinds[id] === BTF_KIND.UNION) return this.type(id);
    }
    throw new BtfError(`${this.label}: no struct ${name}`);
  }

  hasStruct(name: string): boolean {
    return this.idsNamed(name).some((id) => this.kinds[id] === BTF_KIND.STRUCT || this.kinds[id] === BTF_KIND.UNION);
  }

  /** Location of `path` ("a" or "a.b.c") inside struct `structName`. Anonymous struct/union
   * members are searched as if their members belonged to the parent. */
  member(structName: string, path: string): MemberLocation {
    let t = this.struct(structName);
    let bitBase = 0;
    const parts = path.split('.');
    let found: { m: BtfMember; bit: number } | undefined;
    for (let p = 0; p < parts.length; p++) {
      found = this.findMember(t, parts[p], bitBase, 0);
      if (found === undefined)
        throw new BtfError(`${this.label}: struct ${structName} has no member ${parts.slice(0, p + 1).join('.')}`);
      bitBase = found.bit;
      if (p < parts.length - 1) {
        const inner = this.resolve(found.m.type);
        if (inner.kind !== BTF_KIND.STRUCT && inner.kind !== BTF_KIND.UNION) {
          throw new BtfError(
            `${this.label}: ${structName}.${parts.slice(0, p + 1).join('.')} is not a struct or union`,
          );
        }
        t = inner;
      }
    }
    const m = found!.m;
    return {
      offset: Math.floor(found!.bit / 8),
      bitOffset: found!.bit,
      bitSize: m.bitSize,
      size: m.bitSize !== 0 ? Math.ceil(m.bitSize / 8) : this.sizeOf(m.type),
      type: m.type,
    };
  }

  /** Byte offset of a non-bitfield member; throws on bitfields. */
  offsetOf(structName: string, path: string): number {
    const loc = this.member(structName, path);
    if (loc.bitSize !== 0 || loc.bitOffset % 8 !== 0)
      throw new BtfError(`${this.label}: ${structName}.${path} is a bitfield`);
    return loc.offset;
  }

  private findMember(
    t: BtfType,
    name: string,
    bitBase: number,
    depth: number,
  ): { m: BtfMember; bit: number } | undefined {
    if (depth > MAX_RESOLVE_DEPTH) throw new BtfError(`${this.label}: anonymous members nest too deeply in ${t.name}`);
    for (const m of t.members ?? []) {
      if (m.name === name) return { m, bit: bitBase + m.bitOffset };
    }
    for (const m of t.members ?? []) {
      if (m.name !== '') continue;
      const inner = this.resolve(m.type);
      if (inner.kind !== BTF_KIND.STRUCT && inner.kind !== BTF_KIND.UNION) continue;
      const hit = this.findMember(inner, name, bitBase + m.bitOffset, depth + 1);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  /** The value of enumerator `valueName` (searched in every enum, or in `enumName` only). */
  enumValue(valueName: string, enumName?: string): bigint {
    const pool = enumName !== undefined ? this.named(enumName) : [this.enumWith(valueName)];
    for (const t of pool) {
      const hit = t?.enumValues?.find((e) => e.name === valueName);
      if (hit !== undefined) return hit.value;
    }
    throw new BtfError(
      `${this.label}: no enumerator ${valueName}${enumName !== undefined ? ` in enum ${enumName}` : ''}`,
    );
  }
}

/** Bytes a type record of `kind` carries after its 12-byte header; throws on an unknown kind. */
function trailerLength(kind: number, vlen: number, label: string, id: number): number {
  switch (kind) {
    case BTF_KIND.INT:
    case BTF_KIND.VAR:
    case BTF_KIND.DECL_TAG:
      return 4;
    case BTF_KIND.PTR:
    case BTF_KIND.FWD:
    case BTF_KIND.TYPEDEF:
    case BTF_KIND.VOLATILE:
    case BTF_KIND.CONST:
    case BTF_KIND.RESTRICT:
    case BTF_KIND.FUNC:
    case BTF_KIND.FLOAT:
    case BTF_KIND.TYPE_TAG:
      return 0;
    case BTF_KIND.ARRAY:
      return 12;
    case BTF_KIND.STRUCT:
    case BTF_KIND.UNION:
    case BTF_KIND.DATASEC:
    case BTF_KIND.ENUM64:
      return 12 * vlen;
    case BTF_KIND.ENUM:
    case BTF_KIND.FUNC_PROTO:
      return 8 * vlen;
    default:
      throw new BtfError(`${label}: unknown BTF kind ${kind} (type ${id})`);
  }
}
