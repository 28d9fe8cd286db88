// Seeded random verifier-like logs for property and differential tests: loops of random
// period and length (some nested), iterations that differ only in register state and
// bookkeeping, noise, CRLF, long and binary lines, an unterminated last line.

/** mulberry32: a small, fast, seedable PRNG (deterministic across runs and machines). */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

const OPS = [
  '(bf) r1 = r6',
  '(07) r6 += 1',
  '(67) r1 <<= 32',
  '(77) r1 >>= 32',
  '(85) call bpf_ktime_get_ns#5',
  '(61) r2 = *(u32 *)(r10 -4)',
  '(0f) r1 += r2',
  '(63) *(u32 *)(r10 -4) = r1',
  '(af) r1 ^= r0',
  '(05) goto pc-12',
  '(15) if r1 == 0x28 goto pc+1',
  '(b7) r0 = 0',
  '(79) r2 = *(u64 *)(r10 -16)',
];
const WORDS = ['acc', 'tmp', 'ctx', 'len', 'skb', 'val', 'idx', 'map', 'key', 'ptr'];

export interface RandomLogOptions {
  /** Roughly how many lines to produce. */
  lines?: number;
  /** Allow lines longer than 1 KiB (exercise the long-line path under SMALL_LIMITS). */
  longLines?: boolean;
  /** Allow random bytes (binary, non-UTF-8) lines. */
  binary?: boolean;
}

/** One loop-body line template: its text varies per iteration only in register state. */
type Template = (iteration: number) => string;

function bodyTemplate(rng: Rng, addr: number, longLines: boolean): Template {
  const kind = rng.int(0, 9);
  if (longLines && rng.chance(0.05)) {
    const stmt = 'y'.repeat(rng.int(1000, 3000));
    return () => `; ${stmt} @ prog.c:${addr + 10}`;
  }
  if (kind === 0) {
    const stmt = `${rng.pick(WORDS)} += ${rng.pick(WORDS)}${rng.int(0, 99)};`;
    return () => `; ${stmt} @ prog.c:${addr + 10}`;
  }
  const op = rng.pick(OPS);
  const reg = rng.int(0, 9);
  const stateful = rng.chance(0.7);
  return (it) => (stateful ? `${addr}: ${op}`.padEnd(38) + `; R${reg}=${it} R10=fp0` : `${addr}: ${op}`);
}

function bookkeeping(rng: Rng, addr: number, it: number): string[] {
  switch (rng.int(0, 6)) {
    case 0:
      return [
        `mark_precise: frame0: last_idx ${addr} first_idx ${it} subseq_idx -1 `,
        `mark_precise: frame0: regs=r1 stack= before ${addr - 1}: (77) r1 >>= 32`,
      ];
    case 1:
      return [`${addr}: R1=${it} R6=${it}`];
    case 2:
      return [''];
    case 3:
      return [`SCC enter (${rng.int(1, 3)})`];
    case 4:
      return [`(0) frame 0 insn ${addr} +live -8 `];
    case 5:
      return [` frame1: R1=${it} R2=0 R10=fp0`];
    default:
      return [`from ${addr} to ${addr + 2}: R0=scalar() R1=${it} R10=fp0`];
  }
}

function noiseLine(rng: Rng, serial: number): string {
  switch (rng.int(0, 4)) {
    case 0:
      return `${serial}: (b7) r${rng.int(0, 9)} = ${rng.int(0, 1 << 30)}`.padEnd(38) + `; R1=${rng.int(0, 99)}`;
    case 1:
      return `; ${rng.pick(WORDS)} = ${rng.pick(WORDS)}(${rng.int(0, 1e6)}); @ prog.c:${serial}`;
    case 2:
      return `R${rng.int(0, 9)} invalid mem access '${rng.pick(WORDS)}' #${serial}`;
    case 3:
      return `func#${serial} @${rng.int(0, 999)}`;
    default:
      return `to caller at ${rng.int(1, 99)}:`;
  }
}

/** A loop: `reps` iterations of a body of `period` content lines, maybe with an inner loop. */
function loop(rng: Rng, out: string[], depth: number, longLines: boolean): void {
  const period = rng.chance(0.2) ? rng.int(1, 4) : rng.int(5, depth > 0 ? 12 : 30);
  const reps = rng.chance(0.15) ? rng.int(1, 2) : rng.int(3, depth > 0 ? 6 : 40);
  const base = rng.int(1, 500);
  const templates = Array.from({ length: period }, (_, i) => bodyTemplate(rng, base + i, longLines));
  const extras = templates.map(() => rng.chance(0.25));
  const innerAt = depth < 2 && rng.chance(0.25) ? rng.int(0, period - 1) : -1;
  const innerSeed = rng.int(0, 2 ** 31);
  const varyLast = rng.chance(0.3);
  for (let it = 0; it < reps; it++) {
    templates.forEach((line, i) => {
      out.push(line(it));
      if (extras[i]) out.push(...bookkeeping(rng, base + i, it));
      if (i === innerAt) loop(new Rng(innerSeed), out, depth + 1, longLines); // same inner loop every time
    });
    if (varyLast && it === reps - 1) out.push(`${base + period}: (95) exit`);
  }
}

/** A random log as latin1 text (one char per byte). */
export function randomLog(seed: number, options: RandomLogOptions = {}): string {
  const rng = new Rng(seed);
  const target = options.lines ?? rng.int(0, 600);
  const out: string[] = [];
  let serial = 0;
  while (out.length < target) {
    const r = rng.next();
    if (r < 0.45) loop(rng, out, 0, options.longLines === true);
    else if (r < 0.75) for (let n = rng.int(1, 10); n > 0; n--) out.push(noiseLine(rng, serial++));
    else if (r < 0.9) out.push(...bookkeeping(rng, rng.int(1, 99), rng.int(0, 9)));
    else if (options.longLines === true && r < 0.95)
      out.push(`; ${'x'.repeat(rng.int(900, 5000))} @ long.c:${serial++}`);
    else if (options.binary === true && r < 0.98)
      out.push(rng.bytes(rng.int(1, 80)).toString('latin1').replace(/\n/g, ' '));
    else out.push(noiseLine(rng, serial++));
  }
  const crlf = rng.chance(0.15);
  let text = out.join(crlf ? '\r\n' : '\n');
  if (out.length > 0 && !rng.chance(0.2)) text += crlf ? '\r\n' : '\n'; // else: unterminated last line
  if (rng.chance(0.05)) text = text.replace(/\n/g, (m) => (rng.chance(0.3) ? '\r\n' : m)); // mixed endings
  return text;
}
