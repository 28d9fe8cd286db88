// What the guest kernel itself reports, parsed from the output of the guest helper
// (bpf_prog_info.c): the struct_ops programs and, from their used maps' names, the obj name
// the host must find. Shared by the dump and the live introspection tests.

export interface GuestProg {
  id: number;
  name: string;
  verifiedInsns: number;
  runCnt: bigint;
  runTimeNs: bigint;
  misses: bigint;
}

/** The obj name the guest's own view implies: the longest `<obj>` of any struct_ops program's
 * `<obj>.bss/.data/.rodata` map (libbpf truncates `<obj>` to fit each suffix in 15 bytes). */
export function expectedObj(output: string): string | null {
  let best: string | null = null;
  for (const m of output.matchAll(/^MAPS id=\d+ names=(.*)$/gm)) {
    for (const name of m[1].split(',')) {
      const obj = /^(.+)\.(bss|data|rodata)$/.exec(name)?.[1];
      if (obj !== undefined && (best === null || obj.length > best.length)) best = obj;
    }
  }
  return best;
}

export function parseGuestProgs(output: string): GuestProg[] {
  const out: GuestProg[] = [];
  for (const m of output.matchAll(
    /^PROG id=(\d+) name=(\S*) verified_insns=(\d+) run_cnt=(\d+) run_time_ns=(\d+) recursion_misses=(\d+)$/gm,
  )) {
    out.push({
      id: Number(m[1]),
      name: m[2],
      verifiedInsns: Number(m[3]),
      runCnt: BigInt(m[4]),
      runTimeNs: BigInt(m[5]),
      misses: BigInt(m[6]),
    });
  }
  return out;
}
