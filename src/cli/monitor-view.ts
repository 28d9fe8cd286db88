// `shell --monitor`: the host monitor of a shell's guest as a live per-CPU table (redrawn in
// place like top; q or Ctrl-C quits) on a terminal, or one table per second as plain text
// elsewhere (e.g. through the test host). It locates the guest kernel once the guest has
// booted far enough (retrying), then draws each sample of a MonitorSession.

import { MonitorSession, type MonitorSample } from '../cell/monitor-session.js';
import type { KernelImage } from '../monitor/kernel-image.js';
import type { LiveVm } from '../vmm/index.js';
import type { CpuPlace } from '../monitor/sched-domains.js';

const RETRY_MS = 1000;

/** The table for one sample: a header line, then one row per CPU. */
export function monitorTable(s: MonitorSample, intervalMs: number): string {
  const head = `ktstr-wasm monitor  t=${(s.t / 1000).toFixed(1)}s  every ${intervalMs} ms  sched_ext: ${s.scx ?? '-'}${s.ops ? ` (${s.ops})` : ''}`;
  const rows = [' CPU   nr  cfs  scx  dsq  running                    runnable  longest wait'];
  for (const c of s.cpus) {
    const running = c.pid === null ? '?' : c.pid === 0 ? '(idle)' : `${c.comm ?? ''} [${c.pid}]`;
    const wait = c.waitMs === null ? '-' : `${c.waitMs.toFixed(0)} ms (pid ${c.waitPid})`;
    rows.push(
      `${String(c.cpu).padStart(4)} ${String(c.nr).padStart(4)} ${String(c.cfs).padStart(4)} ${String(c.scx).padStart(4)} ${String(c.dsq).padStart(4)}  ${running.slice(0, 26).padEnd(26)} ${String(c.runnable).padStart(8)}  ${wait}`,
    );
  }
  return [head, ...rows].join('\n') + '\n';
}

export class MonitorView {
  private session: MonitorSession | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private draw: ReturnType<typeof setInterval> | null = null;
  private stopped = false;

  constructor(
    private readonly o: {
      intervalMs: number;
      places: CpuPlace[];
      kernel: KernelImage;
      out: NodeJS.WriteStream;
      live: boolean;
    },
  ) {}

  /** Starts locating the guest kernel (retrying until it has booted), then draws. */
  start(vm: LiveVm): void {
    const attempt = async (): Promise<void> => {
      if (this.stopped) return;
      const s = new MonitorSession(this.o.intervalMs, this.o.places);
      await s.start(vm, this.o.kernel);
      if (this.stopped) {
        s.stop();
        return;
      }
      if (s.kernel === null) {
        s.stop();
        this.timer = setTimeout(() => void attempt(), RETRY_MS);
        return;
      }
      this.session = s;
      this.draw = setInterval(() => this.redraw(), this.o.live ? Math.max(this.o.intervalMs, 200) : 1000);
    };
    this.timer = setTimeout(() => void attempt(), RETRY_MS);
  }

  private redraw(): void {
    const s = this.session?.latest();
    if (s === undefined) return;
    const table = monitorTable(s, this.o.intervalMs);
    this.o.out.write(this.o.live ? `\x1b[H\x1b[2J${table}(q quits)\n` : table);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.draw !== null) clearInterval(this.draw);
    this.session?.stop();
  }
}
