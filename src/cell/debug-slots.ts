// The four x86 hardware watchpoints of a cell's VM, shared by their users — the monitor
// (one slot: sched_ext's enable state, so an exit is read the moment it happens) and the test
// body's ctx.watch (the rest). Each user takes a slot with a handler; setting or freeing one
// re-arms every vCPU; a hit (the writing vCPU holds meanwhile) goes to the handler of each
// slot DR6 names.

import type { DebugHit, LiveVm } from '../vmm/index.js';
import { DEBUG_SLOTS, firedSlots, type HardwareWatch } from '../vmm/watchpoints.js';

export type DebugSlotHandler = (hit: DebugHit) => Promise<void> | void;

interface Slot {
  owner: string;
  watch: HardwareWatch;
  onHit: DebugSlotHandler;
}

export class DebugSlots {
  private readonly slots: (Slot | null)[] = Array.from({ length: DEBUG_SLOTS }, () => null);

  constructor(private readonly live: LiveVm) {
    live.onDebugHit(async (hit) => {
      for (const s of firedSlots(hit.dr6)) {
        const slot = this.slots[s];
        if (slot !== null && slot !== undefined) await slot.onHit(hit);
      }
    });
  }

  /** Slots free now. */
  get free(): number {
    return this.slots.filter((s) => s === null).length;
  }

  /** Who holds the taken slots (for an error message). */
  owners(): string[] {
    return this.slots.flatMap((s) => (s === null ? [] : [s.owner]));
  }

  /** Takes a free slot for `watch` and arms it on every vCPU; returns the slot. */
  async take(owner: string, watch: HardwareWatch, onHit: DebugSlotHandler): Promise<number> {
    const i = this.slots.indexOf(null);
    if (i < 0) throw new Error(`all ${DEBUG_SLOTS} hardware watchpoints are taken (${this.owners().join(', ')})`);
    this.slots[i] = { owner, watch, onHit };
    try {
      await this.arm();
    } catch (e) {
      this.slots[i] = null;
      throw e;
    }
    return i;
  }

  /** Frees slot `i` and re-arms (idempotent). */
  async release(i: number): Promise<void> {
    if (this.slots[i] === null) return;
    this.slots[i] = null;
    await this.arm();
  }

  private arm(): Promise<void> {
    return this.live.setWatchpoints(this.slots.map((s) => s?.watch ?? null));
  }
}
