// What ctx.watch() returns: a hardware watchpoint the host set on a variable of the guest (a
// global of the attached BPF scheduler, or a kernel global as `kernel.<symbol>`). Every write
// to it is caught on the host with the writer's context — CPU, task, RIP symbolized, the new
// value — and, with `onWrite: 'capture'`, a capture of the whole guest at that moment.

import { Snapshot } from './snapshot.js';
import type { WatchData, WatchHitData, WatchMode } from './capture.js';
export type { WatchData, WatchHitData, WatchMode } from './capture.js';

export interface WatchOptions {
  /** 'capture' (default): a capture of the guest with each of the first writes; 'record': the writer's context only (cheaper). */
  onWrite?: WatchMode;
}

/** One caught write; `snapshot` is the guest at that moment (onWrite 'capture', the first 16 writes). */
export interface WatchHit extends Omit<WatchHitData, 'snapshot'> {
  snapshot?: Snapshot;
}

/** How a Watch reaches the host (supplied by the guest runtime). */
export interface WatchChannel {
  hits(id: number): Promise<{ watch: WatchData; hits: WatchHitData[] }>;
  unwatch(id: number): Promise<WatchData>;
}

export class Watch {
  constructor(
    private data: WatchData,
    private readonly channel: WatchChannel,
  ) {}

  /** As the test named it. */
  get target(): string {
    return this.data.target;
  }
  /** Where the host found it: `scx_ktst.bss.nr_weight_sets` (map name, path). */
  get resolved(): string {
    return this.data.resolved;
  }
  /** Kernel virtual address, hex. */
  get address(): string {
    return this.data.address;
  }
  get size(): number {
    return this.data.size;
  }

  /** The writes caught so far (the first 256; `count()` has them all), oldest first. */
  async hits(): Promise<WatchHit[]> {
    const r = await this.channel.hits(this.data.id);
    this.data = r.watch;
    return r.hits.map(({ snapshot, ...hit }) =>
      snapshot === undefined ? hit : { ...hit, snapshot: new Snapshot(snapshot) },
    );
  }

  /** How many writes were caught so far. */
  async count(): Promise<number> {
    this.data = (await this.channel.hits(this.data.id)).watch;
    return this.data.hits;
  }

  /** Takes the watchpoint off (its hits stay readable). */
  async stop(): Promise<void> {
    this.data = await this.channel.unwatch(this.data.id);
  }
}
