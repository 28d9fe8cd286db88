// Worker start-up, unbundled vs bundled vCPU worker: milliseconds from `new Worker` to the
// worker's first message or error, for a one-line ESM worker (baseline), the compiled vCPU
// worker (dist/src/vmm/vcpu-worker.js, 14 modules) and its one-file bundle
// (vcpu-worker.bundle.cjs, written by `npm run build:ts`). The vCPU workers get a bogus vCPU fd
// (-1) in their attach message: they load, run it, post their 'done' message and fail — no KVM needed. Runs
// alternate between the cases; medians of KTSTR_BENCH_RUNS starts each (default 15).
// Run: `node dist/test/build/worker-start.bench.js` (inside the test host:
// `flock /tmp/ktstr-testhost.lock ./bin/ktstr-wasm host run -- node dist/test/build/worker-start.bench.js`).
// Prints a table; asserts nothing (a worker that neither messages nor fails ends the bench with 1).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { VCPU_WORKER } from '../../src/build/bundles.js';
const VCPU_WORKER_BUNDLE = VCPU_WORKER.bundle;
const VCPU_WORKER_ENTRY = VCPU_WORKER.entry;

const RUNS = Math.max(1, Number(process.env.KTSTR_BENCH_RUNS ?? 15));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Milliseconds from `new Worker(file)` to its first message or error; resolves once it has exited. */
function timeOnce(file: string): Promise<number> {
  const input = { vcpuId: 0, vcpuFd: -1, vmFd: -1, mmapSize: 4096, control: new SharedArrayBuffer(32), events: new SharedArrayBuffer(12), serials: [], ports: new SharedArrayBuffer(8) };
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ms: number | undefined;
    const first = (): void => { ms ??= performance.now() - t0; };
    const w = new Worker(file);
    // a vCPU worker waits for its attach (the baseline ignores it)
    w.postMessage({ type: 'attach', input, port: port2 }, [port2]);
    const timer = setTimeout(() => void w.terminate(), 30_000);
    w.on('message', first);
    port1.on('message', first);
    w.on('error', first);
    w.on('exit', () => {
      clearTimeout(timer);
      port1.close();
      if (ms === undefined) reject(new Error(`${file}: exited without a message or an error`));
      else resolve(ms);
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'ktstr-worker-start-'));
const empty = join(dir, 'empty.mjs');
writeFileSync(empty, "import { parentPort } from 'node:worker_threads';\nparentPort.postMessage(0);\n");
const CASES = [
  { name: 'one-line ESM worker (baseline)', file: empty },
  { name: 'vcpu-worker.js (14 modules)', file: VCPU_WORKER_ENTRY },
  { name: 'vcpu-worker.bundle.cjs (1 module)', file: VCPU_WORKER_BUNDLE },
];
const samples = CASES.map(() => [] as number[]);
try {
  for (const c of CASES) await timeOnce(c.file); // one untimed round warms the file cache
  for (let i = 0; i < RUNS; i++) for (const [k, c] of CASES.entries()) samples[k].push(await timeOnce(c.file));
} catch (err) {
  process.stderr.write(`worker-start bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (process.exitCode !== 1) {
  const base = median(samples[0]);
  const header = ['worker', 'median ms', 'min ms', 'over baseline ms', 'x baseline'];
  const rows = CASES.map((c, k) => {
    const m = median(samples[k]);
    return [c.name, m.toFixed(1), Math.min(...samples[k]).toFixed(1), (m - base).toFixed(1), (m / base).toFixed(2)];
  });
  console.log(`Worker start, new Worker to first message/error: median of ${RUNS} starts each (${process.version}, ${process.env.KTSTR_IN_TEST_HOST === '1' ? 'inside the test host' : 'this machine'})\n`);
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
  console.log(line(header));
  console.log(width.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  const unbundled = median(samples[1]);
  const bundled = median(samples[2]);
  console.log(`\nbundle vs unbundled: ${(unbundled - bundled).toFixed(1)} ms less per worker start (${(bundled / unbundled).toFixed(2)}x)`);
}
