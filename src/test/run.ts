// Runs a test matrix on the cell pool (the sweep's: one VM per cell on a worker thread, at
// most `jobs` at once), judges each finished cell, and gathers a TestRunResult. Progress
// comes out as events; interrupt() ends running VMs and drops queued cells. Printing is the
// caller's (src/cli/test-run.ts).

import { reproReport, reproSpec, wantsRepro } from '../cell/repro.js';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CellSpec } from '../cell/run-cell.js';
import type { CellResult } from '../cell/result.js';
import { CellPool } from '../sweep/pool.js';
import { cellKernel, type CellDumpPolicy } from '../sweep/run.js';
import type { SweepShard } from '../sweep/result.js';
import type { ThresholdOverrides } from './checks/index.js';
import { judgeTest, type TestResult } from './judge.js';
import type { TestCell } from './matrix.js';

export const TEST_SCHEMA = 'ktstr-wasm/test';
export const TEST_SCHEMA_VERSION = 1;

export interface TestRunResult {
  schema: typeof TEST_SCHEMA;
  version: number;
  tool: string;
  startedAt: string;
  wallMs: number;
  shard: SweepShard | null;
  /** Every test id of the whole matrix (all shards). */
  matrix: string[];
  tests: TestResult[];
  interrupted: boolean;
}

export interface TestRunEvents {
  started?(id: string): void;
  phase?(id: string, phase: string): void;
  finished?(result: TestResult, done: number, total: number): void;
}

export function testCellSpec(c: TestCell, dumps: CellDumpPolicy = {}): CellSpec {
  return {
    id: c.id,
    scheduler: {
      name: c.scheduler?.name ?? 'eevdf',
      binary: c.scheduler === null ? null : c.binary,
      args: c.scheduler?.args ?? [],
    },
    kernel: cellKernel(c.kernel),
    topologyName: c.topologyName,
    topology: c.topology.toString(),
    memoryMiB: c.memoryMiB,
    setupProblem: c.setupProblem,
    raw: false,
    timeouts: { cellMs: c.timeoutMs },
    ...dumps,
    test: {
      bundle: c.test.bundle,
      file: c.test.fileName,
      name: c.test.name,
      durationMs: c.durationMs,
      schedulers: c.switchable,
      ...(c.payload === undefined ? {} : { payload: c.payload }),
    },
  };
}

/**
 * A test cell's bundle is written before its checks are judged (the cell engine cannot judge
 * them): once judged, a passed or skipped test's bundle goes (policy failures); a kept one gets
 * the judged TestResult as test-result.json.
 */
export function settleTestBundle(result: TestResult, dumps: CellDumpPolicy | undefined): void {
  const dir = result.bundle;
  if (dir === undefined) return;
  if (result.status !== 'fail' && (dumps?.keepDumps ?? 'failures') === 'failures') {
    rmSync(dir, { recursive: true, force: true });
    delete result.bundle;
    return;
  }
  const tmp = join(dir, `.test-result.json.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, JSON.stringify(result, null, 2) + '\n');
    renameSync(tmp, join(dir, 'test-result.json'));
  } catch (e) {
    rmSync(tmp, { force: true });
    result.bundleError = `the bundle ${dir} lacks test-result.json: ${e instanceof Error ? e.message : String(e)}`;
  }
}

function threadFailure(c: TestCell, e: unknown): CellResult {
  return {
    id: c.id,
    scheduler: c.scheduler?.name ?? 'eevdf',
    kernel: c.kernel.label,
    topology: c.topologyName,
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

export class TestRun {
  private readonly pool: CellPool;
  private interrupted = false;

  constructor(
    private readonly o: {
      cells: TestCell[];
      matrix: string[];
      shard: SweepShard | null;
      jobs: number;
      tool: string;
      events?: TestRunEvents;
      dumps?: CellDumpPolicy;
      repro?: boolean;
      monitorIntervalMs?: number;
      /** Where cells keep their machines' snapshots (CellSpec.snapshotDir; null: --no-snapshot). */
      snapshotDir?: string | null;
    },
  ) {
    this.pool = new CellPool(Math.max(1, Math.min(o.jobs, o.cells.length || 1)));
  }

  interrupt(): void {
    this.interrupted = true;
    this.pool.abortAll();
  }

  async run(): Promise<TestRunResult> {
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    const results = new Map<string, TestResult>();
    let done = 0;
    try {
      await Promise.all(
        this.o.cells.map(async (cell) => {
          let started = false;
          let cellResult: CellResult | null;
          try {
            cellResult = await this.pool.run(
              {
                ...testCellSpec(cell, this.o.dumps),
                monitorIntervalMs: this.o.monitorIntervalMs,
                snapshotDir: this.o.snapshotDir,
              },
              (phase) => {
                if (!started) {
                  started = true;
                  this.o.events?.started?.(cell.id);
                }
                this.o.events?.phase?.(cell.id, phase);
              },
            );
          } catch (e) {
            cellResult = threadFailure(cell, e);
          }
          if (cellResult === null || (this.interrupted && cellResult.failure?.message.startsWith('interrupted')))
            return;
          if (this.o.repro !== false && !this.interrupted && wantsRepro(cellResult)) {
            try {
              const again = await this.pool.run(reproSpec(testCellSpec(cell, undefined)), () => {});
              if (again !== null) cellResult.repro = reproReport(again);
            } catch {
              /* the repro is extra: its own failure does not change the test's */
            }
          }
          const result = judgeTest({
            cell: cellResult,
            file: cell.test.fileName,
            name: cell.test.name,
            scheduler: cell.scheduler?.name ?? null,
            registryChecks: cell.scheduler?.checks as ThresholdOverrides | undefined,
            testChecks: cell.test.options.checks,
            timeoutMs: cell.timeoutMs,
            payloadMustSucceed: cell.test.options.payload?.mustSucceed,
          });
          settleTestBundle(result, this.o.dumps);
          results.set(cell.id, result);
          done++;
          this.o.events?.finished?.(result, done, this.o.cells.length);
        }),
      );
    } finally {
      await this.pool.close();
    }
    return {
      schema: TEST_SCHEMA,
      version: TEST_SCHEMA_VERSION,
      tool: this.o.tool,
      startedAt,
      wallMs: performance.now() - t0,
      shard: this.o.shard,
      matrix: this.o.matrix,
      tests: this.o.cells.map((c) => results.get(c.id)).filter((r): r is TestResult => r !== undefined),
      interrupted: this.interrupted,
    };
  }
}
