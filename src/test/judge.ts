// A test cell's outcome: the cell engine's result (guest, setup, attach failures) and the
// test's facts judged by the checks, run by run, with thresholds merged in three layers
// (defaults <- the scheduler's registry entry <- the test's options <- the run's own).
// Pure: the reporters print a TestResult, the JSON file holds it.

import type { CellResult, FailureKind } from '../cell/result.js';
import { exitMessage } from '../cell/verdict.js';
import type { CheckOverrides } from '../test-api/options.js';
import {
  judgeRun,
  mergeResults,
  mergeThresholds,
  stall,
  type AssertResult,
  type ThresholdOverrides,
} from './checks/index.js';
import { summarizeTimeline, type MonitorSummary } from '../cell/monitor-summary.js';
import type { ReproReport } from '../cell/repro.js';
import type { RunRecord, SchedulerLiveness } from '../test-api/record.js';
import type { WatchSummary } from '../test-api/capture.js';

export type TestStatus = 'pass' | 'fail' | 'skip';
/** Why a test failed: a check, the body (threw), its timeout, or the cell engine's kinds. */
export type TestFailureKind = 'check' | 'body' | 'timeout' | 'payload' | FailureKind;

export interface TestResult {
  /** `test/<file>/<name>/<scheduler>/<kernel>/<topology>`. */
  id: string;
  file: string;
  name: string;
  /** Registry name, or `eevdf`. */
  scheduler: string;
  kernel: string;
  topology: string;
  status: TestStatus;
  failure?: { kind: TestFailureKind; message: string };
  skipReason?: string;
  /** Every run's checks, merged (null when the body did not get that far). */
  assert: AssertResult | null;
  runs: RunRecord[];
  /** The host monitor's summary of the run (absent when the monitor was off). */
  monitor?: MonitorSummary;
  /** The auto-repro run, when the scheduler crashed. */
  repro?: ReproReport;
  /** The body's hardware watches (ctx.watch) and their first hits. */
  watches?: WatchSummary[];
  /** The body's exception, when it threw. */
  error: { message: string; stack: string } | null;
  logs: string[];
  schedulerStatus: string;
  /** The tail of the scheduler's output (the whole when short). */
  schedulerLog: string;
  consoleTail: string;
  phases: CellResult['phases'];
  /** How the test's VM started (CellResult.start), and where a restored one began (CellResult.restoredAt). */
  start?: CellResult['start'];
  restoredAt?: CellResult['restoredAt'];
  wallMs: number;
  /** The host process's resident set size after the test's VM was torn down, bytes (null: unknown). */
  hostRssBytes: number | null;
  /** The failure bundle's directory (src/cell/failure-bundle.ts), when one was kept. */
  bundle?: string;
  /** Why the bundle asked for could not be written. */
  bundleError?: string;
}

/** `true`/`false` as `{ enabled }` (the API's shorthand). */
export function toOverrides(c: CheckOverrides | null | undefined): ThresholdOverrides | undefined {
  if (c === null || c === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) out[k] = typeof v === 'boolean' ? { enabled: v } : v;
  return out as ThresholdOverrides;
}

const SCHEDULER_LOG_TAIL = 8000;

/** `... (kind 1026)` in the scheduler's EXIT line. */
function exitInfo(output: string): SchedulerLiveness['exit'] {
  const line = exitMessage(output);
  if (line === undefined) return null;
  const kind = /\(kind (\d+)\)/.exec(line);
  if (kind === null) return null;
  return { kind: Number(kind[1]), reason: line.replace(/^EXIT:\s*/, ''), message: line };
}

/** The exit the host read from guest memory (scx_exit_info), when the monitor saw one. */
function exitFromMonitor(c: CellResult): SchedulerLiveness['exit'] {
  const e = c.monitor?.exit;
  return e == null ? null : { kind: e.kind, reason: e.reason ?? '', message: e.message ?? '' };
}

export interface JudgeInput {
  cell: CellResult;
  file: string;
  name: string;
  /** null under EEVDF. */
  scheduler: string | null;
  /** The scheduler's registry overrides, then the test's options. */
  registryChecks?: ThresholdOverrides;
  testChecks?: CheckOverrides;
  timeoutMs: number;
  /** The test's payload.mustSucceed (default true). */
  payloadMustSucceed?: boolean;
}

export function judgeTest(i: JudgeInput): TestResult {
  const c = i.cell;
  const log = c.schedulerLog;
  const base: TestResult = {
    id: c.id,
    file: i.file,
    name: i.name,
    scheduler: i.scheduler ?? 'eevdf',
    kernel: c.kernel,
    topology: c.topology,
    status: 'fail',
    assert: null,
    runs: c.test?.runs.map((r) => r.record) ?? [],
    error: c.test?.error ?? null,
    logs: c.test?.logs ?? [],
    schedulerStatus: c.schedulerStatus,
    schedulerLog:
      log.length > SCHEDULER_LOG_TAIL
        ? `[ktstr: ${log.length - SCHEDULER_LOG_TAIL} bytes before]\n${log.slice(-SCHEDULER_LOG_TAIL)}`
        : log,
    consoleTail: c.consoleTail,
    phases: c.phases,
    ...(c.start === undefined ? {} : { start: c.start }),
    ...(c.restoredAt === undefined ? {} : { restoredAt: c.restoredAt }),
    wallMs: c.wallMs,
    hostRssBytes: c.hostRssBytes,
    ...(c.bundle === undefined ? {} : { bundle: c.bundle }),
    ...(c.bundleError === undefined ? {} : { bundleError: c.bundleError }),
  };
  if (c.monitor !== undefined) base.monitor = summarizeTimeline(c.monitor);
  if (c.repro !== undefined) base.repro = c.repro;
  if (c.watches !== undefined) base.watches = c.watches;
  // the host monitor's stall check holds whatever became of the guest (a frozen or dead one too)
  let stallJudged: ReturnType<typeof stall> | null = null;
  try {
    stallJudged = stall(c.monitor, mergeThresholds(i.registryChecks, toOverrides(i.testChecks)));
  } catch {
    /* bad thresholds: reported below */
  }
  const stallFailures = stallJudged?.verdict.passed === false ? stallJudged.verdict.failures : [];
  if (c.failure !== undefined) {
    if (stallFailures.length > 0)
      base.assert = {
        passed: false,
        checks: [stallJudged!.verdict],
        notes: stallJudged!.notes,
        thresholds: mergeThresholds(i.registryChecks, toOverrides(i.testChecks)),
      };
    const hang = c.failure.kind === 'guest' && /^guest hang/.test(c.failure.message);
    base.failure = hang
      ? {
          kind: 'timeout',
          message: `the test did not finish within its timeout (${(i.timeoutMs / 1000).toFixed(0)} s); its VM was ended`,
        }
      : { kind: c.failure.kind, message: c.failure.message };
    return base;
  }
  const facts = c.test;
  if (facts === undefined) {
    base.failure = { kind: 'guest', message: 'the test reported nothing' };
    return base;
  }
  let thresholdsFor: (run: CheckOverrides | null) => ReturnType<typeof mergeThresholds>;
  try {
    const fixed = [i.registryChecks, toOverrides(i.testChecks)];
    mergeThresholds(...fixed);
    thresholdsFor = (run) => mergeThresholds(...fixed, toOverrides(run));
  } catch (e) {
    base.failure = { kind: 'setup', message: `bad check thresholds: ${(e as Error).message}` };
    return base;
  }
  const alive = facts.schedulerAlive ?? false;
  const stateAtEnd = facts.stateAtEnd ?? '';
  const liveness: SchedulerLiveness = {
    name: i.scheduler,
    stateAtEnd,
    processAlive: alive,
    // the EXIT line the scheduler prints when the agent stops it after the body is no kick-out
    exit: alive && stateAtEnd === 'enabled' ? null : (exitFromMonitor(c) ?? exitInfo(log)),
    detachedOnPurpose: facts.detachedOnPurpose ?? false,
  };
  const results: AssertResult[] = [];
  for (const run of facts.runs) {
    try {
      results.push(judgeRun(run.record, liveness, thresholdsFor(run.checks)));
    } catch (e) {
      base.failure = { kind: 'setup', message: `${run.record.label}: bad check thresholds: ${(e as Error).message}` };
      return base;
    }
  }
  base.assert = results.length === 0 ? null : mergeResults(results);
  if (stallJudged !== null) {
    if (base.assert === null) {
      if (!stallJudged.verdict.passed)
        base.assert = {
          passed: false,
          checks: [stallJudged.verdict],
          notes: stallJudged.notes,
          thresholds: thresholdsFor(null),
        };
    } else
      base.assert = {
        ...base.assert,
        passed: base.assert.passed && stallJudged.verdict.passed,
        checks: [...base.assert.checks, stallJudged.verdict],
        notes: [...base.assert.notes, ...stallJudged.notes],
      };
  }
  if (facts.error !== null) {
    base.failure = { kind: 'body', message: facts.error.message.split('\n')[0] };
    return base;
  }
  if (i.payloadMustSucceed !== false) {
    for (const run of facts.runs) {
      const p = run.record.payload;
      if (p === null) continue;
      const bad = p.ended === 'failed' || (p.ended === 'exit' && (p.exitCode !== 0 || p.signal !== null));
      if (bad) {
        const last = p.output.trim().split('\n').slice(-1)[0] ?? '';
        base.failure = {
          kind: 'payload',
          message: `${run.record.label}: payload ${p.cmd[0]} ${p.ended === 'failed' ? 'could not start' : p.signal !== null ? `was killed by ${p.signal}` : `exited ${p.exitCode}`}${last ? `: ${last}` : ''}`,
        };
        return base;
      }
    }
  }
  if (facts.skipped !== null) {
    base.status = 'skip';
    base.skipReason = facts.skipped;
    return base;
  }
  if (base.assert !== null && !base.assert.passed) {
    const first = base.assert.checks.find((k) => !k.passed);
    base.failure = { kind: 'check', message: first?.failures[0] ?? `${first?.check ?? 'a check'} failed` };
    return base;
  }
  base.status = 'pass';
  return base;
}
