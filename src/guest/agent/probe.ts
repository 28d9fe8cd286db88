// The dispatch probe: one spinning worker thread per online CPU, each pinned to its CPU and
// switched to SCHED_EXT with sched_setattr (through the native binding), counting loop
// iterations into shared memory. The count is sampled when every worker runs and again after
// the probe window, so only progress made while the scheduler is attached counts.

import { Worker } from 'node:worker_threads';
import type { WorkerReport } from '../../cell/result.js';

export const SCHED_EXT_POLICY = 7;

/** Per worker in the shared array: [iterations, cpu time ns, policy, ready]. */
const SLOTS = 4;

/** The worker's code (CommonJS, evaluated): no imports but the native addon. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { addon, index, cpu, policy, shared } = workerData;
const n = require(addon);
const slots = new Float64Array(shared, 8, ${SLOTS} * workerData.count);
const stop = new Int32Array(shared, 0, 1);
const base = index * ${SLOTS};
try { n.schedSetaffinity(0, [cpu]); } catch (e) {}
try { n.schedSetattr(0, policy, 0); } catch (e) {}
let got = -1;
try { got = n.schedGetPolicy(0); } catch (e) {}
slots[base + 2] = got;
slots[base + 3] = 1;
let count = 0;
let x = 1;
while (Atomics.load(stop, 0) === 0) {
  for (let i = 0; i < 2048; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  count++;
  slots[base] = count;
  if ((count & 63) === 0) slots[base + 1] = Number(n.threadCpuTimeNs());
}
slots[base + 1] = Number(n.threadCpuTimeNs());
slots[base] = count + (x === 0.5 ? 1 : 0);
`;

export interface ProbeOptions {
  addon: string;
  cpus: number[];
  windowMs: number;
  /** Longest wait for every worker to start and switch. */
  startTimeoutMs: number;
  policy?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runProbe(o: ProbeOptions): Promise<{ workers: WorkerReport[]; ms: number }> {
  const count = o.cpus.length;
  const shared = new SharedArrayBuffer(8 + count * SLOTS * 8);
  const stop = new Int32Array(shared, 0, 1);
  const slots = new Float64Array(shared, 8, count * SLOTS);
  const workers = o.cpus.map((cpu, index) => new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { addon: o.addon, index, cpu, count, shared, policy: o.policy ?? SCHED_EXT_POLICY },
  }));
  const exited = workers.map((w) => new Promise<void>((r) => { w.on('exit', () => r()); w.on('error', () => r()); }));
  try {
    const deadline = performance.now() + o.startTimeoutMs;
    while (performance.now() < deadline && o.cpus.some((_, i) => slots[i * SLOTS + 3] !== 1)) await sleep(10);
    const startIter = o.cpus.map((_, i) => slots[i * SLOTS]);
    const startCpu = o.cpus.map((_, i) => slots[i * SLOTS + 1]);
    const t0 = performance.now();
    await sleep(o.windowMs);
    const ms = performance.now() - t0;
    const endIter = o.cpus.map((_, i) => slots[i * SLOTS]);
    const endCpu = o.cpus.map((_, i) => slots[i * SLOTS + 1]);
    return {
      ms,
      workers: o.cpus.map((cpu, i) => ({
        cpu,
        iterations: Math.max(0, endIter[i] - startIter[i]),
        cpuTimeNs: Math.max(0, endCpu[i] - startCpu[i]),
        policy: slots[i * SLOTS + 2],
      })),
    };
  } finally {
    Atomics.store(stop, 0, 1);
    await Promise.race([Promise.all(exited), sleep(2000)]);
    await Promise.all(workers.map((w) => w.terminate()));
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
