// Values through BTF: renders bytes of a BTF type as plain data (structs by member name,
// arrays, enums by enumerator name, char arrays as strings, DATASECs by variable name),
// finds a dotted path ("stats.nr_dispatched", "cpus[3]") inside a type, and encodes a scalar
// back into bytes for a write. The BTF may come from a guest map (hostile), so rendering is
// bounded in depth and in the number of values produced, and never reads past the bytes it is
// given. Browser-safe.

import { Btf, BtfError, BTF_KIND, type BtfType } from './btf.js';

/** A rendered value: numbers up to 2^53 as number, wider integers as bigint, pointers as
 * "0x..." strings, char arrays as strings. */
export type BtfValue = number | bigint | boolean | string | null | BtfValue[] | { [name: string]: BtfValue };

const MAX_DEPTH = 32;
/** Values rendered per call; past it arrays end with a "…N more" marker string. */
const DEFAULT_BUDGET = 1 << 16;

export interface FieldLocation {
  /** Byte offset of the field inside the value it was looked up in. */
  offset: number;
  /** Bit offset (bitfields), from `offset * 8`. */
  bitOffset: number;
  /** Bitfield width; 0 for a whole field. */
  bitSize: number;
  size: number;
  type: number;
  /** The path, normalised (array indexes as [i]). */
  path: string;
}

function isChar(btf: Btf, id: number): boolean {
  const t = btf.resolve(id);
  return t.kind === BTF_KIND.INT && t.sizeOrType === 1 && ((t.int!.encoding & 2) !== 0 || t.name === 'char');
}

function readUint(view: DataView, at: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(view.getUint8(at + i));
  return v;
}

function narrow(v: bigint): number | bigint {
  return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
}

export class BtfRenderer {
  private budget = DEFAULT_BUDGET;

  constructor(readonly btf: Btf) {}

  /** `bytes` as a value of type `id` (bytes shorter than the type give a BtfError). */
  render(id: number, bytes: Uint8Array, budget = DEFAULT_BUDGET): BtfValue {
    this.budget = budget;
    const size = this.btf.sizeOf(id);
    if (size > bytes.length)
      throw new BtfError(`${this.btf.label}: type ${id} is ${size} bytes, the value only ${bytes.length}`);
    try {
      return this.value(id, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, 0, 0, 0);
    } catch (err) {
      // a member placed past its struct's end by a torn or hostile BTF
      if (err instanceof RangeError)
        throw new BtfError(`${this.btf.label}: type ${id} has a member outside the value's ${bytes.length} bytes`);
      throw err;
    }
  }

  /** The field at `loc` (from fieldLocation) inside `bytes`, the whole value it was found in;
   * bitfields (integer or enum) are extracted. */
  field(loc: FieldLocation, bytes: Uint8Array, budget = DEFAULT_BUDGET): BtfValue {
    this.budget = budget;
    if (loc.offset + loc.size > bytes.length)
      throw new BtfError(`${loc.path} lies outside the value's ${bytes.length} bytes`);
    try {
      return this.value(
        loc.type,
        new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        loc.offset,
        loc.bitOffset,
        loc.bitSize,
        0,
      );
    } catch (err) {
      if (err instanceof RangeError)
        throw new BtfError(`${this.btf.label}: ${loc.path} has a member outside the value's ${bytes.length} bytes`);
      throw err;
    }
  }

  private value(id: number, view: DataView, at: number, bitShift: number, bitSize: number, depth: number): BtfValue {
    if (depth > MAX_DEPTH) throw new BtfError(`${this.btf.label}: type ${id} nests deeper than ${MAX_DEPTH}`);
    this.budget--;
    const t = this.btf.resolve(id);
    switch (t.kind) {
      case BTF_KIND.INT:
        return this.int(t, view, at, bitShift, bitSize);
      case BTF_KIND.ENUM:
      case BTF_KIND.ENUM64: {
        let raw = bitSize > 0 ? this.bits(view, at, bitShift, bitSize, t.sizeOrType) : readUint(view, at, t.sizeOrType);
        if (t.signed === true) raw = BigInt.asIntN(t.sizeOrType * 8, raw);
        const hit = t.enumValues!.find((e) => e.value === raw || BigInt.asUintN(64, e.value) === raw);
        return hit !== undefined ? hit.name : narrow(raw);
      }
      case BTF_KIND.PTR:
        return '0x' + view.getBigUint64(at, true).toString(16);
      case BTF_KIND.FLOAT:
        if (t.sizeOrType === 4) return view.getFloat32(at, true);
        if (t.sizeOrType === 8) return view.getFloat64(at, true);
        return this.hex(view, at, t.sizeOrType);
      case BTF_KIND.ARRAY:
        return this.array(t, view, at, depth);
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION: {
        const out: { [name: string]: BtfValue } = {};
        this.members(t, view, at, depth, out);
        return out;
      }
      case BTF_KIND.DATASEC: {
        const out: { [name: string]: BtfValue } = {};
        for (const v of t.vars!) {
          if (this.budget <= 0) {
            out['…'] = 'truncated';
            break;
          }
          const variable = this.btf.type(v.type);
          if (v.offset + v.size > view.byteLength - at) {
            out[variable.name] = null;
            continue;
          }
          out[variable.name] =
            variable.kind === BTF_KIND.VAR
              ? this.value(variable.sizeOrType, view, at + v.offset, 0, 0, depth + 1)
              : this.hex(view, at + v.offset, v.size);
        }
        return out;
      }
      case BTF_KIND.VAR:
        return this.value(t.sizeOrType, view, at, bitShift, bitSize, depth + 1);
      default:
        return null;
    }
  }

  private int(t: BtfType, view: DataView, at: number, bitShift: number, bitSize: number): BtfValue {
    const size = t.sizeOrType;
    const signed = (t.int!.encoding & 1) !== 0;
    const bits = bitSize > 0 ? bitSize : t.int!.bits;
    let raw = bitSize > 0 ? this.bits(view, at, bitShift, bitSize, size) : readUint(view, at, size);
    if (bitSize === 0 && bits < size * 8) raw &= (1n << BigInt(bits)) - 1n;
    if ((t.int!.encoding & 4) !== 0) return raw !== 0n;
    if (signed) raw = BigInt.asIntN(bits, raw);
    return narrow(raw);
  }

  /** `bitSize` bits starting `bitShift` bits after byte `at` (little-endian). */
  private bits(view: DataView, at: number, bitShift: number, bitSize: number, size: number): bigint {
    const bytes = Math.min(Math.ceil((bitShift + bitSize) / 8), view.byteLength - at, Math.max(size, 8) + 1);
    return (readUint(view, at, bytes) >> BigInt(bitShift)) & ((1n << BigInt(bitSize)) - 1n);
  }

  private array(t: BtfType, view: DataView, at: number, depth: number): BtfValue {
    const { type, nelems } = t.array!;
    const elemSize = this.btf.sizeOf(type);
    if (isChar(this.btf, type)) {
      const bytes = new Uint8Array(view.buffer, view.byteOffset + at, Math.min(nelems, view.byteLength - at));
      const z = bytes.indexOf(0);
      return new TextDecoder('latin1').decode(z >= 0 ? bytes.subarray(0, z) : bytes);
    }
    const out: BtfValue[] = [];
    for (let i = 0; i < nelems; i++) {
      if (this.budget <= 0) {
        out.push(`…${nelems - i} more`);
        break;
      }
      out.push(this.value(type, view, at + i * elemSize, 0, 0, depth + 1));
    }
    return out;
  }

  private members(t: BtfType, view: DataView, at: number, depth: number, out: { [name: string]: BtfValue }): void {
    for (const m of t.members!) {
      if (this.budget <= 0) {
        out['…'] = 'truncated';
        return;
      }
      const byte = at + Math.floor(m.bitOffset / 8);
      if (m.name === '') {
        const inner = this.btf.resolve(m.type);
        if (inner.kind === BTF_KIND.STRUCT || inner.kind === BTF_KIND.UNION) {
          this.members(inner, view, byte, depth + 1, out);
          continue;
        }
      }
      out[m.name] = this.value(m.type, view, byte, m.bitOffset % 8, m.bitSize, depth + 1);
    }
  }

  private hex(view: DataView, at: number, size: number): string {
    let s = '0x';
    for (let i = size - 1; i >= 0; i--)
      s += view
        .getUint8(at + i)
        .toString(16)
        .padStart(2, '0');
    return s;
  }
}

/** The names one may continue a path with at type `id` (members, variables, or "[0..n-1]"). */
function childNames(btf: Btf, id: number): string[] {
  const t = btf.resolve(id);
  if (t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION) {
    const names: string[] = [];
    for (const m of t.members!) {
      if (m.name !== '') names.push(m.name);
      else names.push(...childNames(btf, m.type));
    }
    return names;
  }
  if (t.kind === BTF_KIND.DATASEC) return t.vars!.map((v) => btf.type(v.type).name);
  if (t.kind === BTF_KIND.ARRAY) return [`[0..${t.array!.nelems - 1}]`];
  return [];
}

function findChild(
  btf: Btf,
  t: BtfType,
  name: string,
  bitBase: number,
  depth: number,
): { type: number; bit: number; bitSize: number } | undefined {
  if (depth > MAX_DEPTH) return undefined;
  if (t.kind === BTF_KIND.DATASEC) {
    const v = t.vars!.find((x) => btf.type(x.type).name === name);
    return v === undefined ? undefined : { type: btf.type(v.type).sizeOrType, bit: bitBase + v.offset * 8, bitSize: 0 };
  }
  for (const m of t.members ?? [])
    if (m.name === name) return { type: m.type, bit: bitBase + m.bitOffset, bitSize: m.bitSize };
  for (const m of t.members ?? []) {
    if (m.name !== '') continue;
    const inner = btf.resolve(m.type);
    if (inner.kind !== BTF_KIND.STRUCT && inner.kind !== BTF_KIND.UNION) continue;
    const hit = findChild(btf, inner, name, bitBase + m.bitOffset, depth + 1);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** Splits "a.b[2].c" / "a.b.2.c" into components. */
function splitPath(path: string): string[] {
  const parts: string[] = [];
  for (const piece of path.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(piece);
    if (m === null) throw new BtfError(`bad path component "${piece}" in "${path}"`);
    if (m[1] !== '') parts.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) parts.push(idx[1]);
  }
  if (parts.length === 0) throw new BtfError(`empty path "${path}"`);
  return parts;
}

/** Where `path` lives inside a value of type `id`; the error names the component that failed
 * and what exists there. */
export function fieldLocation(btf: Btf, id: number, path: string, what = 'value'): FieldLocation {
  let type = id;
  let bit = 0;
  let bitSize = 0;
  let done = '';
  for (const part of splitPath(path)) {
    if (bitSize !== 0) throw new BtfError(`${what}: ${done} is a bitfield, it has no ${part}`);
    const t = btf.resolve(type);
    const here = done === '' ? what : `${what}.${done}`;
    if (t.kind === BTF_KIND.ARRAY) {
      if (!/^\d+$/.test(part))
        throw new BtfError(`${here} is an array of ${t.array!.nelems}: "${part}" is not an index`);
      const i = Number(part);
      if (i >= t.array!.nelems)
        throw new BtfError(`${here}[${i}] is out of range: the array has ${t.array!.nelems} elements`);
      bit += i * btf.sizeOf(t.array!.type) * 8;
      type = t.array!.type;
      done += `[${i}]`;
      continue;
    }
    const hit =
      t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION || t.kind === BTF_KIND.DATASEC
        ? findChild(btf, t, part, bit, 0)
        : undefined;
    if (hit === undefined) {
      const names = childNames(btf, type);
      throw new BtfError(
        names.length === 0
          ? `${here} is a scalar: it has no field "${part}"`
          : `${here} has no field "${part}"; it has: ${names.join(', ')}`,
      );
    }
    type = hit.type;
    bit = hit.bit;
    bitSize = hit.bitSize;
    done += done === '' ? part : `.${part}`;
  }
  return {
    offset: Math.floor(bit / 8),
    bitOffset: bit % 8,
    bitSize,
    size: bitSize !== 0 ? Math.ceil(((bit % 8) + bitSize) / 8) : btf.sizeOf(type),
    type,
    path: done,
  };
}

export type ScalarInput = number | bigint | boolean | string | Uint8Array;

/**
 * Writes `value` for the field at `loc` into `bytes` (a copy of the whole value), checking
 * ranges: integers and bitfields by width and sign, enums by enumerator name or number, char
 * arrays from a string (NUL-padded), anything else from bytes of exactly its size.
 */
export function encodeField(btf: Btf, loc: FieldLocation, value: ScalarInput, bytes: Uint8Array): void {
  const t = btf.resolve(loc.type);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (value instanceof Uint8Array) {
    if (loc.bitSize !== 0) throw new BtfError(`${loc.path} is a bitfield: give a number`);
    if (value.length !== loc.size) throw new BtfError(`${loc.path} is ${loc.size} bytes, the value ${value.length}`);
    bytes.set(value, loc.offset);
    return;
  }
  if (t.kind === BTF_KIND.ARRAY && isChar(btf, t.array!.type) && typeof value === 'string') {
    const enc = new TextEncoder().encode(value);
    if (enc.length > loc.size)
      throw new BtfError(`${loc.path} holds ${loc.size} chars, "${value}" is ${enc.length} bytes`);
    bytes.fill(0, loc.offset, loc.offset + loc.size);
    bytes.set(enc, loc.offset);
    return;
  }
  let raw: bigint;
  let bits: number;
  let signed: boolean;
  if (t.kind === BTF_KIND.INT) {
    bits = loc.bitSize !== 0 ? loc.bitSize : t.int!.bits;
    signed = (t.int!.encoding & 1) !== 0;
    if (typeof value === 'string') throw new BtfError(`${loc.path} is an integer, not "${value}"`);
    raw = typeof value === 'boolean' ? (value ? 1n : 0n) : toBigInt(value, loc.path);
  } else if (t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64) {
    bits = loc.bitSize !== 0 ? loc.bitSize : t.sizeOrType * 8;
    signed = t.signed === true;
    if (typeof value === 'string') {
      const hit = t.enumValues!.find((e) => e.name === value);
      if (hit === undefined)
        throw new BtfError(
          `${loc.path}: no enumerator ${value}; it has: ${t.enumValues!.map((e) => e.name).join(', ')}`,
        );
      raw = hit.value;
    } else {
      raw = typeof value === 'boolean' ? (value ? 1n : 0n) : toBigInt(value, loc.path);
    }
  } else {
    throw new BtfError(`${loc.path} is not a number or a char array (BTF kind ${t.kind}): give its ${loc.size} bytes`);
  }
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  if (raw < min || raw > max)
    throw new BtfError(`${loc.path}: ${raw} does not fit in ${signed ? 'signed' : 'unsigned'} ${bits} bits`);
  const unsigned = BigInt.asUintN(bits, raw);
  if (loc.bitSize === 0) {
    for (let i = 0; i < loc.size; i++) view.setUint8(loc.offset + i, Number((unsigned >> BigInt(8 * i)) & 0xffn));
    return;
  }
  const span = loc.size;
  let word = readUint(view, loc.offset, span);
  const mask = ((1n << BigInt(loc.bitSize)) - 1n) << BigInt(loc.bitOffset);
  word = (word & ~mask) | ((unsigned << BigInt(loc.bitOffset)) & mask);
  for (let i = 0; i < span; i++) view.setUint8(loc.offset + i, Number((word >> BigInt(8 * i)) & 0xffn));
}

function toBigInt(v: number | bigint, path: string): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isSafeInteger(v)) throw new BtfError(`${path}: ${v} is not an integer`);
  return BigInt(v);
}
