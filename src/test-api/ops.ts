// Dynamic operations of a run: `at('2s').resize('a', cpus)`, `.add(cgroup(...))`,
// `.remove('b')`, `.moveWorkers('a', 'c', 2)`, `.affinity(...)`, `.weight(...)`, and the
// scheduler's `replaceScheduler` / `detachScheduler` / `attachScheduler`. Each becomes a new
// phase of the run, timestamped, and the checks judge per phase.

import { toCpuList, type CgroupDef, type CgroupSpec, type CpuSet } from './cgroup.js';
import { toMs, type Duration } from './duration.js';
import { cpuList as cpuRanges } from '../vmm/topology/index.js';

/** `0-3,6` from a CPU list (Linux's list format). */
export { cpuRanges };

export type OpSpec =
  | { atMs: number; op: 'resize'; cgroup: string; cpus: number[] }
  | { atMs: number; op: 'add'; cgroups: CgroupSpec[] }
  | { atMs: number; op: 'remove'; cgroup: string }
  | { atMs: number; op: 'move'; from: string; to: string; count: number }
  | { atMs: number; op: 'affinity'; cgroup: string; cpus: number[] | null }
  | { atMs: number; op: 'weight'; cgroup: string; weight: number }
  | { atMs: number; op: 'replaceScheduler'; scheduler: string; args: string[] }
  | { atMs: number; op: 'detachScheduler' }
  | { atMs: number; op: 'attachScheduler'; scheduler: string; args: string[] };

/** One line naming an operation (the label of the phase it starts). */
export function describeOp(o: OpSpec): string {
  switch (o.op) {
    case 'resize':
      return `resize ${o.cgroup} to ${cpuRanges(o.cpus)}`;
    case 'add':
      return `add ${o.cgroups.map((c) => c.name).join(', ')}`;
    case 'remove':
      return `remove ${o.cgroup}`;
    case 'move':
      return `move ${o.count} workers ${o.from} -> ${o.to}`;
    case 'affinity':
      return `affinity of ${o.cgroup} to ${o.cpus === null ? 'all' : cpuRanges(o.cpus)}`;
    case 'weight':
      return `weight of ${o.cgroup} to ${o.weight}`;
    case 'replaceScheduler':
      return `replace scheduler with ${o.scheduler}`;
    case 'detachScheduler':
      return 'detach scheduler (EEVDF)';
    case 'attachScheduler':
      return `attach ${o.scheduler}`;
  }
}

function nonEmpty(cpus: number[], what: string): number[] {
  if (cpus.length === 0) throw new TypeError(`${what}: an empty CPU set (null for every CPU)`);
  return cpus;
}

/** What `at(time)` offers: each method returns the operation as data. */
export class At {
  readonly atMs: number;
  constructor(time: Duration) {
    this.atMs = toMs(time, 'at()');
  }
  resize(cgroup: string, cpus: CpuSet): OpSpec {
    return {
      atMs: this.atMs,
      op: 'resize',
      cgroup,
      cpus: nonEmpty(toCpuList(cpus, `resize ${cgroup}`), `resize ${cgroup}`),
    };
  }
  add(...defs: CgroupDef[]): OpSpec {
    return { atMs: this.atMs, op: 'add', cgroups: defs.flatMap((d) => d.toSpecs()) };
  }
  remove(cgroup: string): OpSpec {
    return { atMs: this.atMs, op: 'remove', cgroup };
  }
  moveWorkers(from: string, to: string, count: number): OpSpec {
    if (!Number.isSafeInteger(count) || count < 1)
      throw new TypeError(`moveWorkers: count ${String(count)} must be ≥ 1`);
    return { atMs: this.atMs, op: 'move', from, to, count };
  }
  affinity(cgroup: string, cpus: CpuSet | null): OpSpec {
    return {
      atMs: this.atMs,
      op: 'affinity',
      cgroup,
      cpus: cpus === null ? null : nonEmpty(toCpuList(cpus, `affinity ${cgroup}`), `affinity ${cgroup}`),
    };
  }
  weight(cgroup: string, weight: number): OpSpec {
    if (!Number.isSafeInteger(weight) || weight < 1 || weight > 10000)
      throw new TypeError(`weight ${cgroup}: ${String(weight)} outside 1..10000`);
    return { atMs: this.atMs, op: 'weight', cgroup, weight };
  }
  replaceScheduler(scheduler: string, args: string[] = []): OpSpec {
    return { atMs: this.atMs, op: 'replaceScheduler', scheduler, args };
  }
  detachScheduler(): OpSpec {
    return { atMs: this.atMs, op: 'detachScheduler' };
  }
  attachScheduler(scheduler: string, args: string[] = []): OpSpec {
    return { atMs: this.atMs, op: 'attachScheduler', scheduler, args };
  }
}

export function at(time: Duration): At {
  return new At(time);
}
