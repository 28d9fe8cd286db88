// `ctx.run` in the guest: creates the run's cgroups, starts one ktstr-worker launcher per
// cgroup, lets the workers run for the duration while applying the dynamic operations at
// their times (each starts a new phase), stops everything, and returns the workers' reports
// with the agent's own knowledge added (cgroup, allowed CPUs per phase, start/stop phase).
// Cleans up on every path: launchers killed, cgroups removed.

import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import type { CgroupSpec } from '../../../test-api/cgroup.js';
import type { GuestRuntime, RunSpec } from '../../../test-api/context.js';
import { describeOp, type OpSpec } from '../../../test-api/ops.js';
import type { CgroupRecord, RunPhase, RunRecord, WorkerReport, WorkKind } from '../../../test-api/record.js';
import {
  createCgroups,
  cgroupPath,
  effectiveCpus,
  moveProcess,
  prepareRoot,
  removeAll,
  removeCgroup,
  setCpuset,
  setWeight,
} from './cgroupfs.js';
import { Launcher, WORKER_BINARY } from './launcher.js';
import { toWorkerReport } from './report.js';
import { PayloadProcess } from './payload.js';

/** Starts, replaces, detaches the BPF scheduler mid-run (src/guest/agent/test-runner.ts). */
export interface SchedulerControl {
  replace(name: string, args: string[]): Promise<void>;
  detach(): Promise<void>;
  attach(name: string, args: string[]): Promise<void>;
}

export interface WorkloadOptions {
  online: number[];
  /** The kernel has sched_ext: workers default to SCHED_EXT (plain fair scheduling without a BPF scheduler). */
  schedExt: boolean;
  scheduler: SchedulerControl;
  runDir: string;
  log: (line: string) => void;
  binary?: string;
  /** Ceiling for a launcher's readiness and stop, ms. */
  launcherTimeoutMs?: number;
  /** Run alongside the workers of every run. */
  payload?: { argv: string[]; cgroup: string | null } | null;
}

interface Tracked {
  index: number;
  cgroup: string;
  current: string;
  work: WorkKind;
  nice: number;
  affinity: number[] | null;
  launcher: Launcher;
  pid: number;
  startPhase: number;
  stopPhase: number | null;
  allowed: { phase: number; cpus: number[] }[];
}

/** Phase word bit: an operation is being applied (docs/worker-protocol.md). */
export const TRANSITION = 0x80000000;

/** The `cpu` line of /proc/stat in ms: busy (user..softirq), idle (+iowait), steal; null when unreadable. */
function cpuStat(): { busyMs: number; idleMs: number; stealMs: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null;
    const tick = 10; // USER_HZ 100
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    return {
      busyMs: (user + nice + system + irq + softirq) * tick,
      idleMs: (idle + iowait) * tick,
      stealMs: steal * tick,
    };
  } catch {
    return null;
  }
}

const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));

function specLine(
  index: number,
  c: CgroupSpec,
  w: CgroupSpec['workers'][number],
  schedExt: boolean,
  extra: string[],
): string {
  const parts = [`worker index=${index}`, `cgroup=${cgroupPath(c.name)}`, `work=${w.work.kind}`];
  for (const [k, v] of Object.entries(w.work.params)) parts.push(`${k}=${v}`);
  if (c.affinity !== null) parts.push(`affinity=${c.affinity.join(',')}`);
  if (c.nice !== null) parts.push(`nice=${c.nice}`);
  parts.push(`policy=${c.policy ?? (schedExt ? 'ext' : 'normal')}`);
  return [...parts, ...extra].join(' ');
}

export class WorkloadRunner implements GuestRuntime {
  private runs = 0;
  readonly logs: string[] = [];

  constructor(private readonly o: WorkloadOptions) {}

  log(line: string): void {
    if (this.logs.length < 1000) this.logs.push(line.slice(0, 2000));
    this.o.log(line);
  }

  async run(spec: RunSpec): Promise<RunRecord> {
    const runNo = ++this.runs;
    const timeout = this.o.launcherTimeoutMs ?? 60_000;
    const tracked: Tracked[] = [];
    const launchers: Launcher[] = [];
    const cgroups: CgroupRecord[] = [];
    let next = 0;
    let phase = 1;
    const phases: RunPhase[] = [];
    const dir = join(this.o.runDir, `run-${runNo}`);

    /** Starts one launcher per cgroup with workers; resolves when all are parked. */
    const launch = async (specs: CgroupSpec[], startPhase: number): Promise<Launcher[]> => {
      createCgroups(specs);
      const started: Launcher[] = [];
      for (const c of specs) {
        const record: CgroupRecord = { name: c.name, weight: c.weight, max: c.max, workers: [] };
        cgroups.push(record);
        const lines: string[] = [];
        const mine: Omit<Tracked, 'launcher' | 'pid'>[] = [];
        let pair = 0;
        let fanout = 0;
        for (const w of c.workers) {
          const fanoutId = fanout++;
          for (let k = 0; k < w.count; k++) {
            const index = next++;
            const extra =
              w.work.kind === 'pingpong'
                ? [`pair=${pair + Math.floor(k / 2)}`]
                : w.work.kind === 'futex'
                  ? [`fanout=${fanoutId}`, `role=${k === 0 ? 'waker' : 'waiter'}`]
                  : [];
            lines.push(specLine(index, c, w, this.o.schedExt, extra));
            mine.push({
              index,
              cgroup: c.name,
              current: c.name,
              work: w.work.kind,
              nice: c.nice ?? 0,
              affinity: c.affinity,
              startPhase,
              stopPhase: null,
              allowed: [],
            });
            record.workers.push(index);
          }
          if (w.work.kind === 'pingpong') {
            if (w.count % 2 !== 0)
              throw new Error(`cgroup ${c.name}: pipePingPong needs an even number of workers (got ${w.count})`);
            pair += w.count / 2;
          }
        }
        if (lines.length === 0) continue;
        const l = new Launcher(join(dir, c.name.replaceAll('/', '__')), lines, this.o.binary ?? WORKER_BINARY);
        launchers.push(l);
        started.push(l);
        for (const m of mine) tracked.push({ ...m, launcher: l, pid: 0 });
      }
      await Promise.all(started.map((l) => l.ready(timeout)));
      for (const t of tracked)
        if (t.pid === 0)
          t.pid = t.launcher.pids[t.index - tracked.filter((x) => x.launcher === t.launcher)[0].index] ?? 0;
      return started;
    };

    const snapshotAllowed = (): void => {
      const cache = new Map<string, number[]>();
      for (const t of tracked) {
        if (t.stopPhase !== null) continue;
        let eff = cache.get(t.current);
        if (eff === undefined) {
          eff = effectiveCpus(t.current, this.o.online);
          cache.set(t.current, eff);
        }
        const aff = t.affinity;
        t.allowed.push({ phase, cpus: aff === null ? eff : eff.filter((c) => aff.includes(c)) });
      }
    };

    const live = (): Launcher[] =>
      launchers.filter((l) => tracked.some((t) => t.launcher === l && t.stopPhase === null));

    const apply = async (op: OpSpec): Promise<void> => {
      switch (op.op) {
        case 'resize':
          setCpuset(op.cgroup, op.cpus);
          break;
        case 'weight':
          setWeight(op.cgroup, op.weight);
          break;
        case 'affinity': {
          const { native } = await import('../../../kvm/native.js');
          for (const t of tracked) {
            if (t.current !== op.cgroup || t.stopPhase !== null) continue;
            t.affinity = op.cpus;
            native().schedSetaffinity(t.pid, op.cpus ?? this.o.online);
          }
          break;
        }
        case 'move': {
          const movers = tracked.filter((t) => t.current === op.from && t.stopPhase === null).slice(0, op.count);
          if (movers.length < op.count)
            this.log(`move: ${op.from} has ${movers.length} running workers, moving those (asked ${op.count})`);
          for (const t of movers) {
            moveProcess(op.to, t.pid);
            t.current = op.to;
          }
          break;
        }
        case 'add': {
          const ls = await launch(op.cgroups, phase);
          await Promise.all(ls.map((l) => l.start(timeout, TRANSITION | phase)));
          break;
        }
        case 'remove': {
          const gone = (name: string): boolean => name === op.cgroup || name.startsWith(`${op.cgroup}/`);
          const ls = launchers.filter((l) => tracked.some((t) => t.launcher === l && gone(t.cgroup)));
          await Promise.all(ls.map((l) => l.stop(timeout)));
          for (const t of tracked) if (ls.includes(t.launcher)) t.stopPhase = phase - 1;
          removeCgroup(op.cgroup);
          break;
        }
        case 'replaceScheduler':
          await this.o.scheduler.replace(op.scheduler, op.args);
          break;
        case 'detachScheduler':
          await this.o.scheduler.detach();
          break;
        case 'attachScheduler':
          await this.o.scheduler.attach(op.scheduler, op.args);
          break;
      }
    };

    const tSpawn = performance.now();
    try {
      prepareRoot();
      await launch(spec.cgroups, 1);
      const spawnMs = performance.now() - tSpawn;
      snapshotAllowed();
      await Promise.all(launchers.map((l) => l.start(timeout)));
      const payload = this.o.payload ? new PayloadProcess(this.o.payload.argv, this.o.payload.cgroup) : null;
      const t0 = performance.now();
      const stat0 = cpuStat();
      phases.push({ phase: 1, label: 'start', atMs: 0 });
      // operations at the same time form one phase
      const groups: OpSpec[][] = [];
      for (const op of spec.ops) {
        const last = groups[groups.length - 1];
        if (last !== undefined && last[0].atMs === op.atMs) last.push(op);
        else groups.push([op]);
      }
      for (const group of groups) {
        await sleepUntil(t0 + group[0].atMs);
        phase++;
        // while an operation is applied the workers are in transition (their CPUs are counted
        // in no phase: a cpuset grows or shrinks under them); the new phase starts after it
        const beganMs = performance.now() - t0;
        for (const l of live()) l.phase(TRANSITION | phase);
        for (const op of group) await apply(op);
        for (const l of live()) l.phase(phase);
        const atMs = performance.now() - t0;
        phases.push({ phase, label: group.map(describeOp).join('; '), atMs, transitionMs: atMs - beganMs });
        snapshotAllowed();
      }
      await sleepUntil(t0 + spec.durationMs);
      const durationMs = performance.now() - t0;
      const payloadRecord = payload === null ? null : await payload.finish();
      const stops = await Promise.all(live().map(async (l) => ({ l, r: await l.stop(timeout) })));
      // after the stop: the window then covers the workers' whole measured time
      const stat1 = cpuStat();
      const usage =
        stat0 === null || stat1 === null
          ? null
          : {
              busyMs: stat1.busyMs - stat0.busyMs,
              idleMs: stat1.idleMs - stat0.idleMs,
              stealMs: stat1.stealMs - stat0.stealMs,
              windowMs: performance.now() - t0,
            };
      for (const s of stops) if (s.r.killed) this.log(`ktstr-worker in ${s.l.dir} did not stop in time and was killed`);
      const workers: WorkerReport[] = tracked.map((t) =>
        toWorkerReport(t.launcher.report(t.index), {
          index: t.index,
          pid: t.pid,
          cgroup: t.cgroup,
          work: t.work,
          nice: t.nice,
          allowed: t.allowed,
          startPhase: t.startPhase,
          stopPhase: t.stopPhase,
          missing: `no report from worker ${t.index} (${t.launcher.messages || 'it did not write one'})`,
        }),
      );
      return {
        label: spec.label,
        durationMs,
        cpus: this.o.online,
        phases,
        cgroups,
        workers,
        spawnMs,
        cpuStat: usage,
        payload: payloadRecord,
      };
    } finally {
      await Promise.all(launchers.map((l) => l.kill()));
      removeAll();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
