// What crosses from the host to a test body: a capture of the guest (ctx.snapshot, viewed by
// snapshot.ts's Snapshot) and the watches with their hits (ctx.watch, viewed by watch.ts's
// Watch). Plain JSON data: the host's cell (src/cell) writes it, the guest agent carries it
// (src/guest/plan.ts's messages), the test API reads it; so it sits here, below both.

/** One CPU as the host monitor sampled it: rq->nr_running and its CFS and sched_ext parts, the local DSQ depth, rq->clock (ms), the running task (pid 0: idle), and the sched_ext runnable list (tasks waiting, the longest wait in ms and its pid). */
export interface CapturedCpu {
  cpu: number;
  nr: number;
  cfs: number;
  scx: number;
  dsq: number;
  clockMs: number;
  pid: number | null;
  comm: string | null;
  /** The running task's scheduling policy (7: SCHED_EXT), null when unread. */
  policy: number | null;
  runnable: number;
  /** The longest wait on the runnable list, less the time its vCPU was not run by the host (steal), ms. */
  waitMs: number | null;
  /** The steal left out of that wait, ms (null without a waiting task; absent in older results). */
  waitStolenMs?: number | null;
  waitPid: number | null;
}

export interface CapturedMap {
  name: string;
  type: string;
  entries: { key: unknown; value: unknown }[];
}

/** The capture as it crosses from the host (plain JSON). */
export interface SnapshotData {
  label: string;
  /** ms since the monitor started. */
  atMs: number;
  /** How long holding every vCPU for the read took to take hold, ms (null: read while the guest ran). */
  pauseMs: number | null;
  cpus: CapturedCpu[];
  scx: { state: string | null; ops: string | null } | null;
  /** The scheduler's global variables (.bss, .data, .rodata) by name. */
  globals: Record<string, unknown>;
  maps: CapturedMap[];
  /** What the host could not render (e.g. a map type it does not read). */
  notes: string[];
}

/** What happens when a watched variable is written: a capture of the whole guest at that moment, or the writer's context only. */
export type WatchMode = 'capture' | 'record';

/** A watch as the host set it (ctx.watch's answer, and the test result's summary). */
export interface WatchData {
  id: number;
  target: string;
  /** Where it was found: `scx_ktst.bss.nr_weight_sets` (map name, path), `kernel.jiffies_64`. */
  resolved: string;
  /** Kernel virtual address, hex. */
  address: string;
  size: number;
  onWrite: WatchMode;
  /** Writes seen so far (all of them, also those beyond the ones kept). */
  hits: number;
  /** Why the host took the watchpoint off (too many hits), or null. */
  disarmed: string | null;
}

/** One write a hardware watchpoint caught, with the writer's context (a copy crosses to the guest). */
export interface WatchHitData {
  /** 1-based, in the order the host saw them. */
  n: number;
  /** ms since the monitor started. */
  atMs: number;
  /** The CPU that wrote (the vCPU index, which is the guest's CPU number). */
  cpu: number;
  /** The instruction after the write (data watchpoints trap after it), hex, and symbolized: `ktstr_cgroup_set_weight+0x5c [bpf]`. */
  rip: string;
  where: string;
  /** The task running on that CPU: the writer (null when rq->curr was unreadable). */
  pid: number | null;
  comm: string | null;
  /** The watched bytes after the write, as an unsigned little-endian integer (decimal). */
  value: string;
  /** The guest at that moment (onWrite 'capture', for the first captures of a watch). */
  snapshot?: SnapshotData;
  /** What could not be read about this hit. */
  problem?: string;
}

/** A watch in a cell's result: what it is, and its first hits (without their captures). */
export type WatchSummary = WatchData & { firstHits: Omit<WatchHitData, 'snapshot'>[] };
