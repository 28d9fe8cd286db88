// The host-side monitor of one running cell: from the agent's hello (the guest kernel is up)
// until the VM ends, it samples every CPU's runqueue and sched_ext's state out of guest RAM at
// a fixed interval (the WASM core; nothing runs in the guest for it), reads the sched-domain
// hierarchy once and checks it against the declared topology, and keeps the last sched_ext
// exit info it saw. The result is a compact JSON timeline for the cell's result, the test
// checks (`stall`) and failure blocks.

import type { KernelImage } from '../monitor/kernel-image.js';
import { GuestKernel } from '../monitor/guest-kernel.js';
import { RunqueueSampler } from '../monitor/runqueues.js';
import { readJiffies, readScxState, type ScxExitInfo } from '../monitor/sched-ext-state.js';
import { checkSchedDomains, readSchedDomains, type CpuDomains, type CpuPlace, type DomainCheck } from '../monitor/sched-domains.js';
import { nodeIntrospector } from '../monitor/wasm-file.js';
import type { LiveVm } from '../vmm/index.js';
import { native } from '../kvm/native.js';

const threadCpuMicros = (): number => Number(native().threadCpuTimeNs()) / 1000;

export const DEFAULT_MONITOR_INTERVAL_MS = 100;
/** Samples kept per cell (a 100 ms interval: 10 minutes); later ones are counted, not kept. */
const MAX_SAMPLES = 6000;

/** One CPU in one sample (short keys: a long test has many). */
export interface CpuTick {
  cpu: number;
  /** rq->nr_running, cfs and sched_ext parts. */
  nr: number;
  cfs: number;
  scx: number;
  /** Local DSQ depth. */
  dsq: number;
  /** rq clock, ms. */
  clockMs: number;
  /** The running task (pid 0: idle). */
  pid: number | null;
  comm: string | null;
  /** Tasks waiting on the sched_ext runnable list, and the longest wait (ms) with its pid. */
  runnable: number;
  waitMs: number | null;
  waitPid: number | null;
}

export interface MonitorSample {
  /** ms since the monitor started. */
  t: number;
  /** sched_ext state (enabled/disabled/...), null without sched_ext. */
  scx: string | null;
  ops: string | null;
  cpus: CpuTick[];
}

export interface MonitorTimeline {
  intervalMs: number;
  hz: number | null;
  samples: MonitorSample[];
  /** Samples taken beyond MAX_SAMPLES (not kept). */
  dropped: number;
  /** Each CPU's sched domains as read after boot, and their check against the declared topology. */
  domains: CpuDomains[] | null;
  topology: DomainCheck | null;
  /** The last sched_ext exit info seen (the kernel may free it once the scheduler is gone). */
  exit: ScxExitInfo | null;
  watchdogTimeoutMs: number | null;
  /** Host CPU time of one sample (the cell thread's, so vCPU preemption does not count), µs: mean and max. */
  sampleMicros: { mean: number; max: number };
  /** The monitor's CPU time over its run as a share of one host CPU, percent. */
  cpuPercent: number;
  /** Why the monitor could not start or stopped early. */
  error: string | null;
}

export function emptyTimeline(intervalMs: number, error: string | null): MonitorTimeline {
  return { intervalMs, hz: null, samples: [], dropped: 0, domains: null, topology: null, exit: null, watchdogTimeoutMs: null, sampleMicros: { mean: 0, max: 0 }, cpuPercent: 0, error };
}

export class MonitorSession {
  private readonly timeline: MonitorTimeline;
  private guest: GuestKernel | null = null;
  private sampler: RunqueueSampler | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private t0 = 0;
  private totalMicros = 0;
  private count = 0;
  private stopped = false;

  constructor(private readonly intervalMs: number, private readonly places: readonly CpuPlace[]) {
    this.timeline = emptyTimeline(intervalMs, null);
  }

  /** Locates the guest kernel (CR3 from vCPU 0), reads and checks the domains, starts sampling. */
  async start(vm: LiveVm, kernel: KernelImage): Promise<void> {
    try {
      const sregs = await vm.readSregs(0);
      if (this.stopped) return;
      const intro = nodeIntrospector(vm.memory.memory);
      for (const r of vm.memory.regions) intro.addRegion(r.guestPhysAddr, r.size, r.offset);
      this.guest = GuestKernel.open(intro, kernel, { cr3: sregs.cr3, cr4: sregs.cr4 });
      this.sampler = new RunqueueSampler(this.guest);
      this.timeline.hz = readJiffies(this.guest).hz;
      this.timeline.domains = readSchedDomains(this.guest);
      this.timeline.topology = this.timeline.domains.length === 0 ? null : checkSchedDomains(this.timeline.domains, this.places);
    } catch (e) {
      this.timeline.error = `monitor not started: ${e instanceof Error ? e.message : String(e)}`;
      return;
    }
    this.t0 = performance.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** One sample now (also what a capture takes). */
  sample(): MonitorSample | null {
    if (this.guest === null || this.sampler === null || this.stopped) return null;
    const t = performance.now();
    const cpu0 = threadCpuMicros();
    let s: MonitorSample;
    try {
      const { jiffies, hz } = readJiffies(this.guest);
      const scx = readScxState(this.guest, hz);
      if (scx?.exit != null) this.timeline.exit = scx.exit;
      if (scx?.watchdogTimeoutMs != null) this.timeline.watchdogTimeoutMs = scx.watchdogTimeoutMs;
      const msPerJiffy = hz === null ? null : 1000 / hz;
      s = {
        t: Math.round(t - this.t0),
        scx: scx?.state ?? null,
        ops: scx?.opsName ?? null,
        cpus: this.sampler.sample().map((r) => ({
          cpu: r.cpu, nr: r.nrRunning, cfs: r.cfsNrRunning, scx: r.scxNrRunning, dsq: r.localDsqDepth,
          clockMs: Number(r.clockNs / 1000n) / 1000,
          pid: r.curr?.pid ?? null, comm: r.curr?.comm ?? null, runnable: r.runnable,
          waitMs: r.oldest === null || jiffies === null || msPerJiffy === null || r.oldest.runnableAt > jiffies ? null : Number(jiffies - r.oldest.runnableAt) * msPerJiffy,
          waitPid: r.oldest?.pid ?? null,
        })),
      };
    } catch (e) {
      this.timeline.error = `sampling failed: ${e instanceof Error ? e.message : String(e)}`;
      this.stop();
      return null;
    }
    const us = threadCpuMicros() - cpu0;
    this.totalMicros += us;
    this.count++;
    this.timeline.sampleMicros = { mean: this.totalMicros / this.count, max: Math.max(this.timeline.sampleMicros.max, us) };
    if (this.timeline.samples.length < MAX_SAMPLES) this.timeline.samples.push(s);
    else this.timeline.dropped++;
    return s;
  }

  /** The located guest kernel (null before start or when it failed). */
  get kernel(): GuestKernel | null { return this.guest; }

  /** Stops sampling (idempotent); call before the guest's memory is released. */
  stop(): MonitorTimeline {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const elapsedMicros = (performance.now() - this.t0) * 1000;
    if (this.count > 0 && elapsedMicros > 0) this.timeline.cpuPercent = Math.round((this.totalMicros / elapsedMicros) * 100 * 1000) / 1000;
    this.timeline.sampleMicros.mean = Math.round(this.timeline.sampleMicros.mean * 10) / 10;
    this.timeline.sampleMicros.max = Math.round(this.timeline.sampleMicros.max * 10) / 10;
    return this.timeline;
  }
}
