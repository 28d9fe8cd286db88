// stall: judged from the host monitor's samples, not from anything the guest reports -- so it
// holds even when the guest's userspace is frozen. A task on a CPU's sched_ext runnable list
// (runnable, not running) that waited longer than stall.maxRunnableMs fails it, once per task,
// the wait counted only while its vCPU ran (time the host did not run it, steal, is left out),
// with the task's pid, its CPU and how long it waited, from samples taken while the scheduler
// was enabled (not while it was being switched on or off). Without sched_ext samples (EEVDF, the
// monitor off) it is skipped with the reason.

import type { MonitorTimeline } from '../../cell/monitor-session.js';
import type { Thresholds } from '../../test-api/thresholds.js';
import { judged, Lines, skippedVerdict, type Judged } from './verdict.js';

interface Wait {
  pid: number;
  cpu: number;
  ms: number;
  /** Steal left out of ms: the host did not run the vCPU. */
  stolenMs: number;
  atMs: number;
}

/** Each task's longest runnable wait seen, longest first. */
export function longestWaits(timeline: MonitorTimeline): Wait[] {
  const byPid = new Map<number, Wait>();
  for (const s of timeline.samples) {
    // only while a scheduler is enabled: a sample taken as one enables or disables (the monitor
    // samples at each change of the state) sees runnable_at stamps the switch has not renewed yet
    if (s.scx !== null && s.scx !== 'enabled') continue;
    for (const c of s.cpus) {
      if (c.waitMs === null || c.waitPid === null) continue;
      const seen = byPid.get(c.waitPid);
      if (seen === undefined || c.waitMs > seen.ms)
        byPid.set(c.waitPid, { pid: c.waitPid, cpu: c.cpu, ms: c.waitMs, stolenMs: c.waitStolenMs ?? 0, atMs: s.t });
    }
  }
  return [...byPid.values()].sort((a, b) => b.ms - a.ms);
}

export function stall(timeline: MonitorTimeline | undefined, t: Thresholds): Judged {
  if (!t.stall.enabled) return { verdict: skippedVerdict('stall', 'off (stall.enabled = false)'), notes: [] };
  if (timeline === undefined || timeline.samples.length === 0) {
    return { verdict: skippedVerdict('stall', timeline?.error ?? 'no host monitor samples'), notes: [] };
  }
  if (!timeline.samples.some((s) => s.cpus.some((c) => c.waitMs !== null || c.scx > 0))) {
    return { verdict: skippedVerdict('stall', 'no sched_ext tasks in the host samples'), notes: [] };
  }
  const lines = new Lines('stall');
  const waits = longestWaits(timeline);
  for (const w of waits) {
    if (w.ms <= t.stall.maxRunnableMs) break;
    lines.fail(
      `pid ${w.pid} runnable on cpu ${w.cpu} for ${(w.ms / 1000).toFixed(2)} s without running (max ${(t.stall.maxRunnableMs / 1000).toFixed(2)} s; host monitor, ${(w.atMs / 1000).toFixed(1)} s into the run${w.stolenMs >= 5 ? `; ${(w.stolenMs / 1000).toFixed(2)} s more while the host did not run the vCPU, not counted` : ''})`,
    );
  }
  return judged(lines, { longestWaitMs: waits[0]?.ms ?? 0, samples: timeline.samples.length });
}
