// The kernel struct offsets the BPF map walks need, all from the kernel's BTF: struct bpf_map
// (identity, sizes, flags, BTF ids), struct bpf_array (.value / .pptrs, elem_size), struct
// bpf_htab (buckets, n_buckets) with struct bucket / htab_elem / hlist_nulls_node for the
// hash chains, struct btf (.data / .data_size: the loader's raw BTF blob), struct idr for
// map_idr, and the map type names from enum bpf_map_type. Browser-safe.

import { BTF_KIND, BtfError, type Btf } from './btf.js';

export interface BpfMapLayout {
  idrRt: number;
  idrBase: number;
  xaHead: number;
  map: {
    id: number;
    name: number;
    type: number;
    keySize: number;
    valueSize: number;
    maxEntries: number;
    flags: number;
    mapExtra: number;
    btfKeyTypeId: number;
    btfValueTypeId: number;
    btfVmlinuxValueTypeId: number;
    btf: number;
    frozen: number | null;
  };
  array: { elemSize: number; value: number; pptrs: number } | null;
  htab: {
    buckets: number;
    nBuckets: number;
    bucketSize: number;
    bucketHead: number;
    elemNode: number;
    elemKey: number;
    nodeNext: number;
  } | null;
  btf: { data: number; dataSize: number; baseBtf: number | null };
  /** enum bpf_map_type: value -> short name as bpftool prints it ("percpu_array"). */
  typeNames: Map<number, string>;
  /** BPF_MAP_TYPE_<X> value by short name, for the types the walks handle. */
  types: { [name: string]: number };
}

function off(btf: Btf, struct: string, path: string, width?: number): number {
  const loc = btf.member(struct, path);
  if (loc.bitSize !== 0 || loc.bitOffset % 8 !== 0) throw new BtfError(`${struct}.${path} is a bitfield`);
  if (width !== undefined && loc.size !== width)
    throw new BtfError(`${struct}.${path} is ${loc.size} bytes; the map walk reads ${width}`);
  return loc.offset;
}

function optional<T>(f: () => T): T | null {
  try {
    return f();
  } catch (err) {
    if (err instanceof BtfError) return null;
    throw err;
  }
}

/** The layout from a kernel's BTF; throws BtfError naming the first member it cannot use. */
export function bpfMapLayout(btf: Btf): BpfMapLayout {
  const typeNames = new Map<number, string>();
  const types: { [name: string]: number } = {};
  const mapType = btf.named('bpf_map_type').find((t) => t.kind === BTF_KIND.ENUM);
  if (mapType === undefined) throw new BtfError('no enum bpf_map_type in the kernel BTF');
  for (const e of mapType.enumValues!) {
    if (!e.name.startsWith('BPF_MAP_TYPE_') || e.name.startsWith('__') || e.name.endsWith('_DEPRECATED')) continue;
    const short = e.name.slice('BPF_MAP_TYPE_'.length).toLowerCase();
    typeNames.set(Number(e.value), short);
    types[short] = Number(e.value);
  }
  return {
    idrRt: off(btf, 'idr', 'idr_rt'),
    idrBase: off(btf, 'idr', 'idr_base', 4),
    xaHead: off(btf, 'xarray', 'xa_head', 8),
    map: {
      id: off(btf, 'bpf_map', 'id', 4),
      name: off(btf, 'bpf_map', 'name', 16),
      type: off(btf, 'bpf_map', 'map_type', 4),
      keySize: off(btf, 'bpf_map', 'key_size', 4),
      valueSize: off(btf, 'bpf_map', 'value_size', 4),
      maxEntries: off(btf, 'bpf_map', 'max_entries', 4),
      flags: off(btf, 'bpf_map', 'map_flags', 4),
      mapExtra: off(btf, 'bpf_map', 'map_extra', 8),
      btfKeyTypeId: off(btf, 'bpf_map', 'btf_key_type_id', 4),
      btfValueTypeId: off(btf, 'bpf_map', 'btf_value_type_id', 4),
      btfVmlinuxValueTypeId: off(btf, 'bpf_map', 'btf_vmlinux_value_type_id', 4),
      btf: off(btf, 'bpf_map', 'btf', 8),
      frozen: optional(() => off(btf, 'bpf_map', 'frozen', 1)),
    },
    array: optional(() => ({
      elemSize: off(btf, 'bpf_array', 'elem_size', 4),
      value: off(btf, 'bpf_array', 'value'),
      pptrs: off(btf, 'bpf_array', 'pptrs'),
    })),
    htab: optional(() => ({
      buckets: off(btf, 'bpf_htab', 'buckets', 8),
      nBuckets: off(btf, 'bpf_htab', 'n_buckets', 4),
      bucketSize: btf.sizeOf(btf.struct('bucket').id),
      bucketHead: off(btf, 'bucket', 'head.first', 8),
      elemNode: off(btf, 'htab_elem', 'hash_node'),
      elemKey: off(btf, 'htab_elem', 'key'),
      nodeNext: off(btf, 'hlist_nulls_node', 'next', 8),
    })),
    btf: {
      data: off(btf, 'btf', 'data', 8),
      dataSize: off(btf, 'btf', 'data_size', 4),
      baseBtf: optional(() => off(btf, 'btf', 'base_btf', 8)),
    },
    typeNames,
    types,
  };
}
