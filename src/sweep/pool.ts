// Cells on worker threads (piscina): at most `jobs` at once, each on its own thread with its
// own VM. `abortAll()` asks every running cell to end its VM (the cell then reports
// `interrupted`) and drops the queued ones; `close()` waits for the threads to exit.

import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { availableParallelism, freemem, totalmem } from 'node:os';
import { Piscina } from 'piscina';
import type { CellSpec } from '../cell/run-cell.js';
import type { CellResult } from '../cell/result.js';
import type { CellPortMessage, CellTask } from './cell-worker.js';

const WORKER_FILE = fileURLToPath(new URL('./cell-worker.js', import.meta.url));
/** Host memory a cell takes beside its guest RAM: Node worker, vCPU threads, the initramfs copies. */
export const CELL_HOST_OVERHEAD_MIB = 640;

/** Default --jobs: one cell per host CPU, no more than host memory holds. */
export function defaultJobs(
  cellGuestMiB: number,
  cpus = availableParallelism(),
  memBytes = Math.min(totalmem(), freemem() * 1.5),
): number {
  const byMemory = Math.floor(memBytes / ((cellGuestMiB + CELL_HOST_OVERHEAD_MIB) * 2 ** 20));
  return Math.max(1, Math.min(cpus, byMemory));
}

export class CellPool {
  private readonly pool: Piscina<CellTask, CellResult>;
  private readonly ports = new Set<MessagePort>();
  private aborted = false;

  constructor(readonly jobs: number) {
    this.pool = new Piscina<CellTask, CellResult>({
      filename: WORKER_FILE,
      minThreads: 0,
      maxThreads: jobs,
      idleTimeout: 500,
      atomics: 'disabled',
    });
  }

  /** Runs a cell; `onPhase` gets its phases. Resolves null when the pool was aborted before it started. */
  async run(spec: CellSpec, onPhase: (phase: string) => void): Promise<CellResult | null> {
    if (this.aborted) return null;
    const { port1, port2 } = new MessageChannel();
    this.ports.add(port1);
    let started = false;
    port1.on('message', (m: CellPortMessage) => {
      if (m.type === 'phase') {
        started = true;
        onPhase(m.phase);
      }
    });
    try {
      const result = await this.pool.run({ spec, port: port2 }, { transferList: [port2] });
      return this.aborted && !started ? null : result;
    } finally {
      this.ports.delete(port1);
      port1.close();
    }
  }

  abortAll(): void {
    this.aborted = true;
    for (const p of this.ports) p.postMessage({ type: 'abort' });
    // queued tasks start, see the abort flag through their port at once, and return quickly
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
