// The BPF programs the running kernel has loaded, as it reports them through bpf(2) — the
// guest side of the sweep's cross-check (the host reads the same programs out of guest RAM):
// BPF_PROG_GET_NEXT_ID walks the ids, BPF_PROG_GET_FD_BY_ID opens each, and
// BPF_OBJ_GET_INFO_BY_FD fills a struct bpf_prog_info. Works in a minimal guest (no bpftool).
//
// Layouts from include/uapi/linux/bpf.h (checked against `pahole -C bpf_prog_info` of the
// test kernel by test/guest/bpf-programs.test.ts).

import { closeSync } from 'node:fs';
import type { NativeBinding } from '../../kvm/native.js';
import type { ProgramReport } from '../plan.js';

export const BPF_PROG_GET_NEXT_ID = 11;
export const BPF_PROG_GET_FD_BY_ID = 13;
export const BPF_OBJ_GET_INFO_BY_FD = 15;
export const BPF_PROG_TYPE_STRUCT_OPS = 27;

/** struct bpf_prog_info: the fields read, and the size asked for (kernels zero-fill what they lack). */
export const PROG_INFO = {
  size: 232,
  type: 0,
  id: 4,
  name: 64,
  nameLength: 16,
  runTimeNs: 192,
  runCnt: 200,
  verifiedInsns: 216,
} as const;

/** At most this many ids are walked (a hostile or huge id space stays bounded). */
export const MAX_PROGRAMS = 65536;

export interface ProgramInfo extends ProgramReport {
  type: number;
}

/** Decodes the fields of one struct bpf_prog_info. */
export function decodeProgInfo(info: Uint8Array): ProgramInfo {
  const dv = new DataView(info.buffer, info.byteOffset, info.byteLength);
  const nameBytes = info.subarray(PROG_INFO.name, PROG_INFO.name + PROG_INFO.nameLength);
  const end = nameBytes.indexOf(0);
  return {
    type: dv.getUint32(PROG_INFO.type, true),
    id: dv.getUint32(PROG_INFO.id, true),
    // [A-Za-z0-9_.] by the kernel's rules; decoded byte by byte, so no ICU encoding is needed
    name: String.fromCharCode(...nameBytes.subarray(0, end < 0 ? nameBytes.length : end)),
    verifiedInsns: dv.getUint32(PROG_INFO.verifiedInsns, true),
    runCount: Number(dv.getBigUint64(PROG_INFO.runCnt, true)),
    runTimeNs: Number(dv.getBigUint64(PROG_INFO.runTimeNs, true)),
  };
}

function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

/** Every loaded program (any type), by id. */
export function listPrograms(n: NativeBinding): ProgramInfo[] {
  const attr = new Uint8Array(new ArrayBuffer(16));
  const av = new DataView(attr.buffer);
  const infoBuffer = new ArrayBuffer(PROG_INFO.size);
  const info = new Uint8Array(infoBuffer);
  const infoAddress = n.sharedBufferAddress(infoBuffer);
  const out: ProgramInfo[] = [];
  let id = 0;
  for (let i = 0; i < MAX_PROGRAMS; i++) {
    attr.fill(0);
    av.setUint32(0, id, true);
    try {
      n.bpf(BPF_PROG_GET_NEXT_ID, attr);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) break;
      throw e;
    }
    id = av.getUint32(4, true);
    attr.fill(0);
    av.setUint32(0, id, true);
    let fd: number;
    try {
      fd = n.bpf(BPF_PROG_GET_FD_BY_ID, attr);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) continue; // unloaded meanwhile
      throw e;
    }
    try {
      info.fill(0);
      attr.fill(0);
      av.setUint32(0, fd, true);
      av.setUint32(4, PROG_INFO.size, true);
      av.setBigUint64(8, infoAddress, true);
      n.bpf(BPF_OBJ_GET_INFO_BY_FD, attr);
      out.push(decodeProgInfo(info));
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

/** The struct_ops programs (a sched_ext scheduler's), without their type. */
export function listStructOpsPrograms(n: NativeBinding): ProgramReport[] {
  return listPrograms(n)
    .filter((p) => p.type === BPF_PROG_TYPE_STRUCT_OPS)
    .map(({ id, name, verifiedInsns, runCount, runTimeNs }) => ({ id, name, verifiedInsns, runCount, runTimeNs }));
}
