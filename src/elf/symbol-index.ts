// A name -> (address, size) index over an ELF .symtab that makes no string or object per
// symbol. A vmlinux has ~120k symbols, and a Map of them cost a fresh process ~0.3 s (seconds
// in the emulated test host) before the host monitor could start — in a restored cell, time
// the guest waited. Names are hashed straight from the string table's bytes into an
// open-addressing table; a lookup hashes the name asked for and compares bytes. Only a walk
// over every symbol (symbolize's address table) decodes names. As ElfFile.symbols(): undefined
// symbols are left out and the first definition of a name wins. Browser-safe.

/** What callers read symbols through: a Map fits it too (tests, a System.map). */
export interface SymbolMap<V> {
  get(name: string): V | undefined;
  has(name: string): boolean;
  [Symbol.iterator](): IterableIterator<[string, V]>;
}

import { hashName, hashTableName, slotTable, tableNameIs } from './name-hash.js';

export class SymbolIndexError extends Error {}

const SYMBOL_SIZE = 24;

export class SymbolIndex {
  /** Distinct defined names. */
  readonly count: number;
  private readonly nameOff: Uint32Array;
  private readonly nameLen: Uint32Array;
  private readonly hash: Uint32Array;
  private readonly valueLo: Uint32Array;
  private readonly valueHi: Uint32Array;
  private readonly size: Float64Array;
  private readonly symbolType: Uint8Array;
  /** Open addressing, linear probing: 0 empty, else symbol number + 1. */
  private readonly slots: Int32Array;
  private decoded: string | undefined;

  /** `symtab`: the .symtab section's bytes (entries `entsize` apart); `strings`: its linked string table. */
  constructor(
    private readonly strings: Uint8Array,
    symtab: Uint8Array,
    entsize: number,
    label = 'ELF file',
  ) {
    const step = Math.max(entsize, SYMBOL_SIZE);
    const entries = Math.floor(symtab.length / step);
    this.slots = slotTable(entries);
    this.nameOff = new Uint32Array(entries);
    this.nameLen = new Uint32Array(entries);
    this.hash = new Uint32Array(entries);
    this.valueLo = new Uint32Array(entries);
    this.valueHi = new Uint32Array(entries);
    this.size = new Float64Array(entries);
    this.symbolType = new Uint8Array(entries);
    const v = new DataView(symtab.buffer, symtab.byteOffset, symtab.byteLength);
    const mask = this.slots.length - 1;
    let count = 0;
    for (let o = 0; o + SYMBOL_SIZE <= symtab.length; o += step) {
      const off = v.getUint32(o, true);
      if (off === 0 || off >= strings.length) continue;
      if (v.getUint16(o + 6, true) === 0) continue; // undefined
      const h = hashTableName(strings, off);
      const nul = strings.indexOf(0, off);
      const len = (nul < 0 ? strings.length : nul) - off;
      let slot = h & mask;
      let duplicate = false;
      for (let s = this.slots[slot]; s !== 0; s = this.slots[slot]) {
        if (this.hash[s - 1] === h && this.sameBytes(s - 1, off, len)) {
          duplicate = true;
          break;
        }
        slot = (slot + 1) & mask;
      }
      if (duplicate) continue;
      const sizeHi = v.getUint32(o + 20, true);
      if (sizeHi >= 0x200000)
        throw new SymbolIndexError(`${label}: st_size 0x${v.getBigUint64(o + 16, true).toString(16)} is too large`);
      this.nameOff[count] = off;
      this.nameLen[count] = len;
      this.hash[count] = h;
      this.valueLo[count] = v.getUint32(o + 8, true);
      this.valueHi[count] = v.getUint32(o + 12, true);
      this.size[count] = sizeHi * 2 ** 32 + v.getUint32(o + 16, true);
      this.symbolType[count] = symtab[o + 4] & 0xf;
      this.slots[slot] = ++count;
    }
    this.count = count;
  }

  /** Symbol `i`'s name bytes equal the string table's `len` bytes at `off`. */
  private sameBytes(i: number, off: number, len: number): boolean {
    if (this.nameLen[i] !== len) return false;
    const a = this.nameOff[i];
    for (let k = 0; k < len; k++) if (this.strings[a + k] !== this.strings[off + k]) return false;
    return true;
  }

  /** The symbol number of `name`, or -1. */
  private find(name: string): number {
    const h = hashName(name);
    if (h < 0) return -1;
    const mask = this.slots.length - 1;
    for (let slot = h & mask, s = this.slots[slot]; s !== 0; slot = (slot + 1) & mask, s = this.slots[slot]) {
      const i = s - 1;
      if (this.hash[i] === h && this.nameLen[i] === name.length && tableNameIs(this.strings, this.nameOff[i], name))
        return i;
    }
    return -1;
  }

  private value(i: number): bigint {
    return (BigInt(this.valueHi[i]) << 32n) | BigInt(this.valueLo[i]);
  }

  private name(i: number): string {
    // decoded once, on the first walk (single-byte: offsets stay byte offsets)
    this.decoded ??= new TextDecoder('latin1').decode(this.strings);
    return this.decoded.slice(this.nameOff[i], this.nameOff[i] + this.nameLen[i]);
  }

  /** Link-time addresses by name. */
  readonly addresses: SymbolMap<bigint> = this.view((i) => this.value(i));
  /** st_size by name. */
  readonly sizes: SymbolMap<number> = this.view((i) => this.size[i]);

  /** Every symbol, in table order (names decoded here). */
  *entries(): IterableIterator<{ name: string; value: bigint; size: number; type: number }> {
    for (let i = 0; i < this.count; i++)
      yield { name: this.name(i), value: this.value(i), size: this.size[i], type: this.symbolType[i] };
  }

  private view<V>(column: (i: number) => V): SymbolMap<V> {
    return {
      get: (n) => {
        const i = this.find(n);
        return i < 0 ? undefined : column(i);
      },
      has: (n) => this.find(n) >= 0,
      [Symbol.iterator]: () => this.pairs(column),
    };
  }

  private *pairs<V>(column: (i: number) => V): IterableIterator<[string, V]> {
    for (let i = 0; i < this.count; i++) yield [this.name(i), column(i)];
  }
}
