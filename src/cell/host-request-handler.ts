// The host's side of a test body's requests (src/guest/agent/host-requests.ts is the guest's):
// each request is hostile input, checked here, then answered from the monitor — a capture
// (every vCPU held for the read), a write of a scheduler global, a hardware watch set,
// read or taken off. Reads that hold every vCPU run one at a time, captures and watch hits alike.

import type { HostRequest } from '../guest/plan.js';
import type { WatchMode, WatchSummary } from '../test-api/capture.js';
import type { LiveVm } from '../vmm/index.js';
import type { DebugSlots } from './debug-slots.js';
import type { MonitorSession } from './monitor-session.js';
import { WatchSession } from './watch-session.js';

const MAX_NAME = 200;

export class HostRequestHandler {
  private watches: WatchSession | null = null;
  private held: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly live: LiveVm,
    private readonly monitor: MonitorSession,
    private readonly slots: DebugSlots,
  ) {}

  /** The answer to `request` (JSON-able); throws with a message for the test body. */
  async answer(request: unknown): Promise<unknown> {
    const r = request as Partial<HostRequest> | null;
    if (typeof r !== 'object' || r === null) throw new Error('malformed request');
    if (this.monitor.kernel === null)
      throw new Error(this.monitor.error ?? 'the host monitor has not located the guest kernel yet');
    switch (r.kind) {
      case 'capture':
        if (typeof r.label !== 'string' || r.label.length > 128) throw new Error('capture: malformed label');
        return this.exclusive((pauseMs) => this.monitor.capture(r.label!, pauseMs));
      case 'write-var':
        if (!isName(r.name) || (typeof r.value !== 'number' && typeof r.value !== 'string'))
          throw new Error('write-var: malformed request');
        return { written: this.monitor.writeVar(r.name, r.value) };
      case 'watch':
        if (!isName(r.target) || (r.onWrite !== 'capture' && r.onWrite !== 'record'))
          throw new Error('watch: malformed request');
        return this.watchSession().add(r.target, r.onWrite as WatchMode);
      case 'watch-hits':
        if (!Number.isSafeInteger(r.id)) throw new Error('watch-hits: malformed request');
        return this.watchSession().hits(r.id!);
      case 'unwatch':
        if (!Number.isSafeInteger(r.id)) throw new Error('unwatch: malformed request');
        return this.watchSession().remove(r.id!);
      default:
        throw new Error(`unknown request kind ${JSON.stringify(r.kind)?.slice(0, 40)}`);
    }
  }

  /** The cell's watches (empty when the body set none). */
  watchSummary(): WatchSummary[] {
    return this.watches?.summary() ?? [];
  }

  private watchSession(): WatchSession {
    this.watches ??= new WatchSession(this.slots, this.monitor, (read) => this.exclusive(read));
    return this.watches;
  }

  /** Runs `read` with every vCPU held (one such read at a time); passes how long the hold took, ms. */
  private exclusive<T>(read: (pauseMs: number) => T): Promise<T> {
    const run = this.held.then(async () => {
      const pauseMs = await this.live.pause();
      try {
        return read(pauseMs);
      } finally {
        this.live.resume();
      }
    });
    this.held = run.catch(() => undefined);
    return run;
  }
}

function isName(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME;
}
