// `npm run bench:test` — needs /dev/kvm, so here: `ktstr-wasm host run -- node
// dist/test/bench/test-suite.bench.js`. The project's scheduler tests (tests/*.ktstr.ts) as a
// user runs them, through the CLI, twice in one run:
//   (a) `ktstr-wasm test --jobs 1 --json <tmp>`, timed from the child's spawn;
//   (b) the same with --jobs <CPUs> (KTSTR_BENCH_JOBS overrides; skipped on one CPU);
// then the guest-side cost of starting 256 workers (test/bench/fixtures/spawn256). Prints the
// wall times and their ratio, each test's phases (boot, agent ready, attach, cgroup setup +
// workers started, run, body, teardown, judge) and one `bench:test json` line with every figure.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { parseTestRun } from '../../src/test/json.js';
import type { TestRunResult } from '../../src/test/run.js';

const CLI = join(packageRoot(), 'bin', 'ktstr-wasm');
const SUITE = process.env.KTSTR_BENCH_SUITE?.split(',') ?? ['tests/sched.ktstr.ts'];
const SPAWN = 'test/bench/fixtures/spawn256.ktstr-fixture.ts';

if (!existsSync('/dev/kvm')) {
  console.log(
    'bench:test: skipped — needs /dev/kvm (run it inside the test host: ktstr-wasm host run -- node dist/test/bench/test-suite.bench.js)',
  );
  process.exit(0);
}

const sec = (ms: number | undefined): string => (ms === undefined || Number.isNaN(ms) ? '-' : (ms / 1000).toFixed(1));
const tmp = mkdtempSync(join(tmpdir(), 'ktstr-bench-test-'));

async function runSuite(
  files: string[],
  jobs: number,
  name: string,
): Promise<{ wallMs: number; result: TestRunResult; code: number }> {
  const json = join(tmp, `${name}.json`);
  const t0 = performance.now();
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'test', ...files, '--jobs', String(jobs), '--json', json], {
      cwd: packageRoot(),
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
  const wallMs = performance.now() - t0;
  return { wallMs, code, result: parseTestRun(readFileSync(json, 'utf8'), json) };
}

function phaseTable(r: TestRunResult): string[] {
  const rows = [
    'test                                              status  boot  agent  attach  spawn  run   body  teardown  (s)',
  ];
  for (const t of r.tests) {
    const spawnMs = t.runs.reduce((a, x) => a + x.spawnMs, 0);
    const runMs = t.runs.reduce((a, x) => a + x.durationMs, 0);
    rows.push(
      `${`${t.name} [${t.scheduler}]`.slice(0, 48).padEnd(50)}${t.status.padEnd(8)}${sec(t.phases.boot).padStart(4)}  ${sec(t.phases.agentReady).padStart(5)}  ${sec(t.phases.attach).padStart(6)}  ${sec(spawnMs).padStart(5)}  ${sec(runMs).padStart(4)}  ${sec(t.phases.body).padStart(4)}  ${sec(t.phases.teardown).padStart(8)}`,
    );
  }
  return rows;
}

try {
  const figures: Record<string, unknown> = {};
  const one = await runSuite(SUITE, 1, 'jobs1');
  console.log(
    `\nbench:test: suite (${one.result.tests.length} tests) --jobs 1: ${sec(one.wallMs)} s wall (exit ${one.code})`,
  );
  for (const l of phaseTable(one.result)) console.log(`  ${l}`);
  figures.jobs1WallMs = Math.round(one.wallMs);
  const cpus = Number(process.env.KTSTR_BENCH_JOBS ?? availableParallelism());
  if (cpus > 1) {
    const many = await runSuite(SUITE, cpus, `jobs${cpus}`);
    console.log(
      `bench:test: suite --jobs ${cpus}: ${sec(many.wallMs)} s wall; --jobs 1 / --jobs ${cpus} = ${(one.wallMs / many.wallMs).toFixed(2)}`,
    );
    figures[`jobs${cpus}WallMs`] = Math.round(many.wallMs);
    figures.speedup = Number((one.wallMs / many.wallMs).toFixed(2));
  } else {
    console.log('bench:test: one CPU here: --jobs N would repeat --jobs 1; skipped');
  }
  const spawnRun = await runSuite([SPAWN], 1, 'spawn');
  for (const t of spawnRun.result.tests) {
    const r = t.runs[0];
    const ok = r !== undefined && r.workers.length === 256 && r.workers.every((w) => w.error === null);
    console.log(
      `bench:test: ${t.name}: ${r === undefined ? 'no run' : `${r.workers.length} workers in ${r.spawnMs.toFixed(0)} ms of guest time (cgroups, launchers, forks, every worker parked)`}${ok ? '' : ` — NOT all started: ${t.failure?.message ?? ''}`}`,
    );
    figures[`spawn256:${t.name}`] = r === undefined ? null : Math.round(r.spawnMs);
  }
  console.log(`bench:test json ${JSON.stringify(figures)}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
