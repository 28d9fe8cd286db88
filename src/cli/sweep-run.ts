// What `ktstr-wasm sweep` and `sweep merge` do: build the cell matrix, run it (here, or inside
// the emulated test host when /dev/kvm cannot run guests), show progress, print the failed
// cells' blocks, the verified_insns tables, the grid and the failing combinations, write
// --json / --junit, and return the exit status. Loaded by sweep-command.ts only when it runs.

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { loadRegistry, REGISTRY_FILE } from '../scheduler/registry.js';
import { packageRoot } from '../paths.js';
import { buildMatrix, listMatrixText, type MatrixCell } from '../sweep/matrix.js';
import { parseShard, shardCells } from '../sweep/shard.js';
import { SweepRun } from '../sweep/run.js';
import type { SweepResult } from '../sweep/result.js';
import { parseSweepResult, serializeSweepResult } from '../sweep/json.js';
import { sweepJunit } from '../sweep/junit.js';
import { mergeResults } from '../sweep/merge.js';
import { defaultJobs } from '../sweep/pool.js';
import { buildMissingFixtures } from '../sweep/fixtures.js';
import { AGENT_MEMORY_MIB } from '../cell/run-cell.js';
import {
  failureBlock,
  failingCombinations,
  LiveStatus,
  programRuns,
  progressLine,
  summaryGrid,
  summaryCounts,
  verifiedInsnsTables,
  wantsPlainGlyphs,
} from '../sweep/report.js';
import { paint } from './colour.js';
import { writeAtomically } from './output.js';
import { stopOnInterrupt } from './interrupt.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError } from './errors.js';
import { packageVersion } from './version.js';
import { RESULT_BEGIN, RESULT_END, runInTestHostInstead, shareDirFor, unusableKvm } from './test-host-delegate.js';
import { stageKernels } from '../host/stage-kernels.js';
import type { KeepDumps } from '../cell/cell-dump.js';
import { bundleDelegateArgs, dumpPolicy, sendBundle } from './bundle-flags.js';
import { monitorDelegateArgs, type MonitorFlags } from './monitor-flags.js';

export interface SweepFlags extends MonitorFlags {
  scheduler?: string[];
  kernel?: string[];
  topology?: string[];
  config?: string;
  raw?: boolean;
  json?: string;
  junit?: string;
  shard?: string;
  jobs?: number;
  timeout: number;
  list?: boolean;
  testHost: boolean;
  verbose?: boolean;
  /** Failure bundles: for which cells, and where (one directory per cell). */
  keepDumps?: KeepDumps;
  out?: string;
  /** Hidden: print each bundle as blocks on stdout, then delete it (the test host's inner run). */
  bundleBlocks?: boolean;
  /** Hidden: print the JSON result between markers on stdout (the test host's inner sweep). */
  resultBlock?: boolean;
  /** Hidden: draw the live status although stderr is no terminal (the outer sweep's is). */
  ttyStatus?: boolean;
}

function writeOutputs(result: SweepResult, flags: { json?: string; junit?: string }): void {
  if (flags.json !== undefined && flags.json !== '-') writeAtomically(flags.json, serializeSweepResult(result));
  if (flags.json === '-') process.stdout.write(serializeSweepResult(result));
  if (flags.junit !== undefined) writeAtomically(flags.junit, sweepJunit(result));
}

/** The whole report after a run: failed cells' blocks, tables, grid, counts, failing combinations. */
function printReport(result: SweepResult, out: NodeJS.WriteStream, missing: string[] = []): void {
  const plain = wantsPlainGlyphs(process.env);
  const p = paint(out);
  const parts: string[] = [];
  for (const cell of result.cells) if (!cell.passed) parts.push(failureBlock(cell, p));
  parts.push(verifiedInsnsTables(result.cells, result.matrix));
  parts.push(summaryCounts(result.cells, { plain }));
  parts.push(summaryGrid(result.cells, { plain }));
  const failing = failingCombinations(result.cells);
  if (failing !== '') parts.push(failing);
  if (missing.length > 0) parts.push(`not run (${missing.length}):\n${missing.map((m) => `  ${m}`).join('\n')}\n`);
  if (result.interrupted) parts.push('interrupted: the cells above finished; the rest did not run\n');
  out.write(
    parts
      .filter((s) => s !== '')
      .map((s) => (s.endsWith('\n') ? s : s + '\n'))
      .join('\n'),
  );
}

function exitStatus(result: SweepResult, complete: boolean): number {
  if (result.interrupted) return EXIT_FAILED;
  return complete && result.cells.every((c) => c.passed) ? EXIT_OK : EXIT_FAILED;
}

function configPath(flags: SweepFlags): string {
  return flags.config === undefined ? resolve(packageRoot(), REGISTRY_FILE) : resolve(flags.config);
}

/** The cells asked for; a bad config, scheduler, kernel or topology is a usage error (RegistryError, MatrixError). */
function matrixFor(presets: string[], flags: SweepFlags, onSkip?: (id: string, why: string) => void): MatrixCell[] {
  const registry = loadRegistry(configPath(flags));
  return buildMatrix({
    registry,
    schedulers: flags.scheduler ?? [],
    kernels: flags.kernel ?? [],
    presets,
    topologies: flags.topology ?? [],
    onSkip,
  });
}

/** Runs the same sweep inside the test host: paths made absolute and shared, kernels pinned. */
async function delegate(presets: string[], flags: SweepFlags, why: string, cells: MatrixCell[]): Promise<number> {
  const share: string[] = [];
  const args = ['sweep', ...presets, '--no-test-host', '--result-block', '--timeout', String(flags.timeout)];
  for (const s of flags.scheduler ?? []) args.push('--scheduler', s);
  for (const t of flags.topology ?? []) args.push('--topology', t);
  // the kernels this machine resolved, staged where needed, so L1 runs exactly them
  const staged = stageKernels([...new Map(cells.map((c) => [c.kernel.label, c.kernel])).values()]);
  for (const spec of staged.specs) args.push('--kernel', spec);
  share.push(...staged.shareDirs);
  if (flags.config !== undefined) {
    args.push('--config', resolve(flags.config));
    const d = shareDirFor(flags.config);
    if (d) share.push(d);
  }
  for (const c of cells)
    if (c.binary !== null && isAbsolute(c.binary)) {
      const d = shareDirFor(c.binary);
      if (d) share.push(d);
    }
  if (flags.raw) args.push('--raw');
  args.push(...bundleDelegateArgs(flags), ...monitorDelegateArgs(flags));
  if (flags.shard !== undefined) args.push('--shard', flags.shard);
  if (flags.jobs !== undefined) args.push('--jobs', String(flags.jobs));
  if (flags.verbose) args.push('--verbose');
  if (process.stderr.isTTY === true && process.env.TERM !== 'dumb') args.push('--tty-status');
  const maxCell = Math.max(...cells.map((c) => c.memoryMiB), 256) + AGENT_MEMORY_MIB;
  const jobs = flags.jobs ?? 1;
  let resultText: string | undefined;
  let code: number;
  try {
    code = await runInTestHostInstead(
      {
        args,
        shareDirs: share,
        memoryMiB: Math.max(3072, jobs * (maxCell + 700) + 1024),
        timeoutMs: ((flags.timeout * cells.length) / Math.max(1, jobs) + 600) * 1000,
        onResult: (t) => {
          resultText = t;
        },
        output: flags.json === '-' ? process.stderr : process.stdout,
      },
      why,
    );
  } finally {
    staged.cleanup();
  }
  if (resultText !== undefined && (flags.json !== undefined || flags.junit !== undefined)) {
    writeOutputs(parseSweepResult(resultText, "the test host's result"), flags);
  } else if (resultText === undefined && (flags.json !== undefined || flags.junit !== undefined)) {
    process.stderr.write(
      paint(process.stderr).red(
        'ktstr-wasm: error: the sweep inside the test host returned no result; --json/--junit not written',
      ) + '\n',
    );
    return code === 0 ? EXIT_FAILED : code;
  }
  return code;
}

export async function runSweepCommand(presets: string[], flags: SweepFlags): Promise<number> {
  const shard = flags.shard === undefined ? null : parseShard(flags.shard); // ShardError: a usage error
  const skipped = new Map<string, string>();
  let all = matrixFor(presets, flags, (id, why) => skipped.set(id, why));
  if (
    !flags.list &&
    (await buildMissingFixtures(all, (m) => process.stderr.write(paint(process.stderr).dim(`ktstr-wasm: ${m}`) + '\n')))
      .length > 0
  ) {
    all = matrixFor(presets, flags);
  }
  if (skipped.size > 0 && !flags.resultBlock) {
    const byKernel = new Map<string, Set<string>>();
    for (const id of skipped.keys()) {
      const [, , kernel, topology] = id.split('/');
      byKernel.set(kernel, (byKernel.get(kernel) ?? new Set()).add(topology));
    }
    const list = [...byKernel].map(([k, ts]) => `${k}: ${[...ts].join(', ')}`).join('; ');
    process.stderr.write(
      paint(process.stderr).dim(
        `ktstr-wasm: ${skipped.size} cells left out, their kernel's config cannot run the topology (NR_CPUS, x2APIC) — ${list}; name a preset to run it anyway`,
      ) + '\n',
    );
  }

  if (flags.list) {
    process.stdout.write(listMatrixText(shard === null ? all : shardCells(all, shard)));
    return EXIT_OK;
  }
  const kvm = unusableKvm();
  if (kvm !== null) {
    if (!flags.testHost)
      throw new UsageError(
        `${kvm.why}; --no-test-host was given, so the sweep cannot run here (run \`ktstr-wasm doctor\`)`,
      );
    return delegate(presets, flags, kvm.why, all);
  }
  const cells = shard === null ? all : shardCells(all, shard);
  const maxGuest = Math.max(...cells.map((c) => c.memoryMiB), 256) + AGENT_MEMORY_MIB;
  const jobs = flags.jobs ?? defaultJobs(maxGuest);
  const err = process.stderr;
  const tty = flags.ttyStatus === true || (err.isTTY === true && process.env.TERM !== 'dumb');
  const live = tty
    ? new LiveStatus(
        cells.map((c) => c.id),
        { plain: wantsPlainGlyphs(process.env), columns: err.columns },
      )
    : undefined;
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  if (live) {
    // through the test host's serial line (--tty-status) every byte costs emulated CPU: 1 Hz there
    timer = setInterval(() => err.write(live.render(performance.now() - t0)), flags.ttyStatus ? 1000 : 250);
  }
  const run = new SweepRun({
    cells,
    matrix: all.map((c) => c.id),
    shard,
    jobs,
    raw: flags.raw === true,
    tool: packageVersion(),
    timeouts: { cellMs: flags.timeout * 1000 },
    dumps: dumpPolicy(flags),
    repro: flags.repro !== false,
    monitorIntervalMs: flags.monitorInterval,
    snapshotDir: flags.snapshot === false ? null : undefined,
    events: {
      cellStarted: (id, job) => live?.cellStarted(id, job),
      cellPhase: (id, phase) => live?.cellPhase(id, phase),
      cellFinished: (r, done, total) => {
        if (live) {
          live.cellFinished(r);
          err.write(live.clear());
        }
        err.write(progressLine(r, done, total, paint(err)) + '\n');
        if (flags.bundleBlocks) sendBundle(r);
        if (flags.verbose) {
          const ph = Object.entries(r.phases)
            .filter((e): e is [string, number] => typeof e[1] === 'number')
            .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`)
            .join(', ');
          err.write(
            paint(err).dim(
              `    ${r.start ?? 'cold'}${r.snapshotNote ? ` (${r.snapshotNote})` : ''}; phases: ${ph}; host RSS ${r.hostRssBytes === null ? '?' : `${(r.hostRssBytes / 2 ** 20).toFixed(0)} MiB`}`,
            ) + '\n',
          );
          const runs = programRuns(r);
          if (runs !== '') err.write(paint(err).dim(`    programs: ${runs}`) + '\n');
          if (r.workers.length > 0)
            err.write(
              paint(err).dim(
                `    workers: ${r.workers.map((w) => `cpu${w.cpu} ${w.iterations} it/${(w.cpuTimeNs / 1e6).toFixed(0)} ms`).join(', ')}`,
              ) + '\n',
            );
        }
      },
    },
  });
  const release = stopOnInterrupt('every cell', () => run.interrupt(), err);
  let result: SweepResult;
  try {
    err.write(
      `ktstr-wasm sweep: ${cells.length} cell${cells.length === 1 ? '' : 's'}${shard ? ` (shard ${shard.index}/${shard.count} of ${all.length})` : ''}, ${Math.min(jobs, cells.length)} at a time\n`,
    );
    result = await run.run();
  } finally {
    clearInterval(timer);
    if (live) err.write(live.stop());
    release();
  }
  // with --json - the JSON owns stdout; the report goes to stderr
  printReport(result, flags.json === '-' ? process.stderr : process.stdout);
  writeOutputs(result, flags);
  // compact: the block crosses the test host's serial console
  if (flags.resultBlock) process.stdout.write(`${RESULT_BEGIN}\n${JSON.stringify(result)}\n${RESULT_END}\n`);
  return result.interrupted ? EXIT_INTERRUPTED : exitStatus(result, true);
}

export async function runSweepMerge(files: string[], flags: { json?: string; junit?: string }): Promise<number> {
  const results = files.map((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${f}: ${(e as Error).message}`);
    }
    // a file named on the command line that is no sweep result is a usage error (the test host's own result, a failure)
    try {
      return parseSweepResult(text, f);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  });
  const merged = mergeResults(results, files); // MergeError: a usage error
  printReport(merged.result, flags.json === '-' ? process.stderr : process.stdout, merged.missing);
  writeOutputs(merged.result, flags);
  return merged.exitStatus;
}
