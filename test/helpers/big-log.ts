// Generated verifier logs of any size in bounded memory, for the streaming-memory test and
// the benchmark: realistic log-level-2 text (bounded loops whose register state changes
// every iteration, mark_precise backtracking, nested loops, long non-repeating stretches)
// is built once into a pool of ~1 MiB chunks, and the stream cycles through the pool.

import { Rng } from './random-log.js';

const pad = (insn: string): string => insn.padEnd(38);

function boundedLoop(rng: Rng, out: string[], file: string, base: number, iterations: number): void {
  const body = rng.int(6, 12);
  const stmt = `acc += (__u32)bpf_ktime_get_ns() ^ i${rng.int(0, 99)};`;
  for (let i = 0; i < iterations; i++) {
    out.push(`; ${stmt} @ ${file}:${base + 27}`);
    for (let k = 0; k < body; k++) {
      const addr = base + 2 + k;
      out.push(
        k % 3 === 0
          ? `${addr}: (85) call bpf_ktime_get_ns#5`.padEnd(38) + '; R0=scalar()'
          : pad(`${addr}: (bf) r${(k % 9) + 1} = r6`) + `; R${(k % 9) + 1}=${i} R6=${i}`,
      );
    }
    out.push(`; for (int i = 0; i < NITER; i++) @ ${file}:${base + 26}`);
    out.push(pad(`${base + body + 2}: (07) r6 += 1`) + `; R6=${i + 1}`);
    out.push(pad(`${base + body + 3}: (bf) r1 = r6`) + `; R1=${i + 1} R6=${i + 1}`);
    out.push(`${base + body + 4}: (15) if r1 == 0x${iterations.toString(16)} goto pc+1`);
    if (i === iterations - 1) break; // the last walk falls out of the loop
    out.push(
      `mark_precise: frame0: last_idx ${base + body + 4} first_idx ${i % 3 === 0 ? 0 : base + 2} subseq_idx -1 `,
    );
    for (let k = body + 3; k >= 2; k--) {
      out.push(`mark_precise: frame0: regs=r${k > body + 2 ? 1 : 6} stack= before ${base + k}: (bf) r1 = r6`);
    }
    if (i % 4 === 1)
      out.push(`mark_precise: frame0: parent state regs= stack=:  R0=scalar() R1=${i} R6=P${i} R10=fp0 fp-8=mmmm????`);
    out.push(`${base + body + 4}: R1=${i + 1}`);
    out.push(`${base + body + 5}: (05) goto pc-${body + 4}`);
    if (i === 0) out.push('SCC enter (1)');
  }
}

function uniqueStretch(rng: Rng, out: string[], file: string, serial: number, n: number): void {
  for (let k = 0; k < n; k++) {
    const id = serial + k;
    if (k % 5 === 0) out.push(`; val_${id} = lookup(map_${rng.int(0, 1 << 20)}); @ ${file}:${id}`);
    out.push(
      pad(`${id % 4096}: (b7) r${rng.int(0, 9)} = ${rng.int(0, 1 << 30)}`) +
        `; R${rng.int(0, 9)}=${rng.int(0, 1 << 16)}`,
    );
  }
}

/** One verifier-log-like program: prologue, loops (some nested), stretches, summary. */
function program(rng: Rng, out: string[], n: number): void {
  const file = `prog${n}.bpf.c`;
  out.push(`func#0 @0`, '0: R1=ctx() R10=fp0', `; int prog_${n}(struct __sk_buff *skb) @ ${file}:21`);
  const parts = rng.int(3, 8);
  for (let p = 0; p < parts; p++) {
    const r = rng.next();
    if (r < 0.5) boundedLoop(rng, out, file, rng.int(0, 200), rng.int(20, 600));
    else if (r < 0.7) {
      const outer = rng.int(3, 8);
      const inner = rng.int(5, 30);
      const innerSeed = rng.int(0, 2 ** 31);
      for (let o = 0; o < outer; o++) {
        out.push(`; for (int o = 0; o < OUTER; o++) @ ${file}:40`, pad('30: (b7) r8 = 0') + `; R7=${o} R8=0`);
        boundedLoop(new Rng(innerSeed), out, file, 300, inner);
        out.push(pad('50: (07) r7 += 1') + `; R7=${o + 1}`, '51: (05) goto pc-21');
      }
    } else uniqueStretch(rng, out, file, n * 100_000 + p * 10_000, rng.int(200, 3000));
  }
  out.push(
    `verification time ${rng.int(100, 90_000)} usec`,
    `stack depth ${rng.int(0, 64)}`,
    `processed ${rng.int(100, 900_000)} insns (limit 1000000) max_states_per_insn ${rng.int(0, 9)} ` +
      `total_states ${rng.int(0, 999)} peak_states ${rng.int(0, 999)} mark_read 0`,
  );
}

/** A pool of ~`poolBytes` of generated log, as ~1 MiB chunks (not aligned to lines). */
export function logPool(seed = 1, poolBytes = 16 << 20): Buffer[] {
  const rng = new Rng(seed);
  const chunks: Buffer[] = [];
  let size = 0;
  let n = 0;
  while (size < poolBytes) {
    const out: string[] = [];
    while (out.length < 20_000) program(rng, out, n++);
    const buf = Buffer.from(out.join('\n') + '\n', 'latin1');
    for (let at = 0; at < buf.length; at += 1 << 20) chunks.push(buf.subarray(at, at + (1 << 20)));
    size += buf.length;
  }
  return chunks;
}

/** Yields `totalBytes` of generated log by cycling through `pool`; never holds more than the pool. */
export function* logChunks(totalBytes: number, pool: readonly Buffer[]): Generator<Buffer> {
  let left = totalBytes;
  for (let k = 0; left > 0; k++) {
    const chunk = pool[k % pool.length];
    const part = chunk.length <= left ? chunk : chunk.subarray(0, left);
    left -= part.length;
    yield part;
  }
}
