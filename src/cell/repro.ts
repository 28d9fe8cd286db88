// Auto-repro: when a scheduler was kicked out with an error (scx_bpf_error, the watchdog, any
// SCX_EXIT_ERROR* kind), the runner reruns the failing cell once with the host monitor probing
// the crash path closely -- every 20 ms, each struct_ops callback's run count every sample --
// and reports what led up to the exit: the failing callback (the BPF program in the exit's
// saved backtrace, or for a stall the dispatch callback that kept running while a task
// waited), the exit as read from guest memory, and the samples just before it. All of it is
// read from guest memory by the host: nothing is injected into the guest.

import type { ScxExitInfo } from '../monitor/sched-ext-state.js';
import type { MonitorSample } from './monitor-session.js';
import { failingCallback } from './monitor-summary.js';
import type { CellResult } from './result.js';
import type { CellSpec } from './run-cell.js';

export const REPRO_INTERVAL_MS = 20;
const SEQUENCE_SAMPLES = 8;
const SCX_EXIT_ERROR = 1024;

export interface ReproReport {
  /** The repro cell's id (the original's, marked as a repro). */
  id: string;
  /** The repro run ended the same way (a scheduler error exit). */
  reproduced: boolean;
  failingCallback: string | null;
  /** How the callback was found, in words. */
  how: string;
  exit: ScxExitInfo | null;
  /** The samples before the exit, one line each. */
  sequence: string[];
  failure: CellResult['failure'] | null;
  wallMs: number;
}

const errorExit = (r: CellResult): boolean =>
  (r.monitor?.exit?.kind ?? 0) >= SCX_EXIT_ERROR ||
  ((r.failure?.kind === 'crash' || r.failure?.kind === 'dispatch') && /\(kind (10\d\d)\)/.test(r.exitMessage ?? ''));

/** Whether a cell's scheduler crashed (and the cell is worth a repro run). */
export function wantsRepro(r: CellResult): boolean {
  return !r.passed && errorExit(r);
}

/** The same cell, marked as a repro, with the monitor probing closely and no failure bundle of its own. */
export function reproSpec(spec: CellSpec): CellSpec {
  return {
    ...spec,
    id: `${spec.id} (repro)`,
    monitorIntervalMs: REPRO_INTERVAL_MS,
    monitorProgramEvery: 1,
    bundleDir: undefined,
  };
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)}s`;

/** The struct_ops run-count deltas between two samples, busiest first. */
function deltas(prev: MonitorSample | undefined, cur: MonitorSample): [string, number][] {
  if (prev?.progs === undefined || cur.progs === undefined) return [];
  return Object.entries(cur.progs)
    .map(([name, [cnt]]): [string, number] => [name, cnt - (prev.progs![name]?.[0] ?? 0)])
    .filter(([, d]) => d > 0)
    .sort((a, b) => b[1] - a[1]);
}

function sampleLine(prev: MonitorSample | undefined, s: MonitorSample): string {
  const d = deltas(prev, s);
  const wait = s.cpus.filter((c) => c.waitMs !== null).sort((a, b) => b.waitMs! - a.waitMs!)[0];
  return (
    `+${secs(s.t)} ${s.scx ?? '-'}  ${
      d.length === 0
        ? 'no callback ran'
        : d
            .slice(0, 5)
            .map(([n, c]) => `${n} +${c}`)
            .join(', ')
    }` +
    `  ${wait === undefined ? 'no task waiting' : `longest wait: pid ${wait.waitPid} on cpu ${wait.cpu} ${secs(wait.waitMs!)}`}`
  );
}

export function reproReport(repro: CellResult): ReproReport {
  const samples = repro.monitor?.samples ?? [];
  const exit = repro.monitor?.exit ?? null;
  // the crash: the first sample after which sched_ext is no longer enabled
  let end = samples.findIndex((s, i) => i > 0 && samples[i - 1].scx === 'enabled' && s.scx !== 'enabled');
  if (end < 0) end = samples.length - 1;
  const from = Math.max(0, end - SEQUENCE_SAMPLES);
  const sequence = samples.slice(from, end + 1).map((s, i) => sampleLine(samples[from + i - 1], s));
  // the backtrace names the culprit when BPF code raised the error; a watchdog stall's stack is
  // only the tick or the watchdog that noticed it (a BPF frame there is a bystander)
  // (the exit info read from guest memory; else the kind on the scheduler's EXIT line, when no
  // sample fell in the short life of the kernel's copy)
  const stalled = exit !== null ? exit.kindName === 'ERROR_STALL' : /\(kind 1026\)/.test(repro.exitMessage ?? '');
  let callback = exit === null || stalled ? null : failingCallback(exit.backtrace);
  let how = callback === null ? '' : 'the innermost BPF program in the backtrace the kernel saved with the exit';
  if (callback === null && stalled) {
    // a stall: which callback kept running while a task waited -- the one that should have dispatched it
    const before = samples.slice(from, end + 1);
    const ran = new Map<string, number>();
    for (let i = 1; i < before.length; i++)
      for (const [n, d] of deltas(before[i - 1], before[i])) ran.set(n, (ran.get(n) ?? 0) + d);
    // the scheduler's dispatch callback (it decides what runs), whether or not it ran in the window
    const known = [
      ...(repro.monitor?.programs ?? []),
      ...Object.keys([...samples.slice(0, end + 1)].reverse().find((s) => s.progs !== undefined)?.progs ?? {}),
    ];
    const dispatch =
      known.find((n) => /dispatch$/.test(n)) ?? [...ran.entries()].sort((x, y) => y[1] - x[1])[0]?.[0] ?? null;
    const wait = before
      .flatMap((s) => s.cpus)
      .filter((c) => c.waitMs !== null)
      .sort((a, b) => b.waitMs! - a.waitMs!)[0];
    if (dispatch !== null) {
      callback = dispatch;
      how =
        `it ran ${ran.get(dispatch) ?? 0} times in the ${secs((before.at(-1)?.t ?? 0) - (before[0]?.t ?? 0))} before the watchdog` +
        `${wait === undefined ? '' : ` while pid ${wait.waitPid} waited ${secs(wait.waitMs!)} on cpu ${wait.cpu}`} and never dispatched it`;
    }
  }
  return {
    id: repro.id,
    reproduced: errorExit(repro),
    failingCallback: callback,
    how: how || 'not found (no BPF frame in the backtrace, no stall)',
    exit,
    sequence,
    failure: repro.failure ?? null,
    wallMs: repro.wallMs,
  };
}

/** The repro section of a failure block. */
export function reproLines(r: ReproReport): string[] {
  const out = [
    `auto-repro (${r.id}, the monitor every ${REPRO_INTERVAL_MS} ms, ${secs(r.wallMs)}): ${r.reproduced ? 'reproduced' : `NOT reproduced${r.failure ? ` (${r.failure.kind}: ${r.failure.message})` : ''}`}`,
  ];
  if (r.failingCallback !== null) out.push(`failing callback: ${r.failingCallback} — ${r.how}`);
  if (r.exit !== null)
    out.push(
      `exit: kind ${r.exit.kind}${r.exit.kindName ? ` ${r.exit.kindName}` : ''}: ${r.exit.reason ?? ''}${r.exit.message ? ` — ${r.exit.message}` : ''}`,
    );
  if (r.exit !== null && r.exit.backtrace.length > 0)
    out.push(`backtrace: ${r.exit.backtrace.slice(0, 8).join(' <- ')}`);
  if (r.sequence.length > 0) out.push('before the exit:', ...r.sequence.map((l) => `  ${l}`));
  return out;
}
