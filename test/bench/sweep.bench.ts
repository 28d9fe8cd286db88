// `npm run bench:sweep` — needs /dev/kvm, so here: `ktstr-wasm host run -- node
// dist/test/bench/sweep.bench.js`. The healthy 4-cell sweep (scx-ktstr on tiny-1llc,
// tiny-2llc, odd-3llc, smt-2llc, the prebuilt 6.12.117-sched_ext kernel) three ways in one run:
//   (a) `ktstr-wasm sweep --jobs 1 --json <tmp>` as a child process, timed from its spawn;
//   (b) the same with --jobs <CPUs> (KTSTR_BENCH_JOBS overrides; skipped on one CPU, where
//       it would repeat (a));
//   (c) the same 4 cells one after another with QEMU as the VMM (./qemu-cell.ts: same kernel
//       build, initramfs, agent, plan without the ring, verdict).
// Prints the wall times, the ratio ours/QEMU (goal: below 1), process start to the first
// attach, each cell's phases (boot, agentReady, verify, attach, probe, teardown), host RSS,
// and one `bench:sweep json` line with every figure.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultKernelsDir, findOnPath, packageRoot } from '../../src/host/paths.js';
import { parseSweepResult } from '../../src/sweep/json.js';
import type { SweepResult } from '../../src/sweep/result.js';
import { buildMatrix } from '../../src/sweep/matrix.js';
import { buildMissingFixtures } from '../../src/sweep/fixtures.js';
import { cellSpec } from '../../src/sweep/run.js';
import { loadRegistry } from '../../src/scheduler/registry.js';
import { AgentImageCache } from '../../src/guest/agent-initramfs.js';
import type { CellPhases } from '../../src/cell/result.js';
import { runCellInQemu, type QemuCellResult } from './qemu-cell.js';

const SCHEDULER = 'scx-ktstr';
/** KTSTR_BENCH_PRESETS=tiny-1llc: fewer cells while developing. */
const PRESETS = process.env.KTSTR_BENCH_PRESETS?.split(',') ?? ['tiny-1llc', 'tiny-2llc', 'odd-3llc', 'smt-2llc'];
const KERNEL =
  process.env.KTSTR_BENCH_KERNEL ?? join(defaultKernelsDir() ?? '/work/shared/kernels', '6.12.117-sched_ext');
const CLI = join(packageRoot(), 'bin', 'ktstr-wasm');
const qemu = findOnPath('qemu-system-x86_64');

if (!existsSync('/dev/kvm') || qemu === undefined || !existsSync(join(KERNEL, 'vmlinux'))) {
  console.log(
    `bench:sweep: skipped — needs /dev/kvm (run it inside the test host: ktstr-wasm host run -- node dist/test/bench/sweep.bench.js), qemu-system-x86_64 and ${KERNEL}`,
  );
  process.exit(0);
}

const sec = (ms: number | undefined | null): string =>
  ms === undefined || ms === null || Number.isNaN(ms) ? '-' : (ms / 1000).toFixed(1);
const mib = (b: number | null | undefined): string =>
  b === null || b === undefined ? '-' : `${Math.round(b / 2 ** 20)} MiB`;
const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

interface OursRun {
  jobs: number;
  exitCode: number | null;
  /** Spawn to exit. */
  wallMs: number;
  /** Spawn to the earliest attach of any cell (from the progress lines' arrival, below). */
  firstAttachMs: number | undefined;
  result: SweepResult | null;
}

/**
 * `ktstr-wasm sweep` as a user runs it. Without a terminal it prints one progress line per
 * finished cell, naming the cell; a cell attached (the agent's `probe` phase) exactly
 * probe + teardown before it ended, so its attach is the line's arrival minus those two
 * phases from the JSON (less a few ms of reporting, which makes it slightly late).
 */
async function ours(jobs: number): Promise<OursRun> {
  const tmp = mkdtempSync(join(tmpdir(), 'ktstr-bench-sweep-'));
  const json = join(tmp, 'result.json');
  try {
    const lineAt = new Map<string, number>();
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [
        CLI,
        'sweep',
        '--no-test-host',
        '--scheduler',
        SCHEDULER,
        '--kernel',
        KERNEL,
        ...PRESETS,
        '--jobs',
        String(jobs),
        '--json',
        json,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let pending = '';
    child.stderr.on('data', (d: Buffer) => {
      const now = performance.now() - t0;
      pending += d.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) {
        log(`    | ${l}`);
        const id = /^(?:PASS|FAIL) \[[^\]]*\] \(\s*\d+\/\d+\) (\S+)/.exec(l)?.[1];
        if (id !== undefined && !lineAt.has(id)) lineAt.set(id, now);
      }
    });
    const exitCode = await new Promise<number | null>((resolve) => {
      child.on('error', (e) => {
        log(`    cannot run ${CLI}: ${e.message}`);
        resolve(null);
      });
      child.on('close', (code) => resolve(code));
    });
    const wallMs = performance.now() - t0;
    let result: SweepResult | null = null;
    try {
      result = parseSweepResult(readFileSync(json, 'utf8'), json);
    } catch (e) {
      log(`    no JSON result: ${(e as Error).message}`);
    }
    const attaches = (result?.cells ?? []).flatMap((c) => {
      const at = lineAt.get(c.id);
      if (at === undefined || c.phases.probe === undefined || c.phases.teardown === undefined) return [];
      return [at - c.phases.probe - c.phases.teardown];
    });
    return { jobs, exitCode, wallMs, firstAttachMs: attaches.length > 0 ? Math.min(...attaches) : undefined, result };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// the cells as the sweep builds them (same specs for QEMU); scx_ktstr built first if missing
const request = () => ({
  registry: loadRegistry(),
  schedulers: [SCHEDULER],
  kernels: [KERNEL],
  presets: PRESETS,
  topologies: [],
});
await buildMissingFixtures(buildMatrix(request()), (m) => log(`bench:sweep: ${m}`));
const cells = buildMatrix(request());
const specs = cells.map((c) => cellSpec(c, false));
const broken = specs.filter((s) => s.setupProblem !== null || s.scheduler.binary === null);
if (broken.length > 0) {
  log(
    `bench:sweep: cannot run: ${broken.map((s) => `${s.id}: ${s.setupProblem ?? 'no scheduler binary'}`).join('; ')}`,
  );
  process.exit(1);
}
// both VMMs read the same cached base archive: build it before anything is timed
const tw = performance.now();
await new AgentImageCache().base(specs[0].scheduler.binary);
log(
  `bench:sweep: ${specs.length} cells (${SCHEDULER} x ${PRESETS.join(', ')}) on ${KERNEL}; agent base archive ready in ${sec(performance.now() - tw)} s`,
);

const cpus = availableParallelism();
const manyJobs = Number(process.env.KTSTR_BENCH_JOBS ?? cpus);
log(
  `bench:sweep: ${cpus} CPU(s) here; runs: ours --jobs 1${manyJobs > 1 ? `, ours --jobs ${manyJobs}` : ''}, QEMU one cell after another`,
);

log('\n(a) ours --jobs 1');
const one = await ours(1);
let many: OursRun | undefined;
if (manyJobs > 1) {
  log(`\n(b) ours --jobs ${manyJobs}`);
  many = await ours(manyJobs);
} else {
  log('\n(b) skipped: one CPU here, --jobs 1 is (a) (KTSTR_BENCH_JOBS=2 forces it)');
}
log('\n(c) QEMU, one cell after another');
const q: QemuCellResult[] = [];
const tq = performance.now();
for (const spec of specs) {
  const r = await runCellInQemu(spec, { qemu });
  q.push(r);
  log(
    `    ${r.passed ? 'PASS' : 'FAIL'} [${sec(r.wallMs).padStart(6)}s] ${spec.id}${r.passed ? '' : ` — ${r.reason}`}`,
  );
  if (!r.passed)
    log(
      r.consoleTail
        .split('\n')
        .slice(-15)
        .map((l) => `      ${l}`)
        .join('\n'),
    );
}
const qemuWall = performance.now() - tq;
if (q[0])
  log(
    `    QEMU command line (first cell): ${q[0].argv.map((a) => (/[\s,]/.test(a) && !a.includes('=') ? `'${a}'` : a)).join(' ')}`,
  );

// --- report ---
const passed = (r: OursRun): string =>
  r.result === null
    ? `no result, exit ${r.exitCode}`
    : `${r.result.cells.filter((c) => c.passed).length}/${r.result.cells.length} passed`;
log('\n== bench:sweep ==');
log('wall time, from spawn (ours: the CLI process; QEMU: the 4 cells, temporary initrd files included)');
const rows: [string, number, string][] = [['ours --jobs 1', one.wallMs, passed(one)]];
if (many) rows.push([`ours --jobs ${many.jobs}`, many.wallMs, passed(many)]);
rows.push(['QEMU, sequential', qemuWall, `${q.filter((r) => r.passed).length}/${q.length} passed`]);
for (const [name, ms, what] of rows) log(`  ${name.padEnd(18)} ${sec(ms).padStart(7)} s   ${what}`);
log(
  `  ratio ours/QEMU:   --jobs 1 ${(one.wallMs / qemuWall).toFixed(2)}${many ? `   --jobs ${many.jobs} ${(many.wallMs / qemuWall).toFixed(2)}` : ''}   (goal: below 1)`,
);
log('\nprocess start to the first attach (s)');
log(`  ours --jobs 1      ${sec(one.firstAttachMs)}`);
if (many) log(`  ours --jobs ${String(many.jobs).padEnd(6)} ${sec(many.firstAttachMs)}`);
log(
  `  QEMU first cell    ${sec(q[0]?.attachMs)} from QEMU's spawn; ${sec(q[0] && q[0].attachMs !== undefined ? q[0].prepareMs + q[0].attachMs : undefined)} with its temporary initrd`,
);

const PH: (keyof CellPhases)[] = ['boot', 'agentReady', 'verify', 'attach', 'probe', 'teardown'];
log(
  "\nper cell (s). boot: ours from the cell's start in its worker thread, QEMU from its spawn, to the agent's hello;",
);
log(
  "agentReady: /init's exec of Node to hello (inside boot); RSS: ours = the sweep process after the cell, QEMU = its peak",
);
const head = ['run', 'cell', ...PH, 'wall', 'RSS'];
const table: string[][] = [head];
const addOurs = (r: OursRun): void => {
  for (const c of r.result?.cells ?? [])
    table.push([
      `ours -j${r.jobs}`,
      c.topology,
      ...PH.map((k) => sec(c.phases[k])),
      sec(c.wallMs),
      mib(c.hostRssBytes),
    ]);
};
addOurs(one);
if (many) addOurs(many);
q.forEach((r, i) =>
  table.push(['QEMU', specs[i].topologyName, ...PH.map((k) => sec(r.phases[k])), sec(r.wallMs), mib(r.qemuRssBytes)]),
);
const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)));
for (const row of table)
  log(`  ${row.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ')}`);
const failures = [...(one.result?.cells ?? []), ...(many?.result?.cells ?? [])].filter((c) => !c.passed);
for (const c of failures) {
  log(`  ours FAIL ${c.id}: ${c.failure?.kind}: ${c.failure?.message}`);
  if (c.consoleTail !== '')
    log(
      c.consoleTail
        .split('\n')
        .slice(-25)
        .map((l) => `      ${l}`)
        .join('\n'),
    );
}

log(
  `\nbench:sweep json ${JSON.stringify({
    cpus,
    ours: [one, ...(many ? [many] : [])].map((r) => ({
      jobs: r.jobs,
      wallMs: Math.round(r.wallMs),
      firstAttachMs: r.firstAttachMs === undefined ? null : Math.round(r.firstAttachMs),
      exitCode: r.exitCode,
      cells:
        r.result?.cells.map((c) => ({
          cell: c.topology,
          passed: c.passed,
          wallMs: Math.round(c.wallMs),
          phases: c.phases,
          hostRssBytes: c.hostRssBytes,
        })) ?? null,
    })),
    qemu: {
      wallMs: Math.round(qemuWall),
      cells: q.map((r, i) => ({
        cell: specs[i].topologyName,
        passed: r.passed,
        reason: r.reason,
        wallMs: Math.round(r.wallMs),
        prepareMs: Math.round(r.prepareMs),
        helloMs: r.helloMs,
        attachMs: r.attachMs,
        phases: r.phases,
        qemuRssBytes: r.qemuRssBytes,
      })),
    },
  })}`,
);
const allPassed = q.every((r) => r.passed) && [one, ...(many ? [many] : [])].every((r) => r.exitCode === 0);
process.exit(allPassed ? 0 : 1);
