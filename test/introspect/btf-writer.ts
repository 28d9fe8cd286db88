// Test helper: writes BTF blobs (header, type section, string section) type by type, so tests
// can give the monitor a kernel BTF with deliberately unusual struct layouts and a map BTF
// with DATASECs, structs, bitfields, enums and arrays, and know exactly what must come out.

const KIND = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  TYPEDEF: 8,
  CONST: 10,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
} as const;

export interface MemberSpec {
  name: string;
  type: number;
  /** Byte offset, or bit offset when `bits` is given. */
  offset: number;
  /** Bitfield width (then `offset` is in bits). */
  bits?: number;
}

export class BtfWriter {
  private readonly words: number[] = [];
  private readonly strs: number[] = [0];
  private readonly strIndex = new Map<string, number>([['', 0]]);
  private nextId = 1;

  private str(s: string): number {
    const hit = this.strIndex.get(s);
    if (hit !== undefined) return hit;
    const off = this.strs.length;
    for (const b of new TextEncoder().encode(s)) this.strs.push(b);
    this.strs.push(0);
    this.strIndex.set(s, off);
    return off;
  }

  private type(
    name: string,
    kind: number,
    vlen: number,
    sizeOrType: number,
    kindFlag = false,
    extra: number[] = [],
  ): number {
    this.words.push(
      this.str(name),
      (((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen) >>> 0,
      sizeOrType >>> 0,
      ...extra.map((w) => w >>> 0),
    );
    return this.nextId++;
  }

  /** encoding: 1 signed, 2 char, 4 bool */
  int(name: string, size: number, encoding = 0): number {
    return this.type(name, KIND.INT, 0, size, false, [(encoding << 24) | (size * 8)]);
  }
  ptr(target: number): number {
    return this.type('', KIND.PTR, 0, target);
  }
  typedef(name: string, target: number): number {
    return this.type(name, KIND.TYPEDEF, 0, target);
  }
  constOf(target: number): number {
    return this.type('', KIND.CONST, 0, target);
  }
  float(name: string, size: number): number {
    return this.type(name, KIND.FLOAT, 0, size);
  }
  array(elem: number, nelems: number, indexType = 0): number {
    return this.type('', KIND.ARRAY, 0, 0, false, [elem, indexType, nelems]);
  }

  struct(name: string, size: number, members: MemberSpec[], union = false): number {
    const bitfields = members.some((m) => m.bits !== undefined);
    const extra: number[] = [];
    for (const m of members) {
      const bitOffset = m.bits !== undefined ? m.offset : m.offset * 8;
      extra.push(this.str(m.name), m.type, bitfields ? ((m.bits ?? 0) << 24) | bitOffset : bitOffset);
    }
    return this.type(name, union ? KIND.UNION : KIND.STRUCT, members.length, size, bitfields, extra);
  }

  enum(name: string, size: number, values: [string, number][], signed = false): number {
    const extra: number[] = [];
    for (const [n, v] of values) extra.push(this.str(n), v);
    return this.type(name, KIND.ENUM, values.length, size, signed, extra);
  }

  variable(name: string, target: number): number {
    return this.type(name, KIND.VAR, 0, target, false, [1]);
  }

  datasec(name: string, size: number, vars: [number, number, number][]): number {
    return this.type(name, KIND.DATASEC, vars.length, size, false, vars.flat());
  }

  bytes(): Uint8Array {
    const typeLen = this.words.length * 4;
    const out = new Uint8Array(24 + typeLen + this.strs.length);
    const v = new DataView(out.buffer);
    v.setUint16(0, 0xeb9f, true);
    v.setUint8(2, 1);
    v.setUint32(4, 24, true);
    v.setUint32(8, 0, true);
    v.setUint32(12, typeLen, true);
    v.setUint32(16, typeLen, true);
    v.setUint32(20, this.strs.length, true);
    this.words.forEach((w, i) => v.setUint32(24 + i * 4, w, true));
    out.set(this.strs, 24 + typeLen);
    return out;
  }
}
