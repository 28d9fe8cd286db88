// Names hashed straight from a string table's bytes (FNV-1a), for indexes that look names up
// by a JS string without decoding the table: SymbolIndex over a .strtab, Btf over its string
// section. A name is bytes up to a NUL (or the table's end); a JS string holding a code unit
// above 0xff is no name. Browser-safe.

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** An empty open-addressing table for `count` names: a power of two, at least twice as many slots. */
export function slotTable(count: number): Int32Array {
  let capacity = 16;
  while (capacity < count * 2) capacity *= 2;
  return new Int32Array(capacity);
}

/** The hash of the name at `off` in `table`. */
export function hashTableName(table: Uint8Array, off: number): number {
  let h = FNV_OFFSET;
  for (let k = off; k < table.length && table[k] !== 0; k++) h = Math.imul(h ^ table[k], FNV_PRIME);
  return h >>> 0;
}

/** The hash `name` has in a table, or -1 when it cannot be in one (not bytes). */
export function hashName(name: string): number {
  let h = FNV_OFFSET;
  for (let k = 0; k < name.length; k++) {
    const c = name.charCodeAt(k);
    if (c > 0xff) return -1;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h >>> 0;
}

/** The name at `off` in `table` is `name`. */
export function tableNameIs(table: Uint8Array, off: number, name: string): boolean {
  if (off + name.length > table.length) return false;
  for (let k = 0; k < name.length; k++) if (table[off + k] !== name.charCodeAt(k)) return false;
  return off + name.length === table.length || table[off + name.length] === 0;
}
