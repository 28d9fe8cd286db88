// How much of a runnable task's wait its CPU spent stolen: not run by the host at all. A guest's
// jiffies run on while its vCPU thread waits for a host CPU (under the emulated test host, half
// the time and more), so a wait measured in jiffies alone blames the scheduler for the host's
// load. Each sample records, per CPU, jiffies and rq->prev_steal_time; the steal during a wait
// is the steal now minus the steal at the last sample taken when the wait had begun. Bounded:
// the last HISTORY samples per CPU; for an older wait the oldest kept sample stands in, which
// counts less steal, never more (the wait is judged longer, not shorter).

/** Samples kept per CPU (a 100 ms interval: one minute). */
const HISTORY = 600;

class CpuRing {
  readonly jiffies = new Float64Array(HISTORY);
  readonly stealNs = new Float64Array(HISTORY);
  /** Slots written so far (the ring holds the last min(count, HISTORY)). */
  count = 0;
}

export class StealHistory {
  private readonly rings = new Map<number, CpuRing>();

  /** One sample of one CPU: jiffies then, and its steal so far (ns). */
  record(cpu: number, jiffies: number, stealNs: number): void {
    let ring = this.rings.get(cpu);
    if (ring === undefined) this.rings.set(cpu, (ring = new CpuRing()));
    const slot = ring.count % HISTORY;
    ring.jiffies[slot] = jiffies;
    ring.stealNs[slot] = stealNs;
    ring.count++;
  }

  /** ms of steal on `cpu` since jiffies `since`, up to `stealNowNs`; 0 without history. */
  stolenMsSince(cpu: number, since: number, stealNowNs: number): number {
    const ring = this.rings.get(cpu);
    if (ring === undefined || ring.count === 0) return 0;
    const kept = Math.min(ring.count, HISTORY);
    // newest first: the first sample at or before the wait's start, else the oldest kept
    let base = ring.stealNs[(ring.count - kept) % HISTORY];
    for (let i = 1; i <= kept; i++) {
      const slot = (ring.count - i) % HISTORY;
      if (ring.jiffies[slot] <= since) {
        base = ring.stealNs[slot];
        break;
      }
    }
    return Math.max(0, stealNowNs - base) / 1e6;
  }
}
