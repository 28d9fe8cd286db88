// The struct_ops enumeration's ABI, written once: AssemblyScript (assembly/introspect.ts) and
// TypeScript (src/monitor/introspector.ts, src/monitor/kernel-offsets.ts) both import these
// plain integer constants, so the two sides cannot disagree on the offset table's order or on
// the program record's layout. test/introspect/abi.test.ts checks them against the built
// module. Keep every value a literal integer (valid as an AssemblyScript i32 and a TypeScript
// number). docs/introspect.md describes the same table and record for embedders.

// ---- offset table (setOffset(index, value)); the host fills it from BTF (kernelOffsets)
export const OFF_XA_HEAD = 0; // xarray.xa_head
export const OFF_XA_NODE_SHIFT = 1; // xa_node.shift (u8)
export const OFF_XA_NODE_SLOTS = 2; // xa_node.slots (64 x 8)
export const OFF_IDR_RT = 3; // idr.idr_rt
export const OFF_IDR_BASE = 4; // idr.idr_base (u32)
export const OFF_IDR_NEXT = 5; // idr.idr_next (u32)
export const OFF_PROG_TYPE = 6; // bpf_prog.type (u32)
export const OFF_PROG_AUX = 7; // bpf_prog.aux
export const OFF_PROG_STATS = 8; // bpf_prog.stats (per-CPU pointer)
export const OFF_AUX_ID = 9; // bpf_prog_aux.id (u32)
export const OFF_AUX_VERIFIED_INSNS = 10; // bpf_prog_aux.verified_insns (u32)
export const OFF_AUX_NAME = 11; // bpf_prog_aux.name (16 bytes)
export const OFF_AUX_USED_MAPS = 12; // bpf_prog_aux.used_maps
export const OFF_AUX_USED_MAP_CNT = 13; // bpf_prog_aux.used_map_cnt (u32)
export const OFF_STATS_CNT = 14; // bpf_prog_stats.cnt
export const OFF_STATS_NSECS = 15; // bpf_prog_stats.nsecs
export const OFF_STATS_MISSES = 16; // bpf_prog_stats.misses
export const OFF_MAP_NAME = 17; // bpf_map.name (16 bytes)
export const OFF_PROG_TYPE_STRUCT_OPS = 18; // enum value BPF_PROG_TYPE_STRUCT_OPS, not an offset
export const OFF_COUNT = 19;

// ---- one program record (enumStructOps output at outPtr()), little-endian
export const RECORD_SIZE = 96;
export const REC_PROG_KVA = 0; // u64 struct bpf_prog
export const REC_AUX_KVA = 8; // u64 struct bpf_prog_aux
export const REC_CNT = 16; // u64 run count summed over CPUs (saturating)
export const REC_NSECS = 24; // u64 run time (ns) summed over CPUs (saturating)
export const REC_MISSES = 32; // u64 recursion misses summed over CPUs (saturating)
export const REC_ID = 40; // u32 aux->id, or idr_base + index when that reads 0
export const REC_VERIFIED = 44; // u32 aux->verified_insns
export const REC_FLAGS = 48; // u32 FLAG_* below
export const REC_USED_MAPS = 52; // u32 aux->used_map_cnt (capped at 64)
export const REC_NAME = 56; // char[NAME_LEN] program name, NUL-padded
export const REC_OBJ = 72; // char[NAME_LEN] `<obj>` prefix of the used maps (with FLAG_OBJ)
export const REC_CPUS = 88; // u32 CPUs summed
export const NAME_LEN = 16; // BPF_OBJ_NAME_LEN
export const OUT_RECORDS = 512; // records per enumStructOps call (outCapacity())

// REC_FLAGS bits
export const FLAG_STATS = 1; // the stats pointer was read and summed
export const FLAG_OBJ = 2; // an obj name was found in used_maps
export const FLAG_SATURATED = 4; // a per-CPU sum saturated at u64 max
export const FLAG_NAME_FAULT = 8; // aux->name could not be read
