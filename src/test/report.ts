// What `ktstr-wasm test` prints: one line per finished test, a block per failed test (the
// failed checks one line each, the merged thresholds, the workers involved, the body's stack,
// the scheduler's log tail, the console when the guest died), the counts line, and the
// EEVDF comparison. Guest text is made terminal-safe before it is printed.

import type { Painter } from '../sweep/report.js';
import { PLAIN, terminalSafe, oneLine, alignColumns } from '../sweep/report.js';
import type { WorkerReport } from '../test-api/record.js';
import type { TestResult } from './judge.js';
import { displayName } from './discover.js';
import { cpuRanges } from '../test-api/ops.js';
import { monitorLines } from '../cell/monitor-summary.js';
import { reproLines } from '../cell/repro.js';

export function label(r: TestResult): string {
  return `${r.file} › ${r.name} [${r.scheduler}/${r.kernel}/${r.topology}]`;
}

export function progressLine(r: TestResult, done: number, total: number, p: Painter = PLAIN): string {
  const word = r.status === 'pass' ? p.green('PASS') : r.status === 'skip' ? p.yellow('SKIP') : p.red('FAIL');
  const secs = (r.wallMs / 1000).toFixed(1).padStart(5);
  const width = String(total).length;
  const why =
    r.status === 'skip'
      ? p.dim(` — ${oneLine(r.skipReason ?? '')}`)
      : r.status === 'fail'
        ? p.dim(` — ${r.failure?.kind}: ${oneLine(r.failure?.message ?? '')}`)
        : '';
  return `${word} [${secs}s] (${String(done).padStart(width)}/${total}) ${terminalSafe(label(r))}${why}`;
}

const ms = (ns: number): string => (ns >= 1e9 ? `${(ns / 1e9).toFixed(2)} s` : `${(ns / 1e6).toFixed(1)} ms`);

/** The WorkerReport table: one row per worker. */
export function workerTable(workers: WorkerReport[]): string {
  const rows = [
    [
      'worker',
      'cgroup',
      'work',
      'iterations',
      'cpu time',
      'wall',
      'cpus',
      'migr',
      'vol/invol',
      'max gap',
      'wake p99',
      'error',
    ],
  ];
  for (const w of workers) {
    rows.push(
      [
        String(w.index),
        w.cgroup,
        w.work,
        String(w.iterations),
        ms(w.cpuTimeNs),
        ms(w.wallNs),
        cpuRanges(w.cpus.map((c) => c.cpu)) || '-',
        String(w.migrations),
        `${w.voluntarySwitches}/${w.involuntarySwitches}`,
        ms(w.maxGapNs),
        w.wakeLatencyNs === null ? '-' : `${(w.wakeLatencyNs.p99 / 1000).toFixed(0)} µs`,
        w.error === null ? '' : oneLine(w.error),
      ].map(terminalSafe),
    );
  }
  return alignColumns(rows, '    ');
}

/** Workers named in failure lines ("worker 7"), else all (up to `limit`). */
function involved(r: TestResult, limit = 24): WorkerReport[] {
  const all = r.runs.flatMap((run) => run.workers);
  const named = new Set<number>();
  for (const c of r.assert?.checks ?? [])
    for (const f of c.failures) for (const m of f.matchAll(/\bworkers? (\d+)/g)) named.add(Number(m[1]));
  const picked = named.size > 0 ? all.filter((w) => named.has(w.index)) : all;
  return picked.slice(0, limit);
}

function tail(text: string, lines: number): string {
  const all = text.split('\n');
  while (all.length > 0 && all[all.length - 1].trim() === '') all.pop();
  return all.slice(-lines).join('\n');
}

/** Stack lines with file URLs made into paths relative to the working directory. */
export function readableStack(stack: string): string {
  return stack.replace(/file:\/\/(\/[^\s):]+)/g, (url: string, path: string) => {
    try {
      return displayName(decodeURIComponent(path));
    } catch {
      return url;
    }
  });
}

export function failureBlock(r: TestResult, p: Painter = PLAIN): string {
  const out: string[] = [p.red(p.bold(`FAIL ${terminalSafe(label(r))}`))];
  out.push(`  ${r.failure?.kind ?? 'failed'}: ${terminalSafe(oneLine(r.failure?.message ?? ''))}`);
  out.push(`  scheduler: ${terminalSafe(r.schedulerStatus)}`);
  const failed = r.assert?.checks.filter((c) => !c.passed) ?? [];
  if (failed.length > 0) {
    out.push('  checks failed:');
    for (const c of failed) for (const f of c.failures) out.push(`    ${terminalSafe(oneLine(f))}`);
    const t = r.assert!.thresholds as unknown as Record<string, unknown>;
    out.push(`  thresholds: ${failed.map((c) => `${c.check} ${JSON.stringify(t[c.check] ?? {})}`).join('; ')}`);
  }
  for (const run of r.runs) {
    if (run.phases.length > 1)
      out.push(
        `  phases of ${terminalSafe(run.label)}: ${run.phases.map((ph) => `${ph.phase} ${terminalSafe(ph.label)} @${(ph.atMs / 1000).toFixed(2)}s`).join(', ')}`,
      );
  }
  const ws = involved(r);
  if (ws.length > 0) out.push('  workers:', workerTable(ws).replace(/\n$/, ''));
  if (r.error !== null)
    out.push(
      '  stack:',
      ...terminalSafe(readableStack(r.error.stack || r.error.message))
        .split('\n')
        .slice(0, 20)
        .map((l) => `    ${l}`),
    );
  if (r.logs.length > 0) out.push('  log:', ...r.logs.slice(-10).map((l) => `    ${terminalSafe(l)}`));
  if (r.monitor !== undefined) out.push('  monitor:', ...monitorLines(r.monitor).map((l) => `    ${terminalSafe(l)}`));
  if (r.schedulerLog.trim() !== '')
    out.push(
      '  scheduler output (tail):',
      ...tail(terminalSafe(r.schedulerLog), 15)
        .split('\n')
        .map((l) => `    ${l}`),
    );
  if (r.consoleTail.trim() !== '' && !['check', 'body'].includes(r.failure?.kind ?? '')) {
    out.push(
      '  console (tail):',
      ...tail(terminalSafe(r.consoleTail), 15)
        .split('\n')
        .map((l) => `    ${l}`),
    );
  }
  if (r.repro !== undefined) out.push(...reproLines(r.repro).map((l) => `  ${terminalSafe(l)}`));
  if (r.bundle !== undefined) out.push(`  bundle: ${terminalSafe(r.bundle)}`);
  if (r.bundleError !== undefined) out.push(p.red(`  bundle not written: ${terminalSafe(oneLine(r.bundleError))}`));
  return out.join('\n') + '\n';
}

export function countsLine(results: TestResult[], wallMs: number, p: Painter = PLAIN): string {
  const n = (s: string): number => results.filter((r) => r.status === s).length;
  const parts = [
    p.green(`${n('pass')} passed`),
    n('fail') > 0 ? p.red(`${n('fail')} failed`) : '0 failed',
    n('skip') > 0 ? p.yellow(`${n('skip')} skipped`) : '0 skipped',
  ];
  return `${results.length} test${results.length === 1 ? '' : 's'}: ${parts.join(', ')} (${(wallMs / 1000).toFixed(1)} s)\n`;
}

/** Per test: each scheduler's figures side by side with EEVDF's (--compare-eevdf). */
export function compareEevdf(results: TestResult[]): string {
  const byTest = new Map<string, TestResult[]>();
  for (const r of results) {
    const key = `${r.file} › ${r.name} [${r.kernel}/${r.topology}]`;
    byTest.set(key, [...(byTest.get(key) ?? []), r]);
  }
  const rows = [['test', 'scheduler', 'status', 'iterations', 'cpu time', 'max gap', 'wake p99']];
  for (const [key, rs] of byTest) {
    for (const r of rs.sort((a, b) =>
      a.scheduler === 'eevdf' ? -1 : b.scheduler === 'eevdf' ? 1 : a.scheduler.localeCompare(b.scheduler),
    )) {
      const ws = r.runs.flatMap((run) => run.workers);
      const p99 = ws.map((w) => w.wakeLatencyNs?.p99 ?? -1).filter((x) => x >= 0);
      rows.push(
        [
          key,
          r.scheduler,
          r.status,
          String(ws.reduce((a, w) => a + w.iterations, 0)),
          ms(ws.reduce((a, w) => a + w.cpuTimeNs, 0)),
          ms(Math.max(0, ...ws.map((w) => w.maxGapNs))),
          p99.length === 0 ? '-' : `${(Math.max(...p99) / 1000).toFixed(0)} µs`,
        ].map(terminalSafe),
      );
    }
  }
  return alignColumns(rows, '');
}
