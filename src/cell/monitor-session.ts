// The host-side monitor of one running cell: from the agent's hello (the guest kernel is up)
// until the VM ends, it samples every CPU's runqueue and sched_ext's state out of guest RAM at
// a fixed interval (the WASM core; nothing runs in the guest for it), reads the sched-domain
// hierarchy once and checks it against the declared topology, and keeps the last sched_ext
// exit info it saw. The result is a compact JSON timeline for the cell's result, the test
// checks (`stall`) and failure blocks.

import type { KernelImage } from '../monitor/kernel-image.js';
import { GuestKernel } from '../monitor/guest-kernel.js';
import { RunqueueSampler } from '../monitor/runqueues.js';
import { StealHistory } from '../monitor/steal-history.js';
import { readJiffies, readScxState, type ScxExitInfo } from '../monitor/sched-ext-state.js';
import {
  checkSchedDomains,
  readSchedDomains,
  type CpuDomains,
  type CpuPlace,
  type DomainCheck,
} from '../monitor/sched-domains.js';
import { nodeIntrospector } from '../monitor/wasm-file.js';
import { inspectGuest } from '../monitor/inspect.js';
import type { StructOpsProgram } from '../monitor/introspector.js';
import { jitImages, symbolize, type JitImage } from '../monitor/symbolize.js';
import type { LiveVm } from '../vmm/index.js';
import { watchFor, watchpointProblem } from '../vmm/watchpoints.js';
import type { DebugSlots } from './debug-slots.js';
import type { CapturedCpu, SnapshotData } from '../test-api/capture.js';
import { native } from '../kvm/native.js';

const threadCpuMicros = (): number => Number(native().threadCpuTimeNs()) / 1000;

export const DEFAULT_MONITOR_INTERVAL_MS = 100;
/** Samples kept per cell (a 100 ms interval: 10 minutes); later ones are counted, not kept. */
const MAX_SAMPLES = 6000;
/** sched_ext's enable state (atomic_t): 6.12's name, then later kernels'. */
const ENABLE_STATE_SYMBOLS = ['scx_ops_enable_state_var', 'scx_enable_state_var'];
/** Failed samples in a row that stop the monitor (one torn read fails one sample, not the monitor). */
const MAX_FAILURES_IN_A_ROW = 20;

/** One CPU in one sample (short keys: a long test has many); the same shape a capture hands a test. */
export type CpuTick = CapturedCpu;

export interface MonitorSample {
  /** ms since the monitor started. */
  t: number;
  /** The attached scheduler's struct_ops programs: name -> [run count, run time ns] summed over CPUs
   * (kernel.bpf_stats_enabled); on every `programEvery`-th sample only. */
  progs?: Record<string, [number, number]>;
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
  /** The attached scheduler's struct_ops programs by name, as last enumerated (whether or not BPF stats are on). */
  programs: string[];
  /** The last sched_ext exit info seen (the kernel frees it once the scheduler is gone). */
  exit: ScxExitInfo | null;
  /** A hardware watchpoint on sched_ext's enable state took a sample at each change (so the exit was read when it happened). */
  stateWatched: boolean;
  /** Writes of the enable state the watchpoint caught (each a VM exit and a sample). */
  stateChanges: number;
  watchdogTimeoutMs: number | null;
  /** Host CPU time of one sample (the cell thread's, so vCPU preemption does not count), µs: mean and max. */
  sampleMicros: { mean: number; max: number };
  /** The monitor's CPU time over its run as a share of one host CPU, percent. */
  cpuPercent: number;
  /** Why the monitor could not start or stopped early, or the last sample that failed. */
  error: string | null;
}

/**
 * A passed cell's timeline with at most `max` samples kept, evenly spread (first and last
 * kept; `dropped` counts the rest): a sweep of many cells stays small in its JSON and through
 * the test host, while a failed cell keeps every sample.
 */
export function thinTimeline(t: MonitorTimeline, max = 120): MonitorTimeline {
  const n = t.samples.length;
  if (n <= max) return t;
  const keep = new Set<number>();
  for (let i = 0; i < max; i++) keep.add(Math.round((i * (n - 1)) / (max - 1)));
  return { ...t, samples: t.samples.filter((_, i) => keep.has(i)), dropped: t.dropped + n - keep.size };
}

export function emptyTimeline(intervalMs: number, error: string | null): MonitorTimeline {
  return {
    intervalMs,
    hz: null,
    samples: [],
    dropped: 0,
    programs: [],
    domains: null,
    topology: null,
    exit: null,
    stateWatched: false,
    stateChanges: 0,
    watchdogTimeoutMs: null,
    sampleMicros: { mean: 0, max: 0 },
    cpuPercent: 0,
    error,
  };
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
  /** JIT images of the attached scheduler's programs (symbolizing exit backtraces), and for which ops. */
  private jit: JitImage[] = [];
  private jitOps: string | null = null;
  private last: MonitorSample | undefined;
  private exitJitTried = false;
  /** Samples failed in a row (a torn read fails one; MAX_FAILURES_IN_A_ROW stop the monitor). */
  private failures = 0;
  /** Per CPU steal at recent samples: the part of a wait the host did not run the vCPU. */
  private readonly steal = new StealHistory();

  /** `programEvery`: read the programs' run counts on every n-th sample (1: every sample, as a repro run does). */
  constructor(
    private readonly intervalMs: number,
    private readonly places: readonly CpuPlace[],
    private readonly programEvery = 10,
  ) {
    this.timeline = emptyTimeline(intervalMs, null);
  }

  /**
   * Locates the guest kernel (CR3 from vCPU 0), reads and checks the domains, starts sampling;
   * with `slots`, also watches sched_ext's enable state (one hardware watchpoint) and reads
   * the exit info at each change of it: that info lives only from the error until the disable
   * work frees it, and the change to DISABLING comes after it is complete.
   */
  async start(vm: LiveVm, kernel: KernelImage, slots?: DebugSlots): Promise<void> {
    try {
      const sregs = await vm.readSregs(0);
      if (this.stopped) return;
      const intro = nodeIntrospector(vm.memory.memory);
      for (const r of vm.memory.regions) intro.addRegion(r.guestPhysAddr, r.size, r.offset);
      this.guest = GuestKernel.open(intro, kernel, { cr3: sregs.cr3, cr4: sregs.cr4 });
      this.sampler = new RunqueueSampler(this.guest);
      this.timeline.hz = readJiffies(this.guest).hz;
      this.timeline.domains = readSchedDomains(this.guest);
      this.timeline.topology =
        this.timeline.domains.length === 0 ? null : checkSchedDomains(this.timeline.domains, this.places);
    } catch (e) {
      this.timeline.error = `monitor not started: ${e instanceof Error ? e.message : String(e)}`;
      return;
    }
    this.t0 = performance.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    // opt-in while a hang of a crashing scheduler's guest seen with it armed is investigated
    if (slots !== undefined && process.env.KTSTR_MONITOR_STATE_WATCH === '1') await this.watchEnableState(slots);
  }

  /**
   * The enable state changed (the writing vCPU holds until this returns, so keep it short):
   * the exit info only, which the kernel frees soon after the change to DISABLING.
   */
  private readExitNow(): void {
    this.timeline.stateChanges++;
    if (this.guest === null || this.stopped) return;
    try {
      const scx = readScxState(this.guest, this.timeline.hz, this.jit);
      if (scx?.exit != null) this.timeline.exit = scx.exit;
    } catch {
      // a torn read: the interval's samples go on
    }
  }

  private async watchEnableState(slots: DebugSlots): Promise<void> {
    const guest = this.guest!;
    const symbol = ENABLE_STATE_SYMBOLS.find((s) => guest.hasSymbol(s));
    if (symbol === undefined || this.stopped || watchpointProblem() !== null) return;
    try {
      await slots.take(
        'the monitor (sched_ext enable state)',
        watchFor(guest.symbolKva(symbol), 4, 'write', symbol),
        () => this.readExitNow(),
      );
      this.timeline.stateWatched = true;
    } catch {
      // no hardware watchpoints here: the interval alone finds the exit (when a sample falls in its window)
    }
  }

  /** One sample now (also what a capture takes); null when stopped or when this read failed. */
  sample(): MonitorSample | null {
    if (this.guest === null || this.sampler === null || this.stopped) return null;
    const t = performance.now();
    const cpu0 = threadCpuMicros();
    let s: MonitorSample;
    try {
      s = this.read(t);
    } catch (e) {
      // the guest changes what we read while we read it: a torn structure fails one sample;
      // only a run of failures (a layout we cannot read at all) stops the monitor
      this.failures++;
      this.timeline.error = `sampling failed${this.failures > 1 ? ` (${this.failures} in a row)` : ''}: ${e instanceof Error ? e.message : String(e)}`;
      if (this.failures >= MAX_FAILURES_IN_A_ROW) this.halt();
      return null;
    }
    this.failures = 0;
    const us = threadCpuMicros() - cpu0;
    this.totalMicros += us;
    this.count++;
    this.timeline.sampleMicros = {
      mean: this.totalMicros / this.count,
      max: Math.max(this.timeline.sampleMicros.max, us),
    };
    this.last = s;
    if (this.timeline.samples.length < MAX_SAMPLES) this.timeline.samples.push(s);
    else this.timeline.dropped++;
    return s;
  }

  /** The struct_ops programs now; null when the enumeration failed (programs come and go as we walk). */
  private programs(): StructOpsProgram[] | null {
    try {
      return inspectGuest(this.guest!).enumeration.programs;
    } catch {
      return null;
    }
  }

  private read(t: number): MonitorSample {
    const guest = this.guest!;
    const { jiffies, hz } = readJiffies(guest);
    let scx = readScxState(guest, hz, this.jit);
    if (scx?.exit != null && scx.exit.backtrace.some((f) => f.startsWith('0x')) && !this.exitJitTried) {
      // an exit whose backtrace has unnamed frames (the scheduler died before a sample saw it
      // enabled): its programs are still loaded while its process reports the exit: name them now
      const programs = this.programs();
      if (programs !== null) {
        this.exitJitTried = true;
        this.jit = jitImages(guest, programs);
        if (this.timeline.programs.length === 0) this.timeline.programs = programs.map((p) => p.name);
        scx = readScxState(guest, hz, this.jit);
      }
    }
    let progs: MonitorSample['progs'];
    const enabled = scx?.state === 'enabled' && (scx.opsName ?? '') !== '';
    if (enabled && (scx!.opsName !== this.jitOps || this.count % this.programEvery === 0)) {
      const programs = this.programs();
      if (programs !== null) {
        if (scx!.opsName !== this.jitOps) {
          this.jit = jitImages(guest, programs);
          this.jitOps = scx!.opsName;
          this.timeline.programs = programs.map((p) => p.name);
        }
        progs = Object.fromEntries(
          programs.filter((p) => p.stats !== null).map((p) => [p.name, [Number(p.stats!.cnt), Number(p.stats!.nsecs)]]),
        );
      }
    }
    if (scx?.exit != null) this.timeline.exit = scx.exit;
    if (scx?.watchdogTimeoutMs != null) this.timeline.watchdogTimeoutMs = scx.watchdogTimeoutMs;
    const msPerJiffy = hz === null ? null : 1000 / hz;
    return {
      t: Math.round(t - this.t0),
      ...(progs === undefined ? {} : { progs }),
      scx: scx?.state ?? null,
      ops: scx?.opsName ?? null,
      cpus: this.sampler!.sample().map((r) => {
        const steal = Number(r.stealNs);
        // the oldest task's wait by the guest's clock, and the steal in it
        const waitedMs =
          r.oldest === null || jiffies === null || msPerJiffy === null || r.oldest.runnableAt > jiffies
            ? null
            : Number(jiffies - r.oldest.runnableAt) * msPerJiffy;
        const stolenMs =
          waitedMs === null
            ? 0
            : Math.min(waitedMs, this.steal.stolenMsSince(r.cpu, Number(r.oldest!.runnableAt), steal));
        if (jiffies !== null && r.readable) this.steal.record(r.cpu, Number(jiffies), steal);
        return {
          cpu: r.cpu,
          nr: r.nrRunning,
          cfs: r.cfsNrRunning,
          scx: r.scxNrRunning,
          dsq: r.localDsqDepth,
          clockMs: Number(r.clockNs / 1000n) / 1000,
          pid: r.curr?.pid ?? null,
          comm: r.curr?.comm ?? null,
          policy: r.curr?.policy ?? null,
          runnable: r.runnable,
          // the wait while the vCPU ran: what the scheduler could have used
          waitMs: waitedMs === null ? null : waitedMs - stolenMs,
          waitStolenMs: waitedMs === null ? null : stolenMs,
          waitPid: r.oldest?.pid ?? null,
        };
      }),
    };
  }

  /** The host's view now: a sample (kept in the timeline too), sched_ext state, the scheduler's maps and globals. */
  capture(label: string, pauseMs: number | null = null): SnapshotData {
    const s = this.sample();
    if (s === null) throw new Error(this.timeline.error ?? 'the monitor is stopped');
    const view = this.schedulerView?.(this.guest!) ?? {
      globals: {},
      maps: [],
      notes: ['maps are not rendered by this build'],
    };
    return {
      label,
      atMs: s.t,
      pauseMs,
      cpus: s.cpus,
      scx: { state: s.scx, ops: s.ops },
      globals: view.globals,
      maps: view.maps,
      notes: view.notes,
    };
  }

  /** Writes a global of the attached scheduler; returns what was written, for the log. */
  writeVar(name: string, value: number | string): string {
    if (this.varWriter === undefined) throw new Error('writing scheduler globals is not available in this build');
    return this.varWriter(this.guest!, name, value);
  }

  /** Renders the attached scheduler's maps and globals (set by the maps module). */
  schedulerView?: (guest: GuestKernel) => Pick<SnapshotData, 'globals' | 'maps' | 'notes'>;
  varWriter?: (guest: GuestKernel, name: string, value: number | string) => string;

  /** The newest sample kept (undefined before the first). */
  latest(): MonitorSample | undefined {
    return this.last;
  }

  /** The located guest kernel (null before start or when it failed). */
  get kernel(): GuestKernel | null {
    return this.guest;
  }

  /** Why the monitor could not start or stopped, or the last failed sample (null: none). */
  get error(): string | null {
    return this.timeline.error;
  }

  /**
   * `name+0xoff` for a guest code address: kernel text, or a BPF program of the attached
   * scheduler (its JIT images enumerated again when the address is in none we know).
   */
  symbolize(addr: bigint): string {
    if (this.guest === null) return `0x${addr.toString(16)}`;
    const known = symbolize(this.guest, addr, this.jit);
    if (!known.startsWith('0x')) return known;
    const programs = this.programs();
    if (programs !== null) this.jit = jitImages(this.guest, programs);
    return symbolize(this.guest, addr, this.jit);
  }

  /**
   * Stops sampling (idempotent); call before the guest's memory is released. Takes a last
   * sample first, so an exit the guest wrote after the last tick is still seen.
   */
  stop(): MonitorTimeline {
    if (this.stopped) return this.timeline;
    if (this.timer !== null) this.sample();
    this.halt();
    return this.timeline;
  }

  private halt(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const elapsedMicros = (performance.now() - this.t0) * 1000;
    if (this.count > 0 && elapsedMicros > 0)
      this.timeline.cpuPercent = Math.round((this.totalMicros / elapsedMicros) * 100 * 1000) / 1000;
    this.timeline.sampleMicros.mean = Math.round(this.timeline.sampleMicros.mean * 10) / 10;
    this.timeline.sampleMicros.max = Math.round(this.timeline.sampleMicros.max * 10) / 10;
  }
}
