// What a test body gets (`ctx`) and what it may ask for. The body runs inside the guest; the
// guest agent supplies the implementation (GuestRuntime) through a global, so a test file's
// bundle carries only these thin wrappers and the builders.

import { Snapshot, type SnapshotData } from './snapshot.js';
import { Watch, type WatchChannel, type WatchData, type WatchMode, type WatchOptions } from './watch.js';
import type { RunRecord } from './record.js';
import type { CgroupDef, CgroupSpec } from './cgroup.js';
import { toMs, type Duration } from './duration.js';
import type { OpSpec } from './ops.js';
import type { CheckOverrides } from './options.js';
import type { TopologyView } from './topology.js';

export interface RunOptions {
  /** How long the workers run (default: the test's `duration`). */
  duration?: Duration;
  /** Dynamic operations at times within the run: `at('1s').resize(...)`. */
  ops?: OpSpec[];
  /** Check thresholds for this run, over the test's and the scheduler's. */
  checks?: CheckOverrides;
  /** Names the run in reports (default `run N`). */
  label?: string;
}

/** A run as the guest runtime receives it. */
export interface RunSpec {
  label: string;
  durationMs: number;
  cgroups: CgroupSpec[];
  ops: OpSpec[];
  checks: CheckOverrides | null;
}

/** Supplied by the guest agent (src/guest/agent/test-runtime.ts). */
export interface GuestRuntime {
  run(spec: RunSpec): Promise<RunRecord>;
  log(line: string): void;
  /** Asks the host for a capture of guest memory (absent: captures are not available). */
  capture?(label: string): Promise<SnapshotData>;
  /** Asks the host to write a global variable of the attached scheduler. */
  writeVar?(name: string, value: number | string): Promise<void>;
  /** Asks the host for a hardware watchpoint; its hits and removal go through `watches`. */
  watch?(target: string, onWrite: WatchMode): Promise<WatchData>;
  watches?: WatchChannel;
}

/** Thrown by ctx.skip(): the test is reported as skipped with the reason, never as passed. */
export class SkipTest extends Error {
  constructor(readonly reason: string) {
    super(`skip: ${reason}`);
    this.name = 'SkipTest';
  }
}

export interface TestContext {
  readonly name: string;
  readonly topo: TopologyView;
  /** The scheduler under test (registry name), null under EEVDF. */
  readonly scheduler: string | null;
  /** The test's run duration, ms. */
  readonly durationMs: number;
  /** Creates the cgroups, runs their workers for the duration (applying `ops`), stops them and returns what they measured. */
  run(defs: CgroupDef[], opts?: RunOptions): Promise<RunRecord>;
  sleep(d: Duration): Promise<void>;
  /** A line in the test's log (shown with a failure and in the JSON). */
  log(...parts: unknown[]): void;
  /** Ends the test as skipped (e.g. the topology cannot host it). */
  skip(reason: string): never;
  /** The host's view of guest memory now: runqueues, sched_ext state, the scheduler's maps and globals. */
  capture(label: string): Promise<Snapshot>;
  /** Writes a global variable (.bss/.data) of the attached scheduler from the host, into the running guest. */
  writeVar(name: string, value: number | bigint): Promise<void>;
  /**
   * A hardware watchpoint on a variable: a global of the attached scheduler (`nr_weight_sets`,
   * `bss.x`, `scx_ktstr.bss.x`, `stats.cnt`) or of the kernel (`kernel.jiffies_64`); 1, 2, 4
   * or 8 aligned bytes; at most 4 at a time. Each write is caught with the writer's context.
   */
  watch(target: string, options?: WatchOptions): Promise<Watch>;
}

export function makeContext(o: {
  name: string;
  topo: TopologyView;
  scheduler: string | null;
  durationMs: number;
  runtime: GuestRuntime;
}): TestContext {
  let runs = 0;
  return {
    name: o.name,
    topo: o.topo,
    scheduler: o.scheduler,
    durationMs: o.durationMs,
    run(defs, opts = {}) {
      runs++;
      const names = new Set<string>();
      const cgroups = defs.flatMap((d) => d.toSpecs());
      for (const c of cgroups) {
        if (names.has(c.name)) throw new TypeError(`run: cgroup "${c.name}" declared twice`);
        names.add(c.name);
      }
      const durationMs = opts.duration === undefined ? o.durationMs : toMs(opts.duration, 'run duration');
      for (const op of opts.ops ?? []) {
        if (op.atMs >= durationMs)
          throw new RangeError(`run: an operation at ${op.atMs} ms is past the run's end (${durationMs} ms)`);
      }
      return o.runtime.run({
        label: opts.label ?? `run ${runs}`,
        durationMs,
        cgroups,
        ops: [...(opts.ops ?? [])].sort((a, b) => a.atMs - b.atMs),
        checks: opts.checks ?? null,
      });
    },
    sleep: (d) => new Promise((r) => setTimeout(r, toMs(d, 'sleep'))),
    log: (...parts) => o.runtime.log(parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ')),
    skip(reason) {
      throw new SkipTest(reason);
    },
    async capture(label) {
      if (typeof label !== 'string' || label === '') throw new TypeError('capture: give the capture a label');
      if (o.runtime.capture === undefined) throw new Error('capture: the host monitor is not available in this run');
      return new Snapshot(await o.runtime.capture(label));
    },
    async writeVar(name, value) {
      if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name))
        throw new TypeError(`writeVar: "${String(name)}" is not a variable name`);
      if (typeof value !== 'bigint' && !Number.isSafeInteger(value))
        throw new TypeError(`writeVar: ${String(value)} is not an integer`);
      if (o.runtime.writeVar === undefined) throw new Error('writeVar: the host monitor is not available in this run');
      await o.runtime.writeVar(name, typeof value === 'bigint' ? value.toString() : value);
    },
    async watch(target, options = {}) {
      if (typeof target !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(target))
        throw new TypeError(`watch: "${String(target)}" is not a variable name`);
      const onWrite = options.onWrite ?? 'capture';
      if (onWrite !== 'capture' && onWrite !== 'record')
        throw new TypeError(`watch: onWrite is 'capture' or 'record', not ${JSON.stringify(onWrite)}`);
      if (o.runtime.watch === undefined || o.runtime.watches === undefined)
        throw new Error('watch: the host monitor is not available in this run');
      return new Watch(await o.runtime.watch(target, onWrite), o.runtime.watches);
    },
  };
}
