// Runs a sweep's cells on the cell pool and gathers a SweepResult: one CellSpec per matrix
// cell, at most `jobs` at once, progress as events, Ctrl-C through `interrupt()` (running
// cells end their VMs and report `interrupted`, queued cells never start). Printing is the
// caller's (src/cli/sweep-run.ts); this module only runs and collects.

import { reproReport, reproSpec, wantsRepro } from '../cell/repro.js';
import { thinTimeline } from '../cell/monitor-session.js';
import { bootImage } from '../kernel/resolve.js';
import type { CellSpec, CellTimeouts } from '../cell/run-cell.js';
import type { KeepDumps } from '../cell/cell-dump.js';
import type { CellResult } from '../cell/result.js';
import { CellPool } from './pool.js';
import type { MatrixCell } from './matrix.js';
import { SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, type SweepResult, type SweepShard } from './result.js';

export interface SweepEvents {
  cellStarted?(id: string, job: number): void;
  cellPhase?(id: string, phase: string): void;
  cellFinished?(result: CellResult, done: number, total: number): void;
}

export interface SweepRunOptions {
  cells: MatrixCell[];
  /** Every cell id of the whole matrix (all shards). */
  matrix: string[];
  shard: SweepShard | null;
  jobs: number;
  raw: boolean;
  timeouts?: Partial<CellTimeouts>;
  /** Failure bundles: where, and for which cells (src/cell/failure-bundle.ts). */
  dumps?: CellDumpPolicy;
  /** Rerun a cell whose scheduler crashed once, probing the crash path (default true; --no-repro). */
  repro?: boolean;
  /** The host monitor's interval for every cell, ms (default 100; 0: off). */
  monitorIntervalMs?: number;
  /** Where cells keep their machines' snapshots (CellSpec.snapshotDir; null: --no-snapshot). */
  snapshotDir?: string | null;
  tool: string;
  events?: SweepEvents;
}

/** A resolved kernel as a cell takes it: the image to boot (the bzImage when unresolvable) and the vmlinux. */
export function cellKernel(k: MatrixCell['kernel']): CellSpec['kernel'] {
  let image = '';
  try {
    image = bootImage(k);
  } catch {
    image = k.bzImage;
  }
  return { label: k.label, image, vmlinux: k.vmlinux ?? null };
}

/** Where failure bundles go and for which cells (CellSpec.bundleDir / keepDumps). */
export interface CellDumpPolicy {
  bundleDir?: string;
  keepDumps?: KeepDumps;
}

export function cellSpec(
  c: MatrixCell,
  raw: boolean,
  timeouts?: Partial<CellTimeouts>,
  dumps: CellDumpPolicy = {},
): CellSpec {
  return {
    id: c.id,
    scheduler: { name: c.scheduler.name, binary: c.binary, args: c.scheduler.args },
    kernel: cellKernel(c.kernel),
    topologyName: c.topologyName,
    topology: c.topology.toString(),
    memoryMiB: c.memoryMiB,
    setupProblem: c.setupProblem,
    raw,
    timeouts,
    ...dumps,
  };
}

export class SweepRun {
  private readonly pool: CellPool;
  private interrupted = false;

  constructor(private readonly o: SweepRunOptions) {
    this.pool = new CellPool(Math.max(1, Math.min(o.jobs, o.cells.length || 1)));
  }

  /** Ends running cells and drops queued ones; run() then resolves with what finished. */
  interrupt(): void {
    this.interrupted = true;
    this.pool.abortAll();
  }

  async run(): Promise<SweepResult> {
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    const results = new Map<string, CellResult>();
    let done = 0;
    const free = Array.from({ length: this.pool.jobs }, (_, i) => this.pool.jobs - i);
    try {
      await Promise.all(
        this.o.cells.map(async (cell) => {
          const spec = {
            ...cellSpec(cell, this.o.raw, this.o.timeouts, this.o.dumps),
            monitorIntervalMs: this.o.monitorIntervalMs,
            snapshotDir: this.o.snapshotDir,
          };
          let job = 0;
          let result: CellResult | null;
          try {
            result = await this.pool.run(spec, (phase) => {
              if (phase === 'boot' && job === 0) {
                job = free.pop() ?? 0;
                this.o.events?.cellStarted?.(cell.id, job);
              }
              this.o.events?.cellPhase?.(cell.id, phase);
            });
          } catch (e) {
            // the cell's thread itself failed (not the guest): the cell fails, the sweep goes on
            result = {
              id: cell.id,
              scheduler: cell.scheduler.name,
              kernel: cell.kernel.label,
              topology: cell.topologyName,
              passed: false,
              failure: {
                kind: 'setup',
                message: `the cell's worker thread failed: ${e instanceof Error ? e.message : String(e)}`,
              },
              schedulerStatus: 'unknown',
              programs: [],
              guestPrograms: [],
              schedulerLog: '',
              workers: [],
              consoleTail: '',
              phases: {},
              wallMs: 0,
              hostRssBytes: null,
            };
          }
          if (this.o.repro !== false && !this.interrupted && result !== null && wantsRepro(result)) {
            try {
              const again = await this.pool.run(reproSpec(spec), () => {});
              if (again !== null) result.repro = reproReport(again);
            } catch {
              /* the repro is extra: its own failure does not change the cell's */
            }
          }
          if (result !== null && result.passed && result.monitor !== undefined)
            result.monitor = thinTimeline(result.monitor);
          if (job !== 0) free.push(job);
          if (result === null || (this.interrupted && result.failure?.message.startsWith('interrupted'))) return;
          results.set(cell.id, result);
          done++;
          this.o.events?.cellFinished?.(result, done, this.o.cells.length);
        }),
      );
    } finally {
      await this.pool.close();
    }
    return {
      schema: SWEEP_SCHEMA,
      version: SWEEP_SCHEMA_VERSION,
      tool: this.o.tool,
      startedAt,
      wallMs: performance.now() - t0,
      shard: this.o.shard,
      matrix: this.o.matrix,
      cells: this.o.cells.map((c) => results.get(c.id)).filter((r): r is CellResult => r !== undefined),
      interrupted: this.interrupted,
    };
  }
}
