// A cell's hardware watchpoints (`ctx.watch`): each watch takes one of the four x86 debug
// address slots on every vCPU (KVM_SET_GUEST_DEBUG through the VMM). A write to the watched
// bytes traps after the writing instruction; the vCPU that wrote holds while the host reads
// the writer's context — the CPU, the task running there, the RIP symbolized (BPF programs by
// their JIT images) and the new value — and, for `onWrite: 'capture'`, a capture of the whole
// guest with every vCPU held. Bounded: the first MAX_KEPT hits are kept, the first
// MAX_CAPTURES of them with captures, and a watch written more than MAX_HITS times is taken
// off (a hot variable would otherwise turn every write into a VM exit).

import type { SnapshotData, WatchData, WatchHitData, WatchMode, WatchSummary } from '../test-api/capture.js';
import type { DebugHit } from '../vmm/index.js';
import { watchFor, watchpointProblem, type HardwareWatch } from '../vmm/watchpoints.js';
import type { DebugSlots } from './debug-slots.js';
import type { MonitorSession } from './monitor-session.js';
import { locateWatchTarget } from './watch-target.js';

const MAX_KEPT = 256;
const MAX_CAPTURES = 16;
const MAX_HITS = 10_000;
const SUMMARY_HITS = 8;

interface Watch {
  data: WatchData;
  hardware: HardwareWatch;
  kept: WatchHitData[];
  /** Its debug slot while armed, null once stopped or taken off. */
  slot: number | null;
}

export class WatchSession {
  private readonly all: Watch[] = [];
  private nextId = 1;

  /** `exclusive` runs a read with every vCPU held, one at a time (shared with captures). */
  constructor(
    private readonly slots: DebugSlots,
    private readonly monitor: MonitorSession,
    private readonly exclusive: <T>(read: (pauseMs: number) => T) => Promise<T>,
  ) {}

  /** Sets a watchpoint on `target` (see watch-target.ts) on every vCPU. */
  async add(target: string, onWrite: WatchMode): Promise<WatchData> {
    const guest = this.monitor.kernel;
    if (guest === null) throw new Error(this.monitor.error ?? 'the host monitor has not located the guest kernel yet');
    const problem = watchpointProblem();
    if (problem !== null) throw new Error(`watch ${target}: ${problem}`);
    const found = locateWatchTarget(guest, target);
    const hardware = watchFor(found.kva, found.size, 'write', `${found.resolved} (${found.size} bytes)`);
    const w: Watch = {
      data: {
        id: this.nextId++,
        target,
        resolved: found.resolved,
        address: `0x${found.kva.toString(16)}`,
        size: found.size,
        onWrite,
        hits: 0,
        disarmed: null,
      },
      hardware,
      kept: [],
      slot: null,
    };
    if (this.slots.free === 0)
      throw new Error(
        `watch ${target}: all hardware watchpoints are taken (${this.slots.owners().join(', ')}); stop one first`,
      );
    w.slot = await this.slots.take(`watch ${target}`, hardware, (hit) => this.onHit(w, hit));
    this.all.push(w);
    return { ...w.data };
  }

  /** The hits kept so far of watch `id`. */
  hits(id: number): { watch: WatchData; hits: WatchHitData[] } {
    const w = this.find(id);
    return { watch: { ...w.data }, hits: w.kept };
  }

  /** Takes watch `id` off every vCPU (its hits stay readable). */
  async remove(id: number): Promise<WatchData> {
    const w = this.find(id);
    if (w.slot !== null) {
      const slot = w.slot;
      w.slot = null;
      await this.slots.release(slot);
    }
    return { ...w.data };
  }

  /** Every watch of the cell, for its result: the first SUMMARY_HITS hits of each, without captures. */
  summary(): WatchSummary[] {
    return this.all.map((w) => ({
      ...w.data,
      firstHits: w.kept.slice(0, SUMMARY_HITS).map(({ snapshot: _, ...hit }) => hit),
    }));
  }

  private find(id: number): Watch {
    const w = this.all.find((x) => x.data.id === id);
    if (w === undefined) throw new Error(`no watch ${id} in this cell`);
    return w;
  }

  /** A vCPU trapped on a write to `w` and holds until this returns. */
  private async onHit(w: Watch, hit: DebugHit): Promise<void> {
    w.data.hits++;
    if (w.data.hits > MAX_HITS) {
      if (w.slot !== null) {
        w.data.disarmed = `taken off after ${MAX_HITS} writes (a watch on a variable this hot turns every write into a VM exit)`;
        const slot = w.slot;
        w.slot = null;
        await this.slots.release(slot).catch(() => undefined);
      }
      return;
    }
    if (w.kept.length >= MAX_KEPT) return;
    const capture = w.data.onWrite === 'capture' && w.kept.length < MAX_CAPTURES;
    // this hit's number and place, fixed now (another hit may count while a capture waits its turn)
    const n = w.data.hits;
    const at = { n, cpu: hit.vcpu, rip: `0x${hit.pc.toString(16)}`, where: this.monitor.symbolize(hit.pc) };
    const read = (pauseMs: number | null): WatchHitData => {
      const snapshot: SnapshotData | undefined = capture
        ? this.monitor.capture(`watch ${w.data.target} #${n}`, pauseMs)
        : undefined;
      const cpu =
        snapshot?.cpus.find((c) => c.cpu === hit.vcpu) ?? this.monitor.sample()?.cpus.find((c) => c.cpu === hit.vcpu);
      return {
        ...at,
        atMs: snapshot?.atMs ?? this.monitor.latest()?.t ?? 0,
        pid: cpu?.pid ?? null,
        comm: cpu?.comm ?? null,
        value: this.value(w),
        ...(snapshot === undefined ? {} : { snapshot }),
      };
    };
    try {
      w.kept.push(capture ? await this.exclusive((pauseMs) => read(pauseMs)) : read(null));
    } catch (e) {
      w.kept.push({
        ...at,
        atMs: this.monitor.latest()?.t ?? 0,
        pid: null,
        comm: null,
        value: this.value(w),
        problem: `the writer's context was not read: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
  }

  /** The watched bytes now, as an unsigned little-endian integer (decimal); '?' when unreadable. */
  private value(w: Watch): string {
    const b = this.monitor.kernel?.readBytes(w.hardware.address, w.hardware.length) ?? null;
    if (b === null || b.length < w.hardware.length) return '?';
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v.toString();
  }
}
