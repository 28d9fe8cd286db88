// Per-CPU runqueue samples from guest memory: the monitor's hot path. The offsets come from the
// kernel's BTF (fields a kernel lacks, e.g. sched_ext's on a stock kernel, are marked absent);
// the walk itself runs in the WASM core (sampleRunqueues) and its records are decoded here with
// the ABI both sides import (assembly/monitor-abi.ts). Browser-safe.

import * as abi from '../../assembly/monitor-abi.js';
import type { Btf } from './btf.js';
import type { GuestKernel } from './guest-kernel.js';

/** One CPU's runqueue at one moment. */
export interface RunqueueSample {
  cpu: number;
  /** False when the rq could not be read (then every count is 0). */
  readable: boolean;
  nrRunning: number;
  cfsNrRunning: number;
  /** sched_ext: tasks on this rq's scx side, the local DSQ's depth, rq->scx.flags (0 without sched_ext). */
  scxNrRunning: number;
  localDsqDepth: number;
  scxFlags: number;
  clockNs: bigint;
  /** rq->prev_steal_time: ns this vCPU was ready but not run by its host, as accounted at its ticks (0 without CONFIG_PARAVIRT). */
  stealNs: bigint;
  /** The running task; null when rq->curr could not be read. */
  curr: { pid: number; comm: string; policy: number } | null;
  /** Tasks on the sched_ext runnable list (runnable, not running), and the one waiting longest. */
  runnable: number;
  oldest: { pid: number; runnableAt: bigint } | null;
  /** The runnable list walk stopped at its bound or a broken link. */
  listTruncated: boolean;
  listBroken: boolean;
}

/** [index, struct, member path] chains: the offset is the sum along the chain. */
const FIELDS: readonly [number, [string, string][]][] = [
  [abi.MON_RQ_NR_RUNNING, [['rq', 'nr_running']]],
  [
    abi.MON_RQ_CFS_NR_RUNNING,
    [
      ['rq', 'cfs'],
      ['cfs_rq', 'nr_running'],
    ],
  ],
  [
    abi.MON_RQ_SCX_NR_RUNNING,
    [
      ['rq', 'scx'],
      ['scx_rq', 'nr_running'],
    ],
  ],
  [
    abi.MON_RQ_SCX_FLAGS,
    [
      ['rq', 'scx'],
      ['scx_rq', 'flags'],
    ],
  ],
  [
    abi.MON_RQ_LOCAL_DSQ_NR,
    [
      ['rq', 'scx'],
      ['scx_rq', 'local_dsq'],
      ['scx_dispatch_q', 'nr'],
    ],
  ],
  [
    abi.MON_RQ_RUNNABLE_LIST,
    [
      ['rq', 'scx'],
      ['scx_rq', 'runnable_list'],
    ],
  ],
  [abi.MON_RQ_CURR, [['rq', 'curr']]],
  [abi.MON_RQ_CLOCK, [['rq', 'clock']]],
  [abi.MON_RQ_CPU, [['rq', 'cpu']]],
  [abi.MON_RQ_PREV_STEAL_TIME, [['rq', 'prev_steal_time']]],
  [abi.MON_TASK_PID, [['task_struct', 'pid']]],
  [abi.MON_TASK_COMM, [['task_struct', 'comm']]],
  [abi.MON_TASK_POLICY, [['task_struct', 'policy']]],
  [
    abi.MON_TASK_RUNNABLE_NODE,
    [
      ['task_struct', 'scx'],
      ['sched_ext_entity', 'runnable_node'],
    ],
  ],
  [
    abi.MON_TASK_RUNNABLE_AT,
    [
      ['task_struct', 'scx'],
      ['sched_ext_entity', 'runnable_at'],
    ],
  ],
];

/** The monitor offset table from BTF: index -> offset, abi.MON_ABSENT where the kernel lacks a field. */
export function monitorOffsets(btf: Btf): number[] {
  const table = new Array<number>(abi.MON_COUNT).fill(abi.MON_ABSENT);
  for (const [index, chain] of FIELDS) {
    let sum = 0;
    try {
      for (const [struct, path] of chain) {
        const loc = btf.member(struct, path);
        if (loc.bitSize !== 0) throw new Error('bitfield');
        sum += loc.offset;
      }
      table[index] = sum;
    } catch {
      table[index] = abi.MON_ABSENT;
    }
  }
  return table;
}

/** Samples every CPU's runqueue of one guest kernel through the WASM core. */
export class RunqueueSampler {
  /** CPUs that can be sampled (per-CPU offsets known). */
  readonly cpus: number;
  /** The kernel has sched_ext's runqueue fields. */
  readonly hasSchedExt: boolean;

  constructor(
    private readonly guest: GuestKernel,
    private readonly listLimit = 4096,
  ) {
    const table = monitorOffsets(guest.kernel.btf);
    table.forEach((v, i) => guest.intro.core.setMonitorOffset(i, v));
    this.hasSchedExt = table[abi.MON_RQ_SCX_NR_RUNNING] !== abi.MON_ABSENT;
    const sym = guest.kernel.symbols.get('runqueues');
    this.cpus = sym === undefined ? 0 : guest.intro.core.setRunqueues(sym);
  }

  /** One sample of every CPU. */
  sample(): RunqueueSample[] {
    const core = this.guest.intro.core;
    const out: RunqueueSample[] = [];
    for (let first = 0; first < this.cpus;) {
      const n = core.sampleRunqueues(first, this.cpus - first, this.listLimit);
      if (n <= 0) break;
      const view = new DataView(this.guest.intro.memory.buffer, core.rqOutPtr(), n * abi.RQ_RECORD_SIZE);
      for (let i = 0; i < n; i++) out.push(decodeRecord(view, i * abi.RQ_RECORD_SIZE, first + i));
      first += n;
    }
    return out;
  }
}

function decodeRecord(v: DataView, o: number, cpu: number): RunqueueSample {
  const flags = v.getUint32(o + abi.RQ_FLAGS, true);
  const u32 = (at: number): number => v.getUint32(o + at, true);
  let comm = '';
  if ((flags & abi.RQF_CURR) !== 0) {
    for (let i = 0; i < 16; i++) {
      // latin1, to the first NUL
      const c = v.getUint8(o + abi.RQ_COMM + i);
      if (c === 0) break;
      comm += String.fromCharCode(c);
    }
  }
  const runnable = u32(abi.RQ_RUNNABLE_COUNT);
  return {
    cpu,
    readable: (flags & abi.RQF_READ) !== 0,
    nrRunning: u32(abi.RQ_NR_RUNNING),
    cfsNrRunning: u32(abi.RQ_CFS_NR),
    scxNrRunning: u32(abi.RQ_SCX_NR),
    localDsqDepth: u32(abi.RQ_LOCAL_DSQ_NR),
    scxFlags: u32(abi.RQ_SCX_FLAGS),
    clockNs: v.getBigUint64(o + abi.RQ_CLOCK, true),
    stealNs: v.getBigUint64(o + abi.RQ_STEAL, true),
    curr: (flags & abi.RQF_CURR) !== 0 ? { pid: u32(abi.RQ_CURR_PID), comm, policy: u32(abi.RQ_CURR_POLICY) } : null,
    runnable,
    oldest:
      runnable > 0
        ? { pid: u32(abi.RQ_OLDEST_PID), runnableAt: v.getBigUint64(o + abi.RQ_OLDEST_RUNNABLE_AT, true) }
        : null,
    listTruncated: (flags & abi.RQF_LIST_TRUNCATED) !== 0,
    listBroken: (flags & abi.RQF_LIST_BROKEN) !== 0,
  };
}
