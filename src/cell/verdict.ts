// Pass or fail for one cell, from what was observed: the agent's facts (or their absence),
// how the VM ended, and the host's own reads. Pure: every rule of the sweep's failure kinds
// lives here and is unit-tested on plain data (test/cell/verdict.test.ts).
//
// Order of judgement: the guest (no facts: panic, triple fault, hang, early end) -> setup ->
// verify (a load log in the output) -> attach -> dispatch / crash (during the probe) -> stop.

import type { AgentFacts } from '../guest/plan.js';
import type { CellFailure, VerifierSummary } from './result.js';

export const LOAD_LOG_BEGIN = '-- BEGIN PROG LOAD LOG --';
export const LOAD_LOG_END = '-- END PROG LOAD LOG --';

export interface Observation {
  facts: AgentFacts | null;
  /** How the VM ended (bootVm's reason and detail). */
  vmEnd: { reason: string; detail: string };
  /** An agent-error message, when the agent itself failed. */
  agentError: string | null;
  /** The panic line or other one-line summary of the console, when the guest died. */
  consoleLine: string | null;
}

export interface Verdict {
  passed: boolean;
  failure?: CellFailure;
  schedulerStatus: string;
}

/** The verifier log libbpf printed between the markers (the last one, when several). */
export function loadLog(output: string): string | null {
  const end = output.lastIndexOf(LOAD_LOG_END);
  if (end < 0) {
    const begin = output.lastIndexOf(LOAD_LOG_BEGIN);
    return begin < 0 ? null : output.slice(begin + LOAD_LOG_BEGIN.length).replace(/^\r?\n/, '');
  }
  const begin = output.lastIndexOf(LOAD_LOG_BEGIN, end);
  if (begin < 0) return null;
  return output.slice(begin + LOAD_LOG_BEGIN.length, end).replace(/^\r?\n/, '');
}

/** The sched_ext watchdog's exit (SCX_EXIT_ERROR_STALL, kind 1026). */
const STALL_RE = /runnable task stall|\(kind 1026\)/;

const PROCESSED_RE = /^processed (\d+) insns(?: \(limit (\d+)\))?(.*)$/m;

export function verifierSummary(log: string): VerifierSummary | undefined {
  const m = PROCESSED_RE.exec(log);
  if (!m) return undefined;
  const field = (name: string): number | null => {
    const f = new RegExp(`\\b${name} (\\d+)\\b`).exec(m[3]);
    return f ? Number(f[1]) : null;
  };
  return {
    processedInsns: Number(m[1]),
    insnLimit: m[2] === undefined ? null : Number(m[2]),
    maxStatesPerInsn: field('max_states_per_insn'),
    totalStates: field('total_states'),
    peakStates: field('peak_states'),
    markRead: field('mark_read'),
  };
}

/** The verifier's reason: the last line before the `processed` summary that is not an instruction or state dump. */
export function verifierMessage(log: string): string {
  const lines = log.split(/\r?\n/);
  let end = lines.findIndex((l) => PROCESSED_RE.test(l));
  if (end < 0) end = lines.length;
  for (let i = end - 1; i >= 0; i--) {
    const l = lines[i].trim();
    if (l === '' || /^\d+: /.test(l) || l.startsWith(';') || /^(from|mark_precise|last_idx|regs=|\.\.\.)/.test(l))
      continue;
    return l;
  }
  return 'the verifier rejected the program (no message in the log)';
}

/** The scheduler's `EXIT: ...` line (its last), if it printed one. */
export function exitMessage(output: string): string | undefined {
  const all = [...output.matchAll(/^EXIT: .*$/gm)];
  return all.length === 0 ? undefined : all[all.length - 1][0].trim();
}

function describeEnd(end: { code: number | null; signal: string | null } | null): string {
  if (end === null) return 'still running';
  return end.signal !== null ? `killed by ${end.signal}` : `exit status ${end.code}`;
}

/**
 * The judgement up to attach (guest, setup, verify, attach), shared by sweep and test cells:
 * a failed Verdict, or the attached scheduler's status line. `eevdf`: no scheduler was asked
 * for, so only the guest and setup can fail.
 */
export function judgeUntilAttach(o: Observation, eevdf = false, workload = 'the probe'): Verdict | { status: string } {
  const f = o.facts;
  if (f === null) {
    const how =
      o.agentError !== null
        ? `the guest agent failed: ${o.agentError.split('\n')[0]}`
        : guestEnd(o.vmEnd.reason, o.vmEnd.detail, o.consoleLine);
    return {
      passed: false,
      failure: { kind: o.agentError !== null ? 'setup' : 'guest', message: how },
      schedulerStatus: 'unknown — the guest ended before the agent reported',
    };
  }
  if (f.setupError !== null)
    return { passed: false, failure: { kind: 'setup', message: f.setupError }, schedulerStatus: 'NOT STARTED' };
  if (eevdf) return { status: 'no sched_ext scheduler (EEVDF)' };
  const exit = exitMessage(f.output);
  if (f.attachMs === null) {
    const log = loadLog(f.output);
    const ended = f.endedBeforeAttach;
    if (log !== null) {
      return {
        passed: false,
        failure: { kind: 'verify', message: verifierMessage(log) },
        schedulerStatus: `NOT ATTACHED — scheduler process exited during BPF load (${describeEnd(ended)})`,
      };
    }
    if (exit !== undefined && STALL_RE.test(exit)) {
      // the watchdog ended it: it was enabled, but nothing ran (the agent too was starved, so it
      // never read "enabled")
      return {
        passed: false,
        failure: { kind: 'dispatch', message: exit },
        schedulerStatus: 'attached, then ENDED by the sched_ext watchdog before the agent could run',
      };
    }
    if (ended !== null) {
      return {
        passed: false,
        failure: {
          kind: 'attach',
          message: `the scheduler ended before attaching (${describeEnd(ended)})${exit ? `: ${exit}` : ''}`,
        },
        schedulerStatus: `NOT ATTACHED — scheduler process ended (${describeEnd(ended)})`,
      };
    }
    return {
      passed: false,
      failure: {
        kind: 'attach',
        message: `sched_ext state stayed "${f.stateAtAttach || 'unreadable'}" within the attach window`,
      },
      schedulerStatus: 'NOT ATTACHED — never enabled',
    };
  }
  if (f.stateAtAttach !== 'enabled') {
    // enable_seq says it attached, but it was gone before the agent could look
    const text = exit ?? `the scheduler ended right after attaching (${describeEnd(f.endedBeforeAttach)})`;
    return {
      passed: false,
      failure: { kind: STALL_RE.test(text) ? 'dispatch' : 'crash', message: text },
      schedulerStatus: `attached, then ENDED before ${workload} could start`,
    };
  }
  return { status: `attached (state enabled, ops ${f.ops || '?'})` };
}

export function judgeCell(o: Observation): Verdict {
  const early = judgeUntilAttach(o);
  if ('passed' in early) return early;
  const f = o.facts!;
  const exit = exitMessage(f.output);
  const status = early.status;
  const probe = f.probe;
  if (probe === null)
    return {
      passed: false,
      failure: { kind: 'dispatch', message: 'the dispatch probe did not run' },
      schedulerStatus: status,
    };
  if (probe.stateAfter !== 'enabled' || !probe.schedulerAlive) {
    const text =
      exit ?? `state "${probe.stateAfter}" after the probe, scheduler ${probe.schedulerAlive ? 'alive' : 'gone'}`;
    const kind = STALL_RE.test(text) ? 'dispatch' : 'crash';
    return {
      passed: false,
      failure: { kind, message: text },
      schedulerStatus: `${status}, then ENDED during the probe`,
    };
  }
  const idle = probe.workers.filter((w) => w.iterations <= 0);
  if (probe.workers.length === 0 || idle.length > 0) {
    const which =
      probe.workers.length === 0
        ? 'no probe worker started'
        : `no forward progress on CPU ${idle.map((w) => w.cpu).join(', ')} in ${Math.round(probe.ms)} ms`;
    return { passed: false, failure: { kind: 'dispatch', message: which }, schedulerStatus: status };
  }
  const stop = f.stop;
  if (stop === null)
    return {
      passed: false,
      failure: { kind: 'crash', message: 'the scheduler was not stopped' },
      schedulerStatus: status,
    };
  if (stop.timedOut)
    return {
      passed: false,
      failure: { kind: 'crash', message: 'the scheduler did not exit within the stop window after SIGINT' },
      schedulerStatus: status,
    };
  if (stop.stateAfter !== 'disabled')
    return {
      passed: false,
      failure: { kind: 'crash', message: `state "${stop.stateAfter}" after the scheduler exited (not unregistered)` },
      schedulerStatus: status,
    };
  return {
    passed: true,
    schedulerStatus: `${status}; dispatched on ${probe.workers.length} CPUs; unregistered on SIGINT (${describeEnd(stop.end)})`,
  };
}

function guestEnd(reason: string, detail: string, consoleLine: string | null): string {
  switch (reason) {
    case 'panic':
      return `guest kernel panic: ${consoleLine ?? detail}`;
    case 'triple-fault':
      return `guest triple fault: ${detail}`;
    case 'timeout':
      return `guest hang: ${detail}${consoleLine ? ` (console: ${consoleLine})` : ''}`;
    case 'stopped':
      return `stopped: ${detail}`;
    default:
      return `the guest ended (${reason}: ${detail}) before the agent reported${consoleLine ? ` (console: ${consoleLine})` : ''}`;
  }
}
