// `npm run bench:snapshot`: what a machine snapshot saves a cell. On one machine (scx_simple,
// tiny-1llc, the prebuilt sched_ext kernel), in one run:
//  - cold vs restored: RUNS cells with snapshots off (cold boots; the first of the process
//    also shown alone), the cell that saves the snapshot, and RUNS restored cells: time from
//    the cell's start to its agent waiting for the cell (`ready`), and the whole cell; the
//    ratio of the medians restored/cold (goal <= 10 %); each restored cell takes the RAM its
//    thread kept from the cell before (src/vmm/memory-pool.ts), and one restored into fresh
//    memory (a new thread) is shown apart;
//  - the snapshot: its RAM file (size, data on disk), state file, and the save's time;
//  - a RAM copy alone, into pages a guest has just run in and into pages a copy has just
//    used: the difference is the emulator's (ramCopies);
//  - 4 cells at once, all cold and all restored: wall time, and this process's peak RSS and
//    PSS (restored cells share the snapshot's pages: PSS shows it);
//  - the project's test suite (tests/*.ktstr.ts; KTSTR_BENCH_SUITE=a,b to choose, =none to
//    leave it out) through the CLI with --no-snapshot and with snapshots: wall times, their
//    ratio (goal >= 3x), how each test started, and every test's verdict compared (a
//    difference fails the bench).
// Cells run on worker threads as in a sweep (CellPool). Needs real KVM (here: `ktstr-wasm
// host run --memory 6144 -- npm run bench:snapshot`).

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { packageRoot } from '../../src/paths.js';
import type { TestRunResult } from '../../src/test/run.js';
import { runKtstr } from '../helpers/ktstr-cli.js';
import { testVerdict, verdictDifferences } from '../helpers/verdicts.js';
import { prebuiltCell } from '../helpers/prebuilt-cell.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CellSpec } from '../../src/cell/run-cell.js';
import type { CellResult } from '../../src/cell/result.js';
import { CellPool } from '../../src/sweep/pool.js';
import { SnapshotStore, RAM_FILE, STATE_FILE } from '../../src/vmm/snapshot/store.js';
import { decodeState } from '../../src/vmm/snapshot/state-file.js';
import { copyRamFile } from '../../src/vmm/snapshot/ram-file.js';
import { freshGuestMemory, releaseGuestMemory } from '../../src/vmm/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const cell = prebuiltCell();
if (cell === undefined) {
  console.log('bench:snapshot: SKIPPED — no prebuilt kernel with scx_simple (KTSTR_KERNEL / ../shared/kernels)');
  process.exit(0);
}
if (!existsSync('/dev/kvm')) {
  console.log(
    'bench:snapshot: SKIPPED — no /dev/kvm here (ktstr-wasm host run --memory 6144 -- npm run bench:snapshot)',
  );
  process.exit(0);
}

const root = mkdtempSync(join(tmpdir(), 'ktstr-bench-snapshot-'));
const snapshots = join(root, 'snapshots');
let n = 0;
const spec = (snapshotDir: string | null): CellSpec => cell(String(n++), snapshotDir);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const s = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** This process's RSS and PSS (smaps_rollup), bytes. */
function memory(): { rss: number; pss: number } {
  const text = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb('Rss'), pss: kb('Pss') };
}

async function cells(
  pool: CellPool,
  specs: CellSpec[],
): Promise<{ results: CellResult[]; ms: number; peak: { rss: number; pss: number } }> {
  const peak = { rss: 0, pss: 0 };
  const sample = setInterval(() => {
    const m = memory();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.pss = Math.max(peak.pss, m.pss);
  }, 100);
  const t0 = performance.now();
  try {
    const results = await Promise.all(specs.map((c) => pool.run(c, () => {})));
    return { results: results.filter((r): r is CellResult => r !== null), ms: performance.now() - t0, peak };
  } finally {
    clearInterval(sample);
  }
}

const failed = (rs: CellResult[]): string[] => rs.filter((r) => !r.passed).map((r) => `${r.id}: ${r.failure?.message}`);
const pool = new CellPool(4);
try {
  const one = new CellPool(1);
  // RUNS cold cells (the first of a process also pays its one-time costs: agent image,
  // first guest RAM, new vCPU threads), the saving cell, RUNS restored cells; medians compared
  const colds: CellResult[] = [];
  for (let i = 0; i < RUNS; i++) colds.push((await cells(one, [spec(null)])).results[0]);
  const saved = (await cells(one, [spec(snapshots)])).results[0];
  const restored: CellResult[] = [];
  for (let i = 0; i < RUNS; i++) restored.push((await cells(one, [spec(snapshots)])).results[0]);
  await one.close();
  // one restored into fresh memory: a new thread keeps none (src/vmm/memory-pool.ts)
  const freshPool = new CellPool(1);
  const fresh = (await cells(freshPool, [spec(snapshots)])).results[0];
  await freshPool.close();
  const cold = colds[colds.length - 1]; // a cold cell after the first, for its phases
  const bad = failed([...colds, saved, ...restored, fresh]);
  if (saved.start !== 'saved' || [...restored, fresh].some((r) => r.start !== 'restored'))
    bad.push(`starts: ${saved.start}, ${[...restored, fresh].map((r) => r.start).join(', ')}`);

  const store = new SnapshotStore(snapshots);
  const entry = store.list()[0];
  const ram = entry === undefined ? undefined : statSync(join(snapshots, entry.id, RAM_FILE));
  const state = entry === undefined ? undefined : statSync(join(snapshots, entry.id, STATE_FILE));

  const readyCold = median(colds.map((r) => r.phases.ready ?? NaN));
  const readyRestored = median(restored.map((r) => r.phases.ready ?? NaN));
  const wallCold = median(colds.map((r) => r.wallMs));
  const wallRestored = median(restored.map((r) => r.wallMs));
  console.log(
    `bench:snapshot — scx_simple on tiny-1llc (4 vCPUs, ${256 + 320} MiB guest), ${RUNS} cold and ${RUNS} restored runs`,
  );
  console.log(
    `  to agent ready:  cold ${s(readyCold)} (median; the process's first cell ${s(colds[0].phases.ready)}), saving cell ${s(saved.phases.ready)} + save ${s(saved.phases.save)}, restored ${s(readyRestored)} (median)`,
  );
  console.log(
    `  restored/cold:   ${((100 * readyRestored) / readyCold).toFixed(1)} % (goal <= 10 %; against the first cell ${((100 * readyRestored) / (colds[0].phases.ready ?? NaN)).toFixed(1)} %)`,
  );
  console.log(
    `  RAM kept:        each restored cell above took the RAM its thread kept from the cell before; one into fresh memory (a new thread): ready ${s(fresh.phases.ready)} (${((100 * (fresh.phases.ready ?? NaN)) / readyCold).toFixed(1)} %), RAM set-up ${s(fresh.phases.vmSetup)} against ${s(median(restored.map((r) => r.phases.vmSetup ?? NaN)))}, whole cell ${s(fresh.wallMs)}`,
  );
  console.log(
    `  whole cell:      cold ${s(wallCold)}, restored ${s(wallRestored)} (medians): ${(wallCold / wallRestored).toFixed(2)}x`,
  );
  const phases = (r: CellResult): string =>
    Object.entries(r.phases)
      .map(([k, v]) => `${k} ${((v ?? NaN) / 1000).toFixed(1)}`)
      .join(', ');
  console.log(`  phases (s):      cold: ${phases(cold)}`);
  console.log(`                   restored: ${phases(restored[restored.length >> 1])}`);
  if (ram !== undefined && state !== undefined) {
    console.log(
      `  snapshot:        RAM file ${mib(ram.size)} (${mib(ram.blocks * 512)} on disk), state ${(state.size / 1024).toFixed(0)} KiB`,
    );
    const cost = saved.snapshotSave;
    if (cost !== undefined)
      console.log(
        `                   written ${mib(cost.dataBytes)}; the guest's free pages left out ${mib(cost.freeBytes)}${saved.snapshotNote ? ` (${saved.snapshotNote})` : ''}; guest paused ${s(cost.pauseMs)}`,
      );
  }

  if (entry !== undefined) ramCopies(join(snapshots, entry.id));

  // KTSTR_BENCH_PARALLEL=0 leaves the parallel cells out
  const par = Number(process.env.KTSTR_BENCH_PARALLEL ?? 4);
  if (par > 0) {
    const coldPar = await cells(
      pool,
      Array.from({ length: par }, () => spec(null)),
    );
    const restoredPar = await cells(
      pool,
      Array.from({ length: par }, () => spec(snapshots)),
    );
    bad.push(...failed([...coldPar.results, ...restoredPar.results]));
    console.log(
      `  ${par} cells at once: cold ${s(coldPar.ms)}, peak RSS ${mib(coldPar.peak.rss)}, PSS ${mib(coldPar.peak.pss)}`,
    );
    console.log(
      `                   restored ${s(restoredPar.ms)}, peak RSS ${mib(restoredPar.peak.rss)}, PSS ${mib(restoredPar.peak.pss)}`,
    );
  }
  bad.push(...(await suite()));
  if (bad.length > 0) {
    console.log(`bench:snapshot: cells failed:\n  ${bad.join('\n  ')}`);
    process.exitCode = 1;
  }
} finally {
  await pool.close();
  rmSync(root, { recursive: true, force: true });
}

/**
 * A RAM copy alone, three times in a row into new guest memory: first into pages the last
 * cell's guest has just given back, then into pages this copy has just given back. In the
 * emulated test host the first is slower: QEMU TCG drops the code it had translated from those
 * pages when they are first written (perf on QEMU: tcg_flush_jmp_cache, qht_remove) — why a
 * restore refreshes the RAM its thread kept instead (src/vmm/memory-pool.ts).
 */
function ramCopies(dir: string): void {
  const st = decodeState(readFileSync(join(dir, STATE_FILE), 'utf8')) as {
    memoryBytes: number;
    ramExtents: [number, number][];
  };
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const memory = freshGuestMemory(st.memoryBytes);
    const t0 = performance.now();
    copyRamFile(join(dir, RAM_FILE), memory, st.ramExtents);
    times.push(performance.now() - t0);
    releaseGuestMemory(memory);
  }
  console.log(
    `  RAM copy alone:  ${s(times[0])} into the pages the last guest gave back, ${s(median(times.slice(1)))} into pages given back by a copy (median of 2)`,
  );
}

/** The test suite with --no-snapshot, then with snapshots: wall times and verdicts; the differences. */
async function suite(): Promise<string[]> {
  const choice = process.env.KTSTR_BENCH_SUITE;
  if (choice === 'none') return [];
  const files =
    choice?.split(',') ??
    readdirSync(join(packageRoot(), 'tests'))
      .filter((f) => f.endsWith('.ktstr.ts'))
      .map((f) => join('tests', f));
  const run = async (extra: string[], name: string): Promise<{ ms: number; result: TestRunResult }> => {
    const json = join(root, `${name}.json`);
    const t0 = performance.now();
    // the progress lines (stderr) live; the JSON is the result
    await runKtstr(['test', ...files, '--jobs', '1', '--keep-dumps', 'none', '--json', json, ...extra], {
      verbose: true,
    });
    return { ms: performance.now() - t0, result: JSON.parse(readFileSync(json, 'utf8')) as TestRunResult };
  };
  const cold = await run(['--no-snapshot'], 'suite-cold');
  const snap = await run([], 'suite-snapshots');
  const starts = (r: TestRunResult): string => {
    const n = new Map<string, number>();
    for (const t of r.tests) {
      const k = `${t.start ?? '-'}${t.restoredAt === undefined ? '' : ` at ${t.restoredAt}`}`;
      n.set(k, (n.get(k) ?? 0) + 1);
    }
    return [...n].map(([k, v]) => `${v} ${k}`).join(', ');
  };
  console.log(`  test suite:      ${files.join(' ')}: ${cold.result.tests.length} tests, --jobs 1`);
  console.log(`                   --no-snapshot ${s(cold.ms)} (${starts(cold.result)})`);
  console.log(
    `                   snapshots     ${s(snap.ms)} (${starts(snap.result)}): ${(cold.ms / snap.ms).toFixed(2)}x (goal >= 3x)`,
  );
  // where a test's time goes: the median of each phase over the tests of one kind of start
  const typical = (label: string, tests: TestRunResult['tests']): void => {
    if (tests.length === 0) return;
    const keys = [...new Set(tests.flatMap((t) => Object.keys(t.phases)))];
    const ph = keys
      .map((k) => {
        const v = tests.map((t) => t.phases[k as keyof typeof t.phases]).filter((x) => x !== undefined);
        return v.length === 0 ? '' : `${k} ${s(median(v))}`;
      })
      .filter((x) => x !== '')
      .join(', ');
    console.log(
      `                   ${label} (${tests.length}, medians): cell ${s(median(tests.map((t) => t.wallMs)))}; ${ph}`,
    );
  };
  typical('cold', cold.result.tests);
  typical(
    'restored at attached',
    snap.result.tests.filter((t) => t.restoredAt === 'attached'),
  );
  const verdicts = (r: TestRunResult): Map<string, string> => new Map(r.tests.map((t) => [t.id, testVerdict(t)]));
  const diff = verdictDifferences(verdicts(cold.result), verdicts(snap.result));
  const passed = snap.result.tests.filter((t) => t.status === 'pass').length;
  console.log(
    `                   verdicts: ${diff.length === 0 ? 'identical' : `${diff.length} differ`} (${passed} pass, ${snap.result.tests.length - passed} fail or skip with snapshots)`,
  );
  return diff.map((d) => `verdict differs: ${d}`);
}
