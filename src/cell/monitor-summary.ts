// A monitor timeline in a few figures, for results and failure blocks: how many samples, the
// worst imbalance of nr_running across CPUs, the deepest local DSQ, the longest runnable wait
// (task and CPU), the sched_ext exit the host read from guest memory, the topology check, and
// what sampling cost. Plain data; also printed as the block's `monitor:` lines.

import type { MonitorTimeline } from './monitor-session.js';
import type { ScxExitInfo } from '../monitor/sched-ext-state.js';

export interface MonitorSummary {
  samples: number;
  intervalMs: number;
  /** max(nr_running) / max(1, min(nr_running)) across CPUs, worst sample. */
  maxImbalance: number;
  maxLocalDsqDepth: number;
  longestWait: { pid: number; cpu: number; ms: number } | null;
  exit: ScxExitInfo | null;
  topologyProblems: string[];
  sampleMicros: { mean: number; max: number };
  cpuPercent: number;
  error: string | null;
  /** Whether a hardware watchpoint on sched_ext's enable state sampled each change of it. */
  stateWatched: boolean;
}

export function summarizeTimeline(t: MonitorTimeline): MonitorSummary {
  let maxImbalance = 0;
  let maxDsq = 0;
  let longest: MonitorSummary['longestWait'] = null;
  for (const s of t.samples) {
    const nr = s.cpus.map((c) => c.nr);
    if (nr.length > 0) maxImbalance = Math.max(maxImbalance, Math.max(...nr) / Math.max(1, Math.min(...nr)));
    for (const c of s.cpus) {
      maxDsq = Math.max(maxDsq, c.dsq);
      if (c.waitMs !== null && c.waitPid !== null && (longest === null || c.waitMs > longest.ms))
        longest = { pid: c.waitPid, cpu: c.cpu, ms: c.waitMs };
    }
  }
  return {
    samples: t.samples.length + t.dropped,
    intervalMs: t.intervalMs,
    maxImbalance,
    maxLocalDsqDepth: maxDsq,
    longestWait: longest,
    exit: t.exit,
    topologyProblems: t.topology?.problems ?? [],
    sampleMicros: t.sampleMicros,
    cpuPercent: t.cpuPercent,
    error: t.error,
    stateWatched: t.stateWatched === true,
  };
}

/** The innermost BPF program in an exit backtrace (the callback that raised it), or null. */
export function failingCallback(backtrace: readonly string[]): string | null {
  const frame = backtrace.find((f) => f.endsWith(' [bpf]'));
  return frame === undefined ? null : frame.replace(/\+0x[0-9a-f]+ \[bpf\]$/, '');
}

/** The summary as indented lines for a failure block. */
export function monitorLines(m: MonitorSummary): string[] {
  const out = [
    `samples=${m.samples} (every ${m.intervalMs} ms) max_imbalance=${m.maxImbalance.toFixed(1)} max_dsq_depth=${m.maxLocalDsqDepth}` +
      ` longest_runnable_wait=${m.longestWait === null ? '-' : `${(m.longestWait.ms / 1000).toFixed(2)}s (pid ${m.longestWait.pid}, cpu ${m.longestWait.cpu})`}` +
      ` cost=${m.sampleMicros.mean.toFixed(0)}us/sample (${m.cpuPercent.toFixed(2)}% of a CPU)`,
  ];
  if (m.exit !== null) {
    out.push(
      `sched_ext exit (guest memory): kind ${m.exit.kind}${m.exit.kindName ? ` ${m.exit.kindName}` : ''}, code ${m.exit.exitCode}: ${m.exit.reason ?? '(no reason)'}${m.exit.message ? ` — ${m.exit.message}` : ''}`,
    );
    const cb = m.exit.kindName === 'ERROR_STALL' ? null : failingCallback(m.exit.backtrace);
    if (cb !== null)
      out.push(`failing callback: ${cb} (from the exit's backtrace: ${m.exit.backtrace.slice(0, 6).join(' <- ')})`);
    else if (m.exit.backtrace.length > 0) out.push(`exit backtrace: ${m.exit.backtrace.slice(0, 6).join(' <- ')}`);
    if (m.exit.dump)
      out.push(
        'sched_ext dump (head):',
        ...m.exit.dump
          .split('\n')
          .slice(0, 12)
          .map((l) => `  ${l}`),
      );
  }
  for (const p of m.topologyProblems.slice(0, 5)) out.push(`topology: ${p}`);
  if (m.error !== null) out.push(`monitor: ${m.error}`);
  return out;
}
