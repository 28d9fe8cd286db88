// The struct member offsets the introspection core needs, computed from the kernel's own BTF
// (never hard-coded): xarray/xa_node/idr for the IDR walk, bpf_prog/bpf_prog_aux/
// bpf_prog_stats/bpf_map for the program records, and the BPF_PROG_TYPE_STRUCT_OPS value.
// Widths are checked too, so a kernel whose layout the core cannot read is refused here with
// a clear message instead of being read wrongly. Browser-safe.

import * as abi from '../../assembly/introspect-abi.js';
import { Btf, BtfError, BTF_KIND } from './btf.js';

export interface KernelOffsets {
  xaHead: number;
  xaNodeShift: number;
  xaNodeSlots: number;
  idrRt: number;
  idrBase: number;
  idrNext: number;
  progType: number;
  progAux: number;
  progStats: number;
  auxId: number;
  auxVerifiedInsns: number;
  auxName: number;
  auxUsedMaps: number;
  auxUsedMapCnt: number;
  statsCnt: number;
  statsNsecs: number;
  statsMisses: number;
  mapName: number;
  /** enum bpf_prog_type BPF_PROG_TYPE_STRUCT_OPS (a value, not an offset). */
  progTypeStructOps: number;
}

/** Each field's index in the core's offset table (setOffset), from the ABI both sides import. */
export const OFFSET_INDEX: Readonly<Record<keyof KernelOffsets, number>> = {
  xaHead: abi.OFF_XA_HEAD,
  xaNodeShift: abi.OFF_XA_NODE_SHIFT,
  xaNodeSlots: abi.OFF_XA_NODE_SLOTS,
  idrRt: abi.OFF_IDR_RT,
  idrBase: abi.OFF_IDR_BASE,
  idrNext: abi.OFF_IDR_NEXT,
  progType: abi.OFF_PROG_TYPE,
  progAux: abi.OFF_PROG_AUX,
  progStats: abi.OFF_PROG_STATS,
  auxId: abi.OFF_AUX_ID,
  auxVerifiedInsns: abi.OFF_AUX_VERIFIED_INSNS,
  auxName: abi.OFF_AUX_NAME,
  auxUsedMaps: abi.OFF_AUX_USED_MAPS,
  auxUsedMapCnt: abi.OFF_AUX_USED_MAP_CNT,
  statsCnt: abi.OFF_STATS_CNT,
  statsNsecs: abi.OFF_STATS_NSECS,
  statsMisses: abi.OFF_STATS_MISSES,
  mapName: abi.OFF_MAP_NAME,
  progTypeStructOps: abi.OFF_PROG_TYPE_STRUCT_OPS,
};

/** The fields in offset-table order (index i of the table is OFFSET_ORDER[i]). */
export const OFFSET_ORDER: readonly (keyof KernelOffsets)[] = (
  Object.keys(OFFSET_INDEX) as (keyof KernelOffsets)[]
).sort((a, b) => OFFSET_INDEX[a] - OFFSET_INDEX[b]);

/** [struct, member path, field, expected byte width] */
const FIELDS: readonly [string, string, keyof KernelOffsets, number][] = [
  ['xarray', 'xa_head', 'xaHead', 8],
  ['xa_node', 'shift', 'xaNodeShift', 1],
  ['xa_node', 'slots', 'xaNodeSlots', 64 * 8],
  ['idr', 'idr_rt', 'idrRt', -1],
  ['idr', 'idr_base', 'idrBase', 4],
  ['idr', 'idr_next', 'idrNext', 4],
  ['bpf_prog', 'type', 'progType', 4],
  ['bpf_prog', 'aux', 'progAux', 8],
  ['bpf_prog', 'stats', 'progStats', 8],
  ['bpf_prog_aux', 'id', 'auxId', 4],
  ['bpf_prog_aux', 'verified_insns', 'auxVerifiedInsns', 4],
  ['bpf_prog_aux', 'name', 'auxName', 16],
  ['bpf_prog_aux', 'used_maps', 'auxUsedMaps', 8],
  ['bpf_prog_aux', 'used_map_cnt', 'auxUsedMapCnt', 4],
  ['bpf_prog_stats', 'cnt', 'statsCnt', 8],
  ['bpf_prog_stats', 'nsecs', 'statsNsecs', 8],
  ['bpf_prog_stats', 'misses', 'statsMisses', 8],
  ['bpf_map', 'name', 'mapName', 16],
];

/** The offset table from a kernel's BTF; throws BtfError naming the first field it cannot use. */
export function kernelOffsets(btf: Btf): KernelOffsets {
  const out: Partial<KernelOffsets> = {};
  for (const [struct, path, key, width] of FIELDS) {
    const loc = btf.member(struct, path);
    if (loc.bitSize !== 0 || loc.bitOffset % 8 !== 0)
      throw new BtfError(`${struct}.${path} is a bitfield; the core reads whole fields`);
    if (width > 0 && loc.size !== width)
      throw new BtfError(`${struct}.${path} is ${loc.size} bytes; the core reads ${width}`);
    out[key] = loc.offset;
  }
  // idr_rt must be an xarray (radix_tree_root is a typedef-free alias of it in 6.x)
  const rt = btf.resolve(btf.member('idr', 'idr_rt').type);
  if (rt.kind !== BTF_KIND.STRUCT || (rt.name !== 'xarray' && rt.name !== 'radix_tree_root')) {
    throw new BtfError(`idr.idr_rt is ${rt.name}, not an xarray`);
  }
  const structOps = btf.enumValue('BPF_PROG_TYPE_STRUCT_OPS', 'bpf_prog_type');
  if (structOps < 0n || structOps > 0xffffn)
    throw new BtfError(`BPF_PROG_TYPE_STRUCT_OPS = ${structOps} is out of range`);
  out.progTypeStructOps = Number(structOps);
  return out as KernelOffsets;
}
