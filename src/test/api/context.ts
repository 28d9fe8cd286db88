// What a test body gets (`ctx`) and what it may ask for. The body runs inside the guest; the
// guest agent supplies the implementation (GuestRuntime) through a global, so a test file's
// bundle carries only these thin wrappers and the builders.

import type { RunRecord } from '../record.js';
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
}

/** Thrown by ctx.skip(): the test is reported as skipped with the reason, never as passed. */
export class SkipTest extends Error {
  constructor(readonly reason: string) { super(`skip: ${reason}`); this.name = 'SkipTest'; }
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
}

export function makeContext(o: { name: string; topo: TopologyView; scheduler: string | null; durationMs: number; runtime: GuestRuntime }): TestContext {
  let runs = 0;
  return {
    name: o.name, topo: o.topo, scheduler: o.scheduler, durationMs: o.durationMs,
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
        if (op.atMs >= durationMs) throw new RangeError(`run: an operation at ${op.atMs} ms is past the run's end (${durationMs} ms)`);
      }
      return o.runtime.run({
        label: opts.label ?? `run ${runs}`, durationMs, cgroups,
        ops: [...(opts.ops ?? [])].sort((a, b) => a.atMs - b.atMs), checks: opts.checks ?? null,
      });
    },
    sleep: (d) => new Promise((r) => setTimeout(r, toMs(d, 'sleep'))),
    log: (...parts) => o.runtime.log(parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ')),
    skip(reason) { throw new SkipTest(reason); },
  };
}
