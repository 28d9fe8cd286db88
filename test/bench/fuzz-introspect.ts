// `npm run fuzz:introspect [-- --inputs N --seed S --workers W --budget-ms B --watchdog-s T]`:
// the introspection core's fuzzer (test/introspect/fuzz-core.ts) over >= 1 M inputs across
// every exported walk. The inputs run in worker threads, each shard starting at an epoch
// boundary so any input is reproducible from (seed, index); this thread is the watchdog: a
// worker whose input counter has not moved for T seconds is stopped, the input it was on is
// reported as a hang, and the shard resumes at the next epoch. Prints inputs/s, traps, bound
// violations, calls over the per-call budget (B ms) and hangs; exits 1 when any occurred.
// `--hang-at I` makes input I loop forever, to see the watchdog catch it.

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { CALLS, EPOCH, fuzzCore, type FuzzFinding, type FuzzReport } from '../introspect/fuzz-core.js';

interface Shard {
  seed: number;
  first: number;
  count: number;
  budgetMs: number;
  hangAt: number;
  progress: SharedArrayBuffer;
}

if (!isMainThread) {
  const s = workerData as Shard;
  const beforeInput = (i: number): void => {
    while (i === s.hangAt);
  };
  const progress = new Int32Array(s.progress);
  // epoch by epoch, each reported as it ends: a hang later loses nothing already run
  for (let first = s.first, done = 0; first < s.first + s.count;) {
    const count = Math.min(s.first + s.count, (Math.floor(first / EPOCH) + 1) * EPOCH) - first;
    const chunk = new Int32Array(2);
    const report = fuzzCore({
      seed: s.seed,
      first,
      count,
      budgetMs: s.budgetMs,
      progress: chunk,
      beforeInput: (i) => {
        Atomics.store(progress, 0, done + i - first);
        Atomics.store(progress, 1, Atomics.load(chunk, 1));
        beforeInput(i);
      },
    });
    parentPort!.postMessage(report);
    first += count;
    done += count;
  }
  parentPort!.postMessage('done');
} else {
  await main();
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name}: not a number: ${process.argv[i + 1]}`);
  return v;
}

/** Runs one shard to its end, restarting after a hang; resolves with its reports and hangs. */
function runShard(
  shard: Omit<Shard, 'progress'>,
  watchdogMs: number,
): Promise<{ reports: FuzzReport[]; hangs: FuzzFinding[] }> {
  const reports: FuzzReport[] = [];
  const hangs: FuzzFinding[] = [];
  return new Promise((resolve, reject) => {
    const start = (first: number): void => {
      const end = shard.first + shard.count;
      if (first >= end) {
        resolve({ reports, hangs });
        return;
      }
      const progress = new SharedArrayBuffer(8);
      const counter = new Int32Array(progress);
      const worker = new Worker(new URL(import.meta.url), {
        workerData: { ...shard, first, count: end - first, progress },
      });
      let last = -1;
      let lastMove = Date.now();
      const timer = setInterval(() => {
        const done = Atomics.load(counter, 0);
        if (done !== last) {
          last = done;
          lastMove = Date.now();
          return;
        }
        if (Date.now() - lastMove < watchdogMs) return;
        clearInterval(timer);
        const input = first + done;
        hangs.push({
          kind: 'hang',
          input,
          call: CALLS[Atomics.load(counter, 1)],
          detail: `no progress for ${watchdogMs / 1000} s: worker stopped`,
        });
        void worker.terminate();
        start((Math.floor(input / EPOCH) + 1) * EPOCH);
      }, 250);
      worker.on('message', (r: FuzzReport | 'done') => {
        if (r !== 'done') {
          reports.push(r);
          return;
        }
        clearInterval(timer);
        void worker.terminate();
        resolve({ reports, hangs });
      });
      worker.once('error', (err) => {
        clearInterval(timer);
        reject(err);
      });
    };
    start(shard.first);
  });
}

async function main(): Promise<void> {
  const inputs = arg('inputs', 1_000_000);
  const seed = arg('seed', 20240611) >>> 0;
  const workers = Math.max(1, arg('workers', Math.min(4, availableParallelism())));
  const budgetMs = arg('budget-ms', 250);
  const watchdogMs = arg('watchdog-s', 30) * 1000;
  const hangAt = arg('hang-at', -1);
  // shards of whole epochs
  const epochs = Math.ceil(inputs / EPOCH);
  const per = Math.ceil(epochs / workers);
  const shards: Omit<Shard, 'progress'>[] = [];
  for (let w = 0; w < workers; w++) {
    const first = w * per * EPOCH;
    const count = Math.min(inputs, (w + 1) * per * EPOCH) - first;
    if (count > 0) shards.push({ seed, first, count, budgetMs, hangAt });
  }
  console.log(
    `fuzz:introspect seed ${seed}: ${inputs} inputs in ${shards.length} worker(s), call budget ${budgetMs} ms, watchdog ${watchdogMs / 1000} s`,
  );
  const t0 = performance.now();
  const results = await Promise.all(shards.map((s) => runShard(s, watchdogMs)));
  const secs = (performance.now() - t0) / 1000;
  const reports = results.flatMap((r) => r.reports);
  const hangs = results.flatMap((r) => r.hangs);
  const total = reports.reduce((n, r) => n + r.inputs, 0);
  const sum = (k: 'traps' | 'violations' | 'slow'): number => reports.reduce((n, r) => n + r[k], 0);
  console.log(
    `\n${total} inputs in ${secs.toFixed(1)} s: ${Math.round(total / secs)} inputs/s (${Math.round(total / secs / shards.length)} per worker)`,
  );
  console.log(
    `traps ${sum('traps')}, bound violations ${sum('violations')}, calls over ${budgetMs} ms ${sum('slow')}, hangs (watchdog) ${hangs.length}\n`,
  );
  console.log(`${'call'.padEnd(16)}${'calls'.padStart(10)}${'mean us'.padStart(10)}${'max ms'.padStart(10)}`);
  for (const c of CALLS) {
    const calls = reports.reduce((n, r) => n + r.perCall[c].calls, 0);
    const ms = reports.reduce((n, r) => n + r.perCall[c].ms, 0);
    const max = reports.reduce((m, r) => Math.max(m, r.perCall[c].maxMs), 0);
    console.log(
      `${c.padEnd(16)}${String(calls).padStart(10)}${(calls > 0 ? (ms * 1000) / calls : 0).toFixed(1).padStart(10)}${max.toFixed(1).padStart(10)}`,
    );
  }
  const flags = [0, 1, 2, 3, 4, 5].map((b) => reports.reduce((n, r) => n + r.rqFlags[b], 0));
  const tasks = reports.reduce((n, r) => n + r.rqTasks, 0);
  const progs = reports.reduce((n, r) => n + r.structOps, 0);
  console.log(
    `\ncoverage: runqueue records READ ${flags[0]}, CURR ${flags[1]}, SCX ${flags[2]}, LIST_TRUNCATED ${flags[3]}, LIST_BROKEN ${flags[4]}, NO_CPU ${flags[5]}; ${tasks} runnable tasks walked; ${progs} struct_ops programs found`,
  );
  const findings = [...hangs, ...reports.flatMap((r) => r.findings)];
  if (findings.length > 0) {
    console.log('\nfindings (input index; reproduce with --seed and an epoch start at or below it):');
    for (const f of findings.slice(0, 40))
      console.log(
        `  ${f.kind.padEnd(6)} input ${f.input} (epoch ${Math.floor(f.input / EPOCH)}) ${f.call}: ${f.detail}`,
      );
  }
  process.exitCode = sum('traps') + sum('violations') + hangs.length > 0 ? 1 : 0;
}
