// Test helper: per-CPU runqueues in a SyntheticGuest, as the monitor's runqueue sampler reads
// them -- `__per_cpu_offset`, a `runqueues` per-CPU symbol, struct rq with nr_running/cfs/scx/
// curr/clock/cpu, task_structs with pid/comm/policy, and sched_ext runnable lists (list_head
// rings through task_struct.scx.runnable_node) carrying runnable_at -- laid out with an offset
// table unlike any real kernel's (rq->clock even straddles a page boundary), so tests know
// exactly what the core must find and nothing can lean on hard-coded numbers.

import * as abi from '../../assembly/monitor-abi.js';
import type { Btf } from '../../src/monitor/btf.js';
import type { GuestKernel } from '../../src/monitor/guest-kernel.js';
import type { Introspector } from '../../src/monitor/index.js';
import { RunqueueSampler } from '../../src/monitor/runqueues.js';
import type { RunqueueConfig } from '../../src/monitor/ts-walker.js';
import type { SyntheticGuest } from './synthetic-guest.js';

/** struct rq lives this far into its CPU's page-aligned area; RQ_TEST_OFFSETS' clock then crosses a page. */
export const RQ_IN_AREA = 0x100;
const RQ_AREA = 0x2000; // rq: RQ_IN_AREA + < 0x1100 bytes
const TASK_BYTES = 0x900;

/** Monitor offsets (abi.MON_* index -> byte offset): unaligned where a kernel would never put them. */
export const RQ_TEST_OFFSETS: readonly number[] = (() => {
  const t = new Array<number>(abi.MON_COUNT).fill(abi.MON_ABSENT);
  t[abi.MON_RQ_NR_RUNNING] = 0x1c4;
  t[abi.MON_RQ_CFS_NR_RUNNING] = 0x88c;
  t[abi.MON_RQ_SCX_NR_RUNNING] = 0xb30;
  t[abi.MON_RQ_SCX_FLAGS] = 0xb34;
  t[abi.MON_RQ_LOCAL_DSQ_NR] = 0xb5a;
  t[abi.MON_RQ_RUNNABLE_LIST] = 0xb78;
  t[abi.MON_RQ_CURR] = 0x9a0;
  t[abi.MON_RQ_CLOCK] = 0xefc; // rq at +0x100 of a page: bytes 0xffc..0x1003 of the area
  t[abi.MON_RQ_CPU] = 0xd14;
  t[abi.MON_RQ_PREV_STEAL_TIME] = 0x4f4;
  t[abi.MON_TASK_PID] = 0x5dc;
  t[abi.MON_TASK_COMM] = 0x7a3;
  t[abi.MON_TASK_POLICY] = 0x61e;
  t[abi.MON_TASK_RUNNABLE_NODE] = 0x3a8;
  t[abi.MON_TASK_RUNNABLE_AT] = 0x3bc;
  return t;
})();

/** `runqueues`' per-CPU symbol value: an offset into the per-CPU section, as in System.map. */
export const RUNQUEUES_SYM = 0x3_4a40n;

export interface TaskSpec {
  pid: number;
  comm: string;
  policy: number;
  /** sched_ext_entity.runnable_at (jiffies). */
  runnableAt: bigint;
}

export interface RqSpec {
  nrRunning: number;
  cfsNr: number;
  scxNr: number;
  scxFlags: number;
  localDsqNr: number;
  clock: bigint;
  /** rq->prev_steal_time (ns); 0 when left out. */
  steal?: bigint;
  /** The task on the CPU; null leaves rq->curr 0. */
  curr: TaskSpec | null;
  /** The sched_ext runnable list, head first. */
  runnable: TaskSpec[];
}

export interface Task {
  pa: number;
  kva: bigint;
}

/** `cpus` runqueues (all empty: curr 0, runnable list pointing at itself) in `g`'s direct map. */
export class SyntheticRunqueues {
  readonly offsets: number[];
  /** Kernel virtual address of `__per_cpu_offset`. */
  readonly perCpuKva: bigint;
  readonly perCpuPa: number;
  readonly rqPa: number[] = [];
  readonly rqKva: bigint[] = [];

  /** `slots` per-CPU offsets are written (default `cpus`); CPUs past `cpus` get offset 0. */
  constructor(
    readonly g: SyntheticGuest,
    readonly cpus: number,
    offsets: readonly number[] = RQ_TEST_OFFSETS,
    readonly slots = cpus,
  ) {
    this.offsets = [...offsets];
    this.perCpuPa = g.alloc(Math.max(8, slots * 8), 64);
    this.perCpuKva = g.kva(this.perCpuPa);
    for (let cpu = 0; cpu < cpus; cpu++) {
      const pa = g.alloc(RQ_AREA) + RQ_IN_AREA;
      this.rqPa.push(pa);
      this.rqKva.push(g.kva(pa));
      if (cpu < slots) g.w64(this.perCpuPa + cpu * 8, g.kva(pa) - RUNQUEUES_SYM);
      this.emptyList(cpu);
    }
  }

  private at(index: number): number {
    const o = this.offsets[index];
    if (o < 0) throw new Error(`monitor offset ${index} is absent in this layout`);
    return o;
  }

  /** Physical address of the runnable list head of `cpu`. */
  listHeadPa(cpu: number): number {
    return this.rqPa[cpu] + this.at(abi.MON_RQ_RUNNABLE_LIST);
  }
  listHeadKva(cpu: number): bigint {
    return this.g.kva(this.listHeadPa(cpu));
  }

  private emptyList(cpu: number): void {
    if (this.offsets[abi.MON_RQ_RUNNABLE_LIST] < 0) return;
    const head = this.listHeadPa(cpu);
    this.g.w64(head, this.g.kva(head));
    this.g.w64(head + 8, this.g.kva(head));
  }

  /** A task_struct (direct map) with pid, comm, policy and runnable_at. */
  task(spec: TaskSpec): Task {
    const pa = this.g.alloc(TASK_BYTES, 64);
    const o = this.offsets;
    if (o[abi.MON_TASK_PID] >= 0) this.g.w32(pa + o[abi.MON_TASK_PID], spec.pid);
    if (o[abi.MON_TASK_COMM] >= 0) this.g.name(pa + o[abi.MON_TASK_COMM], spec.comm);
    if (o[abi.MON_TASK_POLICY] >= 0) this.g.w32(pa + o[abi.MON_TASK_POLICY], spec.policy);
    if (o[abi.MON_TASK_RUNNABLE_AT] >= 0) this.g.w64(pa + o[abi.MON_TASK_RUNNABLE_AT], spec.runnableAt);
    return { pa, kva: this.g.kva(pa) };
  }

  /** Physical address of a task's runnable_node (a list_head: next, prev). */
  nodePa(t: Task): number {
    return t.pa + this.at(abi.MON_TASK_RUNNABLE_NODE);
  }
  nodeKva(t: Task): bigint {
    return this.g.kva(this.nodePa(t));
  }

  /** Writes `cpu`'s rq fields, its current task and its runnable list (a proper ring). */
  setRq(cpu: number, spec: RqSpec): { curr: Task | null; runnable: Task[] } {
    const g = this.g;
    const rq = this.rqPa[cpu];
    const o = this.offsets;
    const w32 = (index: number, v: number): void => {
      if (o[index] >= 0) g.w32(rq + o[index], v);
    };
    w32(abi.MON_RQ_NR_RUNNING, spec.nrRunning);
    w32(abi.MON_RQ_CFS_NR_RUNNING, spec.cfsNr);
    w32(abi.MON_RQ_SCX_NR_RUNNING, spec.scxNr);
    w32(abi.MON_RQ_SCX_FLAGS, spec.scxFlags);
    w32(abi.MON_RQ_LOCAL_DSQ_NR, spec.localDsqNr);
    w32(abi.MON_RQ_CPU, cpu);
    if (o[abi.MON_RQ_CLOCK] >= 0) g.w64(rq + o[abi.MON_RQ_CLOCK], spec.clock);
    if (o[abi.MON_RQ_PREV_STEAL_TIME] >= 0) g.w64(rq + o[abi.MON_RQ_PREV_STEAL_TIME], spec.steal ?? 0n);
    const curr = spec.curr === null ? null : this.task(spec.curr);
    if (o[abi.MON_RQ_CURR] >= 0) g.w64(rq + o[abi.MON_RQ_CURR], curr === null ? 0n : curr.kva);
    const runnable = spec.runnable.map((t) => this.task(t));
    if (o[abi.MON_RQ_RUNNABLE_LIST] >= 0 && o[abi.MON_TASK_RUNNABLE_NODE] >= 0) this.link(cpu, runnable);
    return { curr, runnable };
  }

  /** Makes `tasks` the runnable list of `cpu`: head -> tasks[0] -> ... -> head (next and prev). */
  link(cpu: number, tasks: Task[]): void {
    const head = this.listHeadPa(cpu);
    const nodes = [head, ...tasks.map((t) => this.nodePa(t))];
    for (let i = 0; i < nodes.length; i++) {
      const next = nodes[(i + 1) % nodes.length];
      const prev = nodes[(i + nodes.length - 1) % nodes.length];
      this.g.w64(nodes[i], this.g.kva(next));
      this.g.w64(nodes[i] + 8, this.g.kva(prev));
    }
  }

  /** What the core and the TS sampler are configured with. */
  config(offsets: readonly number[] = this.offsets): RunqueueConfig {
    return { perCpuKva: this.perCpuKva, perCpuSlots: this.slots, runqueues: RUNQUEUES_SYM, offsets };
  }

  /** Configures the core (per-CPU offsets, monitor offsets -- the layout's unless given --,
   * runqueues); returns setRunqueues' CPU count. */
  configure(intro: Introspector, offsets: readonly number[] = this.offsets): number {
    intro.setPerCpu(this.perCpuKva, this.slots);
    offsets.forEach((v, i) => intro.core.setMonitorOffset(i, v));
    return intro.core.setRunqueues(RUNQUEUES_SYM);
  }
}

/** A task spec with pid `pid` named after it. */
export function taskSpec(pid: number, runnableAt = 0n, policy = 7): TaskSpec {
  return { pid, comm: `worker-${pid}`, policy, runnableAt };
}

/** An rq spec with `runnable` tasks on the list (pids from `firstPid`) and a current task. */
export function rqSpec(cpu: number, runnable: number, firstPid: number, jiffies = 4_295_000_000n): RqSpec {
  const list: TaskSpec[] = [];
  for (let i = 0; i < runnable; i++) list.push(taskSpec(firstPid + i, jiffies - BigInt((i * 7919) % 97)));
  return {
    nrRunning: runnable + 1,
    cfsNr: cpu % 3,
    scxNr: runnable + 1,
    scxFlags: 0x5,
    localDsqNr: runnable % 4,
    clock: 1_000_000_000n * BigInt(cpu + 1) + 12_345n,
    curr: taskSpec(firstPid + runnable, jiffies),
    runnable: list,
  };
}

// ---- a RunqueueSampler without a kernel build: BTF members that sum to RQ_TEST_OFFSETS ----
/** BTF members whose chains (runqueues.ts FIELDS) sum to RQ_TEST_OFFSETS. */
const MEMBERS: Record<string, number> = {
  'rq.nr_running': 0x1c4,
  'rq.cfs': 0x880,
  'cfs_rq.nr_running': 0xc,
  'rq.scx': 0xb00,
  'scx_rq.nr_running': 0x30,
  'scx_rq.flags': 0x34,
  'scx_rq.local_dsq': 0x50,
  'scx_dispatch_q.nr': 0xa,
  'scx_rq.runnable_list': 0x78,
  'rq.curr': 0x9a0,
  'rq.clock': 0xefc,
  'rq.cpu': 0xd14,
  'rq.prev_steal_time': 0x4f4,
  'task_struct.pid': 0x5dc,
  'task_struct.comm': 0x7a3,
  'task_struct.policy': 0x61e,
  'task_struct.scx': 0x380,
  'sched_ext_entity.runnable_node': 0x28,
  'sched_ext_entity.runnable_at': 0x3c,
};

/** A Btf stand-in that knows MEMBERS (minus the structs in `without`, as a kernel without sched_ext). */
export function fakeBtf(without: string[] = []): Btf {
  return {
    member(struct: string, path: string) {
      const offset = MEMBERS[`${struct}.${path}`];
      if (offset === undefined || without.includes(struct) || without.includes(`${struct}.${path}`))
        throw new Error(`no ${struct}.${path}`);
      return { offset, bitOffset: offset * 8, bitSize: 0, size: 8, type: 1 };
    },
  } as unknown as Btf;
}

/** A RunqueueSampler over `intro` with the fake BTF and `runqueues` at RUNQUEUES_SYM. */
export function runqueueSampler(
  intro: Introspector,
  rqs: SyntheticRunqueues,
  listLimit?: number,
  without: string[] = [],
): RunqueueSampler {
  intro.setPerCpu(rqs.perCpuKva, rqs.slots);
  const guest = {
    intro,
    kernel: { btf: fakeBtf(without), symbols: new Map([['runqueues', RUNQUEUES_SYM]]) },
  } as unknown as GuestKernel;
  return new RunqueueSampler(guest, listLimit);
}
