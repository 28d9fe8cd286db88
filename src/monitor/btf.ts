// BTF (BPF Type Format) parser: reads a kernel's `.BTF` section (or /sys/kernel/btf/vmlinux)
// and answers the questions the monitor asks — "where is member a.b of struct S, how wide is
// it, what is enum value V" — resolving through typedefs, const/volatile/restrict/type-tag
// modifiers, anonymous struct/union members and bitfields. Browser-safe: no Node APIs.

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

export class Btf {
  readonly types: BtfType[] = [];
  private readonly byName = new Map<string, number[]>();

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
    // the string section decoded once (single-byte: string offsets are byte offsets), names
    // sliced from it: a decode per name was most of a vmlinux BTF's ~100k types' cost
    const strings = new TextDecoder('latin1').decode(bytes.subarray(strStart, strStart + strLen));
    const str = (off: number): string => {
      if (off >= strings.length) throw new BtfError(`${label}: string offset ${off} outside the string section`);
      const end = strings.indexOf('\0', off);
      return strings.slice(off, end < 0 ? strings.length : end);
    };
    this.types.push({ id: 0, kind: 0, name: 'void', sizeOrType: 0 });
    let o = typesStart;
    const end = typesStart + typeLen;
    while (o < end) {
      if (o + 12 > end) throw new BtfError(`${label}: truncated type at offset ${o}`);
      const nameOff = v.getUint32(o, true);
      const info = v.getUint32(o + 4, true);
      const sizeOrType = v.getUint32(o + 8, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const kindFlag = info >>> 31 === 1;
      o += 12;
      const t: BtfType = { id: this.types.length, kind, name: str(nameOff), sizeOrType };
      const need = (n: number): void => {
        if (o + n > end) throw new BtfError(`${label}: type ${t.id} runs past the type section`);
      };
      switch (kind) {
        case BTF_KIND.INT: {
          need(4);
          const w = v.getUint32(o, true);
          t.int = { encoding: (w >>> 24) & 0xf, bitOffset: (w >>> 16) & 0xff, bits: w & 0xff };
          o += 4;
          break;
        }
        case BTF_KIND.VAR:
        case BTF_KIND.DECL_TAG:
          need(4);
          o += 4;
          break;
        case BTF_KIND.PTR:
        case BTF_KIND.FWD:
        case BTF_KIND.TYPEDEF:
        case BTF_KIND.VOLATILE:
        case BTF_KIND.CONST:
        case BTF_KIND.RESTRICT:
        case BTF_KIND.FUNC:
        case BTF_KIND.FLOAT:
        case BTF_KIND.TYPE_TAG:
          break;
        case BTF_KIND.ARRAY:
          need(12);
          t.array = {
            type: v.getUint32(o, true),
            indexType: v.getUint32(o + 4, true),
            nelems: v.getUint32(o + 8, true),
          };
          o += 12;
          break;
        case BTF_KIND.STRUCT:
        case BTF_KIND.UNION: {
          need(12 * vlen);
          t.members = [];
          for (let i = 0; i < vlen; i++, o += 12) {
            const raw = v.getUint32(o + 8, true);
            t.members.push({
              name: str(v.getUint32(o, true)),
              type: v.getUint32(o + 4, true),
              bitOffset: kindFlag ? raw & 0xffffff : raw,
              bitSize: kindFlag ? raw >>> 24 : 0,
            });
          }
          break;
        }
        case BTF_KIND.ENUM: {
          need(8 * vlen);
          t.enumValues = [];
          const signed = kindFlag;
          t.signed = signed;
          for (let i = 0; i < vlen; i++, o += 8) {
            const value = signed ? BigInt(v.getInt32(o + 4, true)) : BigInt(v.getUint32(o + 4, true));
            t.enumValues.push({ name: str(v.getUint32(o, true)), value });
          }
          break;
        }
        case BTF_KIND.ENUM64: {
          need(12 * vlen);
          t.enumValues = [];
          t.signed = kindFlag;
          for (let i = 0; i < vlen; i++, o += 12) {
            const value = (BigInt(v.getUint32(o + 8, true)) << 32n) | BigInt(v.getUint32(o + 4, true));
            t.enumValues.push({ name: str(v.getUint32(o, true)), value: kindFlag ? BigInt.asIntN(64, value) : value });
          }
          break;
        }
        case BTF_KIND.FUNC_PROTO:
          need(8 * vlen);
          o += 8 * vlen;
          break;
        case BTF_KIND.DATASEC:
          need(12 * vlen);
          t.vars = [];
          for (let i = 0; i < vlen; i++, o += 12) {
            t.vars.push({
              type: v.getUint32(o, true),
              offset: v.getUint32(o + 4, true),
              size: v.getUint32(o + 8, true),
            });
          }
          break;
        default:
          throw new BtfError(`${label}: unknown BTF kind ${kind} (type ${t.id})`);
      }
      this.types.push(t);
      if (t.name !== '') {
        const ids = this.byName.get(t.name);
        if (ids === undefined) this.byName.set(t.name, [t.id]);
        else ids.push(t.id);
      }
    }
  }

  type(id: number): BtfType {
    const t = this.types[id];
    if (t === undefined) throw new BtfError(`${this.label}: type id ${id} does not exist`);
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
    for (const id of this.byName.get(name) ?? []) {
      const t = this.types[id];
      if ((t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION) && t.members !== undefined) return t;
    }
    throw new BtfError(`${this.label}: no struct ${name}`);
  }

  hasStruct(name: string): boolean {
    return (this.byName.get(name) ?? []).some(
      (id) => this.types[id].kind === BTF_KIND.STRUCT || this.types[id].kind === BTF_KIND.UNION,
    );
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
    const candidates = enumName !== undefined ? (this.byName.get(enumName) ?? []) : undefined;
    const pool = candidates ?? this.types.map((t) => t.id);
    for (const id of pool) {
      const t = this.types[id];
      const hit = t.enumValues?.find((e) => e.name === valueName);
      if (hit !== undefined) return hit.value;
    }
    throw new BtfError(
      `${this.label}: no enumerator ${valueName}${enumName !== undefined ? ` in enum ${enumName}` : ''}`,
    );
  }
}
