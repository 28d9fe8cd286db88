// `npm run bench:sweep` (here: `ktstr-wasm host run -- npm run bench:sweep`): the seed's healthy
// 4-cell sweep (scx-ktstr on tiny-1llc, tiny-2llc, odd-3llc, smt-2llc, the prebuilt kernel),
// in one run:
//   ours --jobs 1        `ktstr-wasm sweep` as a user runs it, from spawn to exit
//   ours --jobs <CPUs>   the same, cells in parallel
//   QEMU                 the same 4 cells one after another with QEMU as the VMM
//                        (test/bench/qemu-cell.ts: same kernel, initramfs, agent, verdict)
// Prints wall times and the ratio ours/QEMU (the goal: below 1), the time from process start
// to the first attach, each cell's phases (boot, agent ready, verify, attach, probe,
// teardown) and the host RSS after each cell.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { defaultKernelsDir, findOnPath } from '../../src/host/paths.js';
import { parseSweepResult } from '../../src/sweep/json.js';
import type { SweepResult } from '../../src/sweep/result.js';
import { buildMatrix } from '../../src/sweep/matrix.js';
import { loadRegistry } from '../../src/scheduler/registry.js';
import { cellSpec } from '../../src/sweep/run.js';
import { buildMissingFixtures } from '../../src/sweep/fixtures.js';
import { runCellInQemu, type QemuCellResult } from './qemu-cell.js';

const PRESETS = ['tiny-1llc', 'tiny-2llc', 'odd-3llc', 'smt-2llc'];
const kernelDir = join(defaultKernelsDir() ?? '', '6.12.117-sched_ext');
const bin = join(packageRoot(), 'bin', 'ktstr-wasm');
const qemu = findOnPath('qemu-system-x86_64');

if (!existsSync(join(kernelDir, 'bzImage')) || !existsSync('/dev/kvm') || qemu === undefined) {
  console.log('bench:sweep: SKIPPED — needs /dev/kvm (run it inside the test host), QEMU and the prebuilt kernel');
  process.exit(0);
}

interface OursRun { wallMs: number; result: SweepResult; firstAttachMs: number }

async function ours(jobs: number): Promise<OursRun> {
  const tmp = mkdtempSync(join(tmpdir(), 'ktstr-bench-sweep-'));
  try {
    const json = join(tmp, 'r.json');
    const spawnedAt = Date.now();
    const t0 = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [bin, 'sweep', '--scheduler', 'scx-ktstr', '--kernel', kernelDir, ...PRESETS, '--jobs', String(jobs), '--json', json], { stdio: ['ignore', 'ignore', 'inherit'] });
      child.on('exit', resolve);
    });
    const wallMs = performance.now() - t0;
    const result = parseSweepResult(readFileSync(json, 'utf8'), json);
    if (code !== 0) console.log(`  (sweep exit ${code})`);
    // the run's cells start at startedAt; a cell attaches after its boot, verify and attach phases
    const startOffset = Date.parse(result.startedAt) - spawnedAt;
    const attach = result.cells.map((c) => (c.phases.boot ?? NaN) + (c.phases.verify ?? 0) + (c.phases.attach ?? 0));
    // --jobs 1 runs the cells in matrix order: the first attach is the first cell's; with more
    // jobs the first cells start together, and the earliest attach is the first
    const first = jobs === 1 ? attach[0] : Math.min(...attach.filter((x) => !Number.isNaN(x)));
    return { wallMs, result, firstAttachMs: startOffset + first };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const s = (ms: number | undefined): string => (ms === undefined || Number.isNaN(ms) ? '-' : (ms / 1000).toFixed(1));

const cells = buildMatrix({ registry: loadRegistry(), schedulers: ['scx-ktstr'], kernels: [kernelDir], presets: PRESETS, topologies: [] });
await buildMissingFixtures(cells, (m) => console.log(m));
const ready = buildMatrix({ registry: loadRegistry(), schedulers: ['scx-ktstr'], kernels: [kernelDir], presets: PRESETS, topologies: [] });

const cpus = availableParallelism();
console.log(`bench:sweep: ${PRESETS.length} cells (scx-ktstr x ${PRESETS.join(', ')}), ${cpus} CPUs here`);
const one = await ours(1);
const many = cpus > 1 ? await ours(cpus) : undefined;
const q: QemuCellResult[] = [];
const tq = performance.now();
for (const c of ready) q.push(await runCellInQemu(cellSpec(c, false), { qemu, bzImage: join(kernelDir, 'bzImage') }));
const qemuWall = performance.now() - tq;

console.log('\nwall time (s)');
console.log(`  ours --jobs 1            ${s(one.wallMs)}   (${one.result.cells.filter((c) => c.passed).length}/${one.result.cells.length} passed)`);
if (many) console.log(`  ours --jobs ${cpus}            ${s(many.wallMs)}   (${many.result.cells.filter((c) => c.passed).length}/${many.result.cells.length} passed)`);
console.log(`  QEMU, one after another  ${s(qemuWall)}   (${q.filter((r) => r.passed).length}/${q.length} passed${q.some((r) => !r.passed) ? `: ${q.filter((r) => !r.passed).map((r) => r.reason).join('; ')}` : ''})`);
console.log(`  ratio ours --jobs 1 / QEMU: ${(one.wallMs / qemuWall).toFixed(2)}${many ? `; ours --jobs ${cpus} / QEMU: ${(many.wallMs / qemuWall).toFixed(2)}` : ''}`);
console.log(`\nprocess start to first attach: ours ${s(one.firstAttachMs)} s; QEMU (from spawn, first cell) ${s(q[0]?.attachMs)} s`);
console.log('\nper cell, ours --jobs 1 (s): boot = to the agent\'s hello; agent = Node start in the guest; then verify, attach, probe, teardown');
console.log('  cell          boot  agent  verify  attach  probe  teardown  wall   host RSS   | QEMU hello  attach  wall');
one.result.cells.forEach((c, i) => {
  const p = c.phases;
  const rss = c.hostRssBytes === null ? '-' : `${(c.hostRssBytes / 2 ** 20).toFixed(0)} MiB`;
  console.log(`  ${c.topology.padEnd(12)}  ${s(p.boot).padStart(4)}  ${s(p.agentReady).padStart(5)}  ${s(p.verify).padStart(6)}  ${s(p.attach).padStart(6)}  ${s(p.probe).padStart(5)}  ${s(p.teardown).padStart(8)}  ${s(c.wallMs).padStart(5)}  ${rss.padStart(8)}   | ${s(q[i]?.helloMs).padStart(10)}  ${s(q[i]?.attachMs).padStart(6)}  ${s(q[i]?.wallMs).padStart(5)}`);
});
