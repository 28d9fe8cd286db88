// Warm vCPU threads. Every vCPU runs on a Node worker thread (vcpu-worker.ts), and a worker
// is dear to start: ~25 ms natively, ~0.4 s under nested emulation, and a VM's vCPUs start
// together, so a 4-vCPU VM waited ~1.9 s for its threads in the test host. A thread whose
// run has ended cleanly is kept here, idle, and handed to the next VM of this thread of the
// process (a sweep's or a test suite's cells run one after another on their pool threads);
// `prestartVcpuThreads` begins starting the threads a VM will need while the caller still
// prepares it (kernel, initramfs, guest RAM). An idle thread holds no fd and no VM: each
// attach brings its own (vcpu-worker.ts); it is unref'd, so it never keeps the process
// alive, and it ends after IDLE_MS unused. `closeIdleVcpuThreads` ends them all at once.

import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const WORKER_BUNDLE = new URL('./vcpu-worker.bundle.cjs', import.meta.url);
const WORKER_MODULE = new URL('./vcpu-worker.js', import.meta.url);
/** An idle thread unused this long ends (its isolate's memory goes back). */
const IDLE_MS = 30_000;
/** At most this many idle threads are kept (a 252-vCPU VM's threads are not all worth keeping). */
const MAX_IDLE = 64;

/**
 * The vCPU thread's code: vcpu-worker.ts and its imports bundled into one script at build time
 * (src/build/bundles.ts, esbuild; a worker starts faster from one script than from fourteen modules),
 * while that is at least as new as the compiled module — after a bare `tsc`, the module itself.
 */
function vcpuWorkerUrl(): URL {
  const mtime = (u: URL): number => {
    try {
      return statSync(u).mtimeMs;
    } catch {
      return -1;
    }
  };
  const module = mtime(WORKER_MODULE);
  if (module < 0) throw new Error(`the vCPU worker ${fileURLToPath(WORKER_MODULE)} is missing: run \`npm run build\``);
  return mtime(WORKER_BUNDLE) >= module ? WORKER_BUNDLE : WORKER_MODULE;
}

interface IdleThread {
  worker: Worker;
  timer: NodeJS.Timeout | undefined;
}

const idle: IdleThread[] = [];

/** Takes `worker` off the idle list (if it is there). */
function unpark(worker: Worker): void {
  const i = idle.findIndex((t) => t.worker === worker);
  if (i >= 0) idle.splice(i, 1);
}

function spawn(): Worker {
  const w = new Worker(vcpuWorkerUrl());
  // a thread that fails or dies while idle (it should not) just leaves the pool; while a VM
  // holds it, the VM's own listeners report it
  w.on('error', () => undefined);
  w.once('exit', () => unpark(w));
  return w;
}

function park(worker: Worker): void {
  worker.unref();
  const entry: IdleThread = { worker, timer: undefined };
  entry.timer = setTimeout(() => {
    unpark(worker);
    void worker.terminate();
  }, IDLE_MS);
  entry.timer.unref();
  idle.push(entry);
}

/** A vCPU thread for a VM: a warm one when there is one, else a new one (its script may still be loading: an attach waits for it). */
export function takeVcpuThread(): Worker {
  const entry = idle.pop();
  if (entry === undefined) return spawn();
  clearTimeout(entry.timer);
  entry.worker.ref();
  return entry.worker;
}

/** Gives back a thread whose run ended with its `done` message (never one that failed or was terminated). */
export function returnVcpuThread(worker: Worker): void {
  if (idle.length >= MAX_IDLE || worker.threadId < 0) {
    void worker.terminate();
    return;
  }
  park(worker);
}

/** Starts threads now, in the background, until `count` are idle (capped at MAX_IDLE): a VM about to be created takes them. */
export function prestartVcpuThreads(count: number): void {
  while (idle.length < Math.min(count, MAX_IDLE)) park(spawn());
}

/** Idle threads kept now. */
export function idleVcpuThreads(): number {
  return idle.length;
}

/** Ends every idle thread; resolves when they have exited. */
export async function closeIdleVcpuThreads(): Promise<void> {
  const all = idle.splice(0);
  for (const t of all) clearTimeout(t.timer);
  await Promise.all(all.map((t) => t.worker.terminate()));
}
