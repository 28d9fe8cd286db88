// The worker threads that will run vCPUs, started before their VM exists: a Node worker takes
// ~25 ms to start natively and ~0.35 s in the emulated test host, so bootVm (and `shell`, even
// earlier) starts them first and they load while the kernel is read, guest RAM is set up and the
// VM is created. Each thread gets its vCPU later, in its first message (vcpu-worker.ts). The
// code they run is vcpu-worker.ts linked with its imports into one script at build time
// (src/build/esm-link.ts): a worker starts faster from one script than from fourteen modules.
//
// Threads not handed to a VM are terminated by close(); a VM's threads are stopped by the VM.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export const VCPU_WORKER_URL = new URL('./vcpu-worker.bundle.cjs', import.meta.url);

/** One started thread, and what happened to it before a VM took it. */
export interface StartedThread {
  readonly worker: Worker;
  /** The first error the thread raised (e.g. its script failed to load). */
  error?: Error;
  /** Set when the thread has ended. */
  exited: boolean;
}

export class VcpuThreads {
  private readonly free: StartedThread[];
  private closing: Promise<void> | undefined;

  private constructor(readonly count: number) {
    if (!existsSync(VCPU_WORKER_URL)) throw new Error(`the vCPU worker bundle ${fileURLToPath(VCPU_WORKER_URL)} is missing: run \`npm run build\``);
    this.free = Array.from({ length: count }, () => {
      const t: StartedThread = { worker: new Worker(VCPU_WORKER_URL), exited: false };
      // listened for from the start: an 'error' nobody listens to would throw in this process
      t.worker.on('error', (e) => { t.error ??= e; });
      t.worker.on('exit', () => { t.exited = true; });
      return t;
    });
  }

  /** Starts `count` threads (1..1024). */
  static start(count: number): VcpuThreads {
    if (!Number.isInteger(count) || count < 1 || count > 1024) throw new RangeError(`vCPU thread count must be 1..1024, got ${count}`);
    return new VcpuThreads(count);
  }

  /** Hands all threads to a VM of `count` vCPUs, which then owns them (and stops them). */
  take(count: number): StartedThread[] {
    if (this.closing !== undefined) throw new Error('these vCPU threads were closed');
    if (this.free.length !== count) throw new RangeError(`${this.free.length} vCPU threads started, the VM has ${count} vCPUs`);
    return this.free.splice(0);
  }

  /** Terminates the threads no VM took; resolves when they have ended. Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.free.splice(0).map((t) => t.worker.terminate())).then(() => undefined);
    return this.closing;
  }
}
