// The guest's BPF maps as plain JSON (what `ktstr-wasm inspect --maps --json` prints): each
// map's identity and its elements, keys and values rendered through the map's BTF when it has
// one, with the raw bytes in hex beside them; per-CPU values per CPU; bigints as decimal
// strings. Browser-safe.

import type { BtfValue } from './btf-value.js';
import { hexBytes, type BpfMap, type BpfMaps } from './bpf-maps.js';

export interface MapsJsonOptions {
  /** Elements per map (default 64); 0 lists the maps without elements. */
  limit?: number;
}

export type Json = number | string | boolean | null | Json[] | { [k: string]: Json };

/** A rendered value with bigints as decimal strings. */
export function jsonValue(v: BtfValue): Json {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  return v;
}

export function mapJson(m: BpfMap, options: MapsJsonOptions = {}): { [k: string]: Json } {
  const i = m.info;
  const out: { [k: string]: Json } = {
    id: i.id,
    name: i.name,
    type: i.type,
    key_size: i.keySize,
    value_size: i.valueSize,
    max_entries: i.maxEntries,
    flags: i.flags,
    frozen: i.frozen,
    btf_key_type_id: i.btfKeyTypeId,
    btf_value_type_id: i.btfValueTypeId,
    kva: '0x' + i.kva.toString(16),
  };
  if (i.btfVmlinuxValueTypeId !== 0) out.btf_vmlinux_value_type_id = i.btfVmlinuxValueTypeId;
  if (i.type === 'arena') out.arena_bytes = i.maxEntries * 4096;
  const section = m.section();
  if (section !== null) out.section = section;
  const btfError = m.btfError();
  if (btfError !== null) out.btf_error = btfError;
  const limit = options.limit ?? 64;
  if (limit === 0 || !m.readable()) return out;
  const dump = m.entries(limit);
  out.entries = dump.entries.map((e) => {
    const entry: { [k: string]: Json } = { key: jsonValue(m.renderKey(e.key)), key_hex: hexBytes(e.key) };
    if (e.perCpu !== undefined) {
      entry.values = e.perCpu.map((v, cpu) => ({
        cpu,
        value: v === null ? null : jsonValue(m.render(v)),
        value_hex: v === null ? null : hexBytes(v),
      }));
    } else {
      entry.value = e.value === null ? null : jsonValue(m.render(e.value));
      entry.value_hex = e.value === null ? null : hexBytes(e.value);
    }
    return entry;
  });
  if (dump.truncated) out.truncated = true;
  if (dump.problems.length > 0) out.problems = dump.problems;
  return out;
}

export function mapsJson(maps: BpfMaps, options: MapsJsonOptions = {}): { [k: string]: Json } {
  const out: { [k: string]: Json } = { maps: maps.maps().map((m) => mapJson(m, options)) };
  if (maps.truncated) out.truncated = true;
  if (maps.problems.length > 0) out.problems = maps.problems;
  return out;
}
