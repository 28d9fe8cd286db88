// The dispatch probe: one spinning worker thread per online CPU, each pinned to its CPU and
// switched to SCHED_EXT with sched_setattr (through the native binding), counting loop
// iterations into shared memory. The count is sampled when every worker runs and again after
// the probe window, so only progress made while the scheduler is attached counts.

import { Worker } from 'node:worker_threads';
import type { ProbeWorkerReport } from '../plan.js';

export const SCHED_EXT_POLICY = 7;

/** Per worker in the shared array: [iterations, cpu time ns, policy, ready, thread id]. */
const SLOTS = 5;
/** Control words: [0] go (workers switch to the policy and spin), [1] stop. */
const CONTROL_BYTES = 8;

/**
 * The worker's code (CommonJS, evaluated): no imports but the native addon. It starts, says
 * it is ready, sleeps until `go`, then pins itself, switches policy and spins until `stop`.
 */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { addon, index, cpu, policy, shared, count } = workerData;
const n = require(addon);
const control = new Int32Array(shared, 0, 2);
const slots = new Float64Array(shared, ${CONTROL_BYTES}, ${SLOTS} * count);
const base = index * ${SLOTS};
try { slots[base + 4] = n.gettid(); } catch (e) {}
slots[base + 3] = 1;
while (Atomics.load(control, 0) === 0 && Atomics.load(control, 1) === 0) Atomics.wait(control, 0, 0, 1000);
try { n.schedSetaffinity(0, [cpu]); } catch (e) {}
try { n.schedSetattr(0, policy, 0); } catch (e) {}
let got = -1;
try { got = n.schedGetPolicy(0); } catch (e) {}
slots[base + 2] = got;
const cpuNs = () => { try { return Number(n.threadCpuTimeNs()); } catch (e) { return 0; } };
let count2 = 0;
let x = 1;
while (Atomics.load(control, 1) === 0) {
  for (let i = 0; i < 2048; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  count2++;
  slots[base] = count2;
  if ((count2 & 63) === 0) slots[base + 1] = cpuNs();
}
slots[base + 1] = cpuNs();
slots[base] = count2 + (x === 0.5 ? 1 : 0);
`;

export interface ProbeOptions {
  addon: string;
  cpus: number[];
  policy?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The probe's workers, started early (a Node worker takes a while to start in a guest under
 * emulation) and parked until `run`: their start-up overlaps the scheduler's load.
 */
export class ProbeWorkers {
  private readonly shared: SharedArrayBuffer;
  private readonly control: Int32Array;
  private readonly slots: Float64Array;
  private readonly workers: Worker[];
  private readonly exited: Promise<void>[];

  constructor(private readonly o: ProbeOptions) {
    const count = o.cpus.length;
    this.shared = new SharedArrayBuffer(CONTROL_BYTES + count * SLOTS * 8);
    this.control = new Int32Array(this.shared, 0, 2);
    this.slots = new Float64Array(this.shared, CONTROL_BYTES, count * SLOTS);
    this.workers = o.cpus.map(
      (cpu, index) =>
        new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { addon: o.addon, index, cpu, count, shared: this.shared, policy: o.policy ?? SCHED_EXT_POLICY },
        }),
    );
    this.exited = this.workers.map(
      (w) =>
        new Promise<void>((r) => {
          w.on('exit', () => r());
          w.on('error', () => r());
        }),
    );
  }

  private slot(i: number, k: number): number {
    return this.slots[i * SLOTS + k];
  }

  /** Waits (bounded) for every worker to be ready, lets them go, and counts over `windowMs`. */
  async run(windowMs: number, startTimeoutMs: number): Promise<{ workers: ProbeWorkerReport[]; ms: number }> {
    const cpus = this.o.cpus;
    const deadline = performance.now() + startTimeoutMs;
    while (performance.now() < deadline && cpus.some((_, i) => this.slot(i, 3) !== 1)) await sleep(10);
    Atomics.store(this.control, 0, 1);
    Atomics.notify(this.control, 0);
    // every worker has switched (policy read back) or the start window is over
    while (performance.now() < deadline && cpus.some((_, i) => this.slot(i, 2) === 0 && this.slot(i, 0) === 0))
      await sleep(5);
    const startIter = cpus.map((_, i) => this.slot(i, 0));
    const startCpu = cpus.map((_, i) => this.slot(i, 1));
    const t0 = performance.now();
    await sleep(windowMs);
    const ms = performance.now() - t0;
    return {
      ms,
      workers: cpus.map((cpu, i) => ({
        cpu,
        iterations: Math.max(0, this.slot(i, 0) - startIter[i]),
        cpuTimeNs: Math.max(0, this.slot(i, 1) - startCpu[i]),
        policy: this.slot(i, 2),
        tid: this.slot(i, 4),
      })),
    };
  }

  async close(): Promise<void> {
    Atomics.store(this.control, 1, 1);
    Atomics.notify(this.control, 0);
    await Promise.race([Promise.all(this.exited), sleep(2000)]);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The online CPUs (/sys/devices/system/cpu/online, e.g. "0-3,5"). */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`bad CPU list "${text.trim()}"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi && out.length < 4096; c++) out.push(c);
  }
  return out;
}
