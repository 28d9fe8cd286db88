// Work types as data (`work.spin()`, `work.sleepy({ runUs, sleepUs })`, ...): what each
// worker process of a cgroup does. The guest agent hands them to ktstr-worker
// (docs/worker-protocol.md) as its `work=` kind and parameters.

import type { WorkKind } from './record.js';

export interface WorkSpec {
  kind: WorkKind;
  /** ktstr-worker parameters (run_us, sleep_us, burst_ms, idle_ms), integers. */
  params: Record<string, number>;
}

function positive(name: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isSafeInteger(x) || x <= 0)
    throw new TypeError(`work: ${name} must be a positive integer (got ${String(v)})`);
  return x;
}

export const work = {
  /** Pure CPU: a fixed unit of arithmetic per iteration, never sleeps. */
  spin: (): WorkSpec => ({ kind: 'spin', params: {} }),
  /** A unit of work, then sched_yield(): heavy on the scheduler's yield path. */
  yieldHeavy: (): WorkSpec => ({ kind: 'yield', params: {} }),
  /** Duty cycle: run `runUs`, sleep `sleepUs` (defaults 500 / 1500 µs); measures wakeup latency. */
  sleepy: (o: { runUs?: number; sleepUs?: number } = {}): WorkSpec => ({
    kind: 'sleepy',
    params: { run_us: positive('runUs', o.runUs, 500), sleep_us: positive('sleepUs', o.sleepUs, 1500) },
  }),
  /** Spin `burstMs`, then idle `idleMs` (defaults 50 / 100 ms). */
  burst: (o: { burstMs?: number; idleMs?: number } = {}): WorkSpec => ({
    kind: 'burst',
    params: { burst_ms: positive('burstMs', o.burstMs, 50), idle_ms: positive('idleMs', o.idleMs, 100) },
  }),
  /** Wakeup pairs: consecutive workers of the cgroup bounce a token through pipes (needs an even count). */
  pipePingPong: (): WorkSpec => ({ kind: 'pingpong', params: {} }),
  /** fork + exec + wait, in a loop: task creation churn. */
  forkExec: (): WorkSpec => ({ kind: 'forkexec', params: {} }),
  /** Fan-out: the cgroup's first worker wakes all the others through one futex, round after round. */
  futexWake: (): WorkSpec => ({ kind: 'futex', params: {} }),
  /** Spin, short sleep and yield in turn. */
  mixed: (): WorkSpec => ({ kind: 'mixed', params: {} }),
};
