// liveness: the sched_ext scheduler under test must still be attached when the workers stop —
// sched_ext state `enabled`, its process alive, no exit recorded — unless the test detached
// or replaced it on purpose. A failure says which way it went, from the scx_exit_info kind
// (enum scx_exit_kind as of Linux 6.12, kernel/sched/ext.c):
//   NONE 0, DONE 1, UNREG 64 (user space), UNREG_BPF 65, UNREG_KERN 66, SYSRQ 67,
//   ERROR 1024, ERROR_BPF 1025 (scx_bpf_error()), ERROR_STALL 1026 (watchdog).
// kind >= 1024 is a crash; below it the scheduler exited cleanly (but not on purpose); no
// exit info means it died for a reason the host could not read. Under EEVDF (no scheduler
// name) there is nothing to judge.

import type { SchedulerLiveness } from '../../test-api/record.js';
import { guestText } from './format.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { judged, Lines, skippedVerdict, type Judged } from './verdict.js';

export const SCX_EXIT_KINDS: Readonly<Record<number, string>> = Object.freeze({
  0: 'NONE',
  1: 'DONE',
  64: 'UNREG',
  65: 'UNREG_BPF',
  66: 'UNREG_KERN',
  67: 'SYSRQ',
  1024: 'ERROR',
  1025: 'ERROR_BPF',
  1026: 'ERROR_STALL',
});
/** Kinds from here on are errors (SCX_EXIT_ERROR). */
export const SCX_EXIT_ERROR = 1024;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `kind 1025 ERROR_BPF`, or `kind 7` for a kind the table does not name. */
const kindText = (k: number): string => (SCX_EXIT_KINDS[k] ? `kind ${k} ${SCX_EXIT_KINDS[k]}` : `kind ${k}`);

/** The exit's reason and message on one line (either may be empty). */
function exitText(e: Obj): string {
  const reason = typeof e.reason === 'string' ? guestText(e.reason, 120) : '';
  const message = typeof e.message === 'string' ? guestText(e.message, 300) : '';
  if (reason && message && reason !== message) return `${reason}: ${message}`;
  return reason || message || '(no message)';
}

export function liveness(livenessIn: SchedulerLiveness | unknown, t: Thresholds): Judged {
  if (!t.liveness.enabled) return { verdict: skippedVerdict('liveness', 'off (liveness.enabled = false)'), notes: [] };
  const lines = new Lines('liveness');
  if (!isObj(livenessIn)) {
    lines.fail(`no usable scheduler liveness record (${livenessIn === null ? 'null' : typeof livenessIn})`);
    return judged(lines, {});
  }
  const l = livenessIn;
  if (l.name === null) {
    lines.note('EEVDF (no sched_ext scheduler): nothing to judge');
    return judged(lines, { crashed: 0, exited: 0, unknown: 0 });
  }
  if (typeof l.name !== 'string') {
    lines.fail(`scheduler name is ${typeof l.name}, not a string`);
    return judged(lines, {});
  }
  const name = `scheduler ${guestText(l.name, 64)}`;
  if (l.detachedOnPurpose === true) {
    lines.note(`${name} was detached or replaced by the test on purpose`);
    return judged(lines, { crashed: 0, exited: 0, unknown: 0 });
  }
  const state = typeof l.stateAtEnd === 'string' ? guestText(l.stateAtEnd, 32) : '?';
  const alive = l.processAlive === true;
  const exit = l.exit;
  const figures = { crashed: 0, exited: 0, unknown: 0 };
  if (
    typeof l.detachedOnPurpose !== 'boolean' ||
    typeof l.processAlive !== 'boolean' ||
    typeof l.stateAtEnd !== 'string'
  ) {
    lines.fail(`${name}: unusable liveness record (detachedOnPurpose, processAlive or stateAtEnd missing)`);
    return judged(lines, figures);
  }
  if (exit === null || exit === undefined) {
    if (state === 'enabled' && alive) return judged(lines, figures);
    figures.unknown = 1;
    lines.fail(
      `${name} died for an unknown reason (state ${state || 'empty'}, process ${alive ? 'alive' : 'gone'}, no exit info)`,
    );
    return judged(lines, figures);
  }
  if (!isObj(exit) || typeof exit.kind !== 'number' || !Number.isInteger(exit.kind) || exit.kind < 0) {
    figures.unknown = 1;
    lines.fail(`${name} died for an unknown reason (state ${state || 'empty'}, unreadable exit info)`);
    return judged(lines, figures);
  }
  if (exit.kind >= SCX_EXIT_ERROR) {
    figures.crashed = 1;
    lines.fail(`${name} crashed (error exit, ${kindText(exit.kind)}): ${exitText(exit)}`);
  } else {
    figures.exited = 1;
    lines.fail(`${name} exited cleanly (${kindText(exit.kind)}): ${exitText(exit)}`);
  }
  return judged(lines, figures);
}
