// `cgroup(name)`: a cgroup and its workers as data. The builder only records what the test
// asks for; the guest agent creates the cgroup v2 directories, writes the controls and
// starts the workers (src/guest/agent/workload/). `toSpec()` is the plain form it receives.

import type { WorkSpec } from './work.js';
import { work as workTypes } from './work.js';

export type Policy = 'ext' | 'normal' | 'batch' | 'idle';
/** A CPU set: a list of CPU numbers or a list string (`0-3,6`). */
export type CpuSet = readonly number[] | string;

export interface CgroupSpec {
  /** Path below the test's root cgroup: `a`, `parent/child`. */
  name: string;
  cpuset: number[] | null;
  weight: number | null;
  max: { quotaUs: number; periodUs: number } | null;
  /** Per-worker affinity (sched_setaffinity), null: all allowed. */
  affinity: number[] | null;
  nice: number | null;
  /** null: the default (`ext` when the kernel has sched_ext, which is plain `normal` without a BPF scheduler). */
  policy: Policy | null;
  workers: { count: number; work: WorkSpec }[];
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** Parses a CPU list string or checks an array; throws naming the bad part. */
export function toCpuList(set: CpuSet, what: string): number[] {
  if (typeof set !== 'string') {
    for (const c of set)
      if (!Number.isSafeInteger(c) || c < 0 || c > 4095) throw new TypeError(`${what}: bad CPU number ${String(c)}`);
    return [...new Set(set)].sort((a, b) => a - b);
  }
  const out = new Set<number>();
  for (const part of set
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new TypeError(`${what}: bad CPU list "${set}" (expected e.g. 0-3,6)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 4095) throw new TypeError(`${what}: bad CPU range "${part}"`);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

export class CgroupDef {
  private readonly spec: CgroupSpec;
  private readonly kids: CgroupDef[] = [];

  constructor(name: string) {
    if (!NAME_RE.test(name)) throw new TypeError(`cgroup: bad name "${name}" (letters, digits, _ . -; at most 64)`);
    this.spec = { name, cpuset: null, weight: null, max: null, affinity: null, nice: null, policy: null, workers: [] };
  }

  get name(): string {
    return this.spec.name;
  }

  /** `n` workers doing `w` (default `work.spin()`); call again to add workers of another kind. */
  workers(n: number, w: WorkSpec = workTypes.spin()): this {
    if (!Number.isSafeInteger(n) || n < 0 || n > 4096)
      throw new TypeError(`cgroup ${this.name}: workers(${String(n)}): a count 0..4096`);
    this.spec.workers.push({ count: n, work: w });
    return this;
  }

  /** cpuset.cpus: the CPUs the cgroup may use. */
  cpuset(cpus: CpuSet): this {
    this.spec.cpuset = toCpuList(cpus, `cgroup ${this.name}: cpuset`);
    if (this.spec.cpuset.length === 0) throw new TypeError(`cgroup ${this.name}: empty cpuset`);
    return this;
  }

  /** cpu.weight, 1..10000 (default 100). */
  weight(w: number): this {
    if (!Number.isSafeInteger(w) || w < 1 || w > 10000)
      throw new TypeError(`cgroup ${this.name}: weight ${String(w)} outside 1..10000`);
    this.spec.weight = w;
    return this;
  }

  /** cpu.max: `quotaUs` of CPU time per `periodUs` (default period 100000). */
  max(quotaUs: number, periodUs = 100_000): this {
    if (
      !Number.isSafeInteger(quotaUs) ||
      quotaUs < 1000 ||
      !Number.isSafeInteger(periodUs) ||
      periodUs < 1000 ||
      periodUs > 1_000_000
    ) {
      throw new TypeError(
        `cgroup ${this.name}: max(${String(quotaUs)}, ${String(periodUs)}): quota ≥ 1000 µs, period 1000..1000000 µs`,
      );
    }
    this.spec.max = { quotaUs, periodUs };
    return this;
  }

  /** Every worker's own CPU affinity (within the cpuset). */
  affinity(cpus: CpuSet): this {
    this.spec.affinity = toCpuList(cpus, `cgroup ${this.name}: affinity`);
    if (this.spec.affinity.length === 0) throw new TypeError(`cgroup ${this.name}: empty affinity`);
    return this;
  }

  nice(n: number): this {
    if (!Number.isSafeInteger(n) || n < -20 || n > 19)
      throw new TypeError(`cgroup ${this.name}: nice ${String(n)} outside -20..19`);
    this.spec.nice = n;
    return this;
  }

  policy(p: Policy): this {
    if (!['ext', 'normal', 'batch', 'idle'].includes(p))
      throw new TypeError(`cgroup ${this.name}: policy "${String(p)}" (ext, normal, batch or idle)`);
    this.spec.policy = p;
    return this;
  }

  /** Nested cgroups (their names are relative to this one). */
  children(...defs: CgroupDef[]): this {
    this.kids.push(...defs);
    return this;
  }

  /** This cgroup and its descendants, parents first, names as paths. */
  toSpecs(prefix = ''): CgroupSpec[] {
    const self: CgroupSpec = {
      ...this.spec,
      name: prefix + this.spec.name,
      workers: this.spec.workers.map((w) => ({ ...w })),
    };
    return [self, ...this.kids.flatMap((k) => k.toSpecs(`${self.name}/`))];
  }
}

export function cgroup(name: string): CgroupDef {
  return new CgroupDef(name);
}
