// What `ktstr-wasm test` and `test merge` do: find the test files, bundle and collect their
// tests, build the matrix (test x scheduler x kernel), run it here or inside the emulated
// test host, print a line per test and a block per failure, write --json / --junit, and
// return the exit status (0 all passed or skipped, 1 a test failed; usage errors are thrown).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadRegistry, REGISTRY_FILE } from '../scheduler/registry.js';
import { packageRoot } from '../paths.js';
import { parseShard, shardCells } from '../sweep/shard.js';
import { defaultJobs } from '../sweep/pool.js';
import { buildMissingFixtures } from '../sweep/fixtures.js';
import { AGENT_MEMORY_MIB } from '../cell/run-cell.js';
import { stageKernels } from '../host/stage-kernels.js';
import { bundleTestFile } from '../test/bundle.js';
import { collectTests, type CollectedTest } from '../test/collect.js';
import { selectTestFiles } from '../test/discover.js';
import { buildTestMatrix, type TestCell } from '../test/matrix.js';
import { stagePayloads } from '../test/payload-stage.js';
import { TestRun, type TestRunResult } from '../test/run.js';
import { compareEevdf, countsLine, failureBlock, progressLine } from '../test/report.js';
import { mergeTestRuns, parseTestRun, serializeTestRun, testJunit, TestJsonError } from '../test/json.js';
import { paint } from './colour.js';
import { writeAtomically } from './output.js';
import { stopOnInterrupt } from './interrupt.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError } from './errors.js';
import { packageVersion } from './version.js';
import type { KeepDumps } from '../cell/cell-dump.js';
import { bundleDelegateArgs, dumpPolicy, sendBundle } from './bundle-flags.js';
import { monitorDelegateArgs, type MonitorFlags } from './monitor-flags.js';
import { RESULT_BEGIN, RESULT_END, runInTestHostInstead, shareDirFor, unusableKvm } from './test-host-delegate.js';

export interface TestFlags extends MonitorFlags {
  dir?: string;
  filter?: string;
  scheduler?: string[];
  kernel?: string[];
  config?: string;
  json?: string;
  junit?: string;
  shard?: string;
  jobs?: number;
  list?: boolean;
  compareEevdf?: boolean;
  testHost: boolean;
  verbose?: boolean;
  resultBlock?: boolean;
  /** Failure bundles: for which cells, and where (one directory per cell). */
  keepDumps?: KeepDumps;
  out?: string;
  /** Hidden: print each bundle as blocks on stdout, then delete it (the test host's inner run). */
  bundleBlocks?: boolean;
  /** Hidden: payload binaries staged by the outer run (test host). */
  payloadStage?: string;
}

function writeOutputs(r: TestRunResult, flags: { json?: string; junit?: string }): void {
  if (flags.json !== undefined && flags.json !== '-') writeAtomically(flags.json, serializeTestRun(r));
  if (flags.json === '-') process.stdout.write(serializeTestRun(r));
  if (flags.junit !== undefined) writeAtomically(flags.junit, testJunit(r));
}

function printReport(
  r: TestRunResult,
  out: NodeJS.WriteStream,
  o: { compare?: boolean; missing?: string[] } = {},
): void {
  const p = paint(out);
  const parts = r.tests.filter((t) => t.status === 'fail').map((t) => failureBlock(t, p));
  if (o.compare) parts.push(`EEVDF beside the schedulers under test:\n${compareEevdf(r.tests)}`);
  parts.push(countsLine(r.tests, r.wallMs, p));
  if ((o.missing ?? []).length > 0)
    parts.push(`not run (${o.missing!.length}):\n${o.missing!.map((m) => `  ${m}`).join('\n')}\n`);
  if (r.interrupted) parts.push('interrupted: the tests above finished; the rest did not run\n');
  out.write(parts.join('\n'));
}

async function collectAll(files: string[], flags: TestFlags): Promise<CollectedTest[]> {
  const tests: CollectedTest[] = [];
  for (const f of selectTestFiles(files, resolve(flags.dir ?? '.')))
    tests.push(...collectTests(await bundleTestFile(f)));
  return tests;
}

function matrixFor(tests: CollectedTest[], flags: TestFlags): TestCell[] {
  const config = flags.config === undefined ? resolve(packageRoot(), REGISTRY_FILE) : resolve(flags.config);
  const registry = loadRegistry(config);
  const schedulers = [...(flags.scheduler ?? [])];
  if (flags.compareEevdf && schedulers.length > 0 && !schedulers.includes('eevdf')) schedulers.push('eevdf');
  let cells = buildTestMatrix({
    tests,
    registry,
    schedulers,
    kernels: flags.kernel ?? [],
    filter: flags.filter,
    payloadStage: flags.payloadStage,
  });
  if (flags.compareEevdf && schedulers.length === 0) {
    // each test under its own scheduler and under EEVDF
    const eevdf = buildTestMatrix({
      tests,
      registry,
      schedulers: ['eevdf'],
      kernels: flags.kernel ?? [],
      filter: flags.filter,
      payloadStage: flags.payloadStage,
    });
    const ids = new Set(cells.map((c) => c.id));
    cells = [...cells, ...eevdf.filter((c) => !ids.has(c.id))];
  }
  return cells;
}

function listText(cells: TestCell[]): string {
  return cells
    .map(
      (c) =>
        `${c.test.fileName} › ${c.test.name}  [${c.scheduler?.name ?? 'eevdf'}/${c.kernel.label}/${c.topologyName}]  ${c.topology.numCpus} vCPUs, ${c.memoryMiB} MiB, ${c.durationMs / 1000} s${c.setupProblem === null ? '' : `  setup: ${c.setupProblem}`}\n`,
    )
    .join('');
}

async function delegate(files: string[], flags: TestFlags, why: string, cells: TestCell[]): Promise<number> {
  const share = [process.cwd()];
  const args = ['test', ...files.map((f) => resolve(f)), '--no-test-host', '--result-block'];
  if (flags.dir !== undefined) {
    args.push('--dir', resolve(flags.dir));
    share.push(resolve(flags.dir));
  }
  for (const f of files) {
    const d = shareDirFor(f);
    if (d) share.push(d);
  }
  if (flags.filter !== undefined) args.push('--filter', flags.filter);
  for (const s of flags.scheduler ?? []) args.push('--scheduler', s);
  const staged = stageKernels([...new Map(cells.map((c) => [c.kernel.label, c.kernel])).values()]);
  const payloads = stagePayloads(cells);
  if (payloads !== null) {
    args.push('--payload-stage', payloads.dir);
    share.push(payloads.dir);
  }
  for (const spec of staged.specs) args.push('--kernel', spec);
  share.push(...staged.shareDirs);
  for (const c of cells)
    for (const b of [c.binary, ...Object.values(c.switchable).map((s) => s.binary)]) {
      if (b !== null) {
        const d = shareDirFor(b);
        if (d) share.push(d);
      }
    }
  if (flags.config !== undefined) {
    args.push('--config', resolve(flags.config));
    const d = shareDirFor(flags.config);
    if (d) share.push(d);
  }
  if (flags.shard !== undefined) args.push('--shard', flags.shard);
  if (flags.jobs !== undefined) args.push('--jobs', String(flags.jobs));
  if (flags.compareEevdf) args.push('--compare-eevdf');
  if (flags.verbose) args.push('--verbose');
  args.push(...bundleDelegateArgs(flags), ...monitorDelegateArgs(flags));
  const maxCell = Math.max(...cells.map((c) => c.memoryMiB), 256) + AGENT_MEMORY_MIB;
  const jobs = flags.jobs ?? 1;
  const total = cells.reduce((a, c) => a + c.timeoutMs, 0);
  let resultText: string | undefined;
  let code: number;
  try {
    code = await runInTestHostInstead(
      {
        args,
        shareDirs: share,
        memoryMiB: Math.max(3072, jobs * (maxCell + 700) + 1024),
        timeoutMs: total / Math.max(1, jobs) + 600_000,
        onResult: (t) => {
          resultText = t;
        },
        output: flags.json === '-' ? process.stderr : process.stdout,
      },
      why,
    );
  } finally {
    staged.cleanup();
    payloads?.cleanup();
  }
  if (flags.json !== undefined || flags.junit !== undefined) {
    if (resultText === undefined) {
      process.stderr.write(
        paint(process.stderr).red(
          'ktstr-wasm: error: the run inside the test host returned no result; --json/--junit not written',
        ) + '\n',
      );
      return code === 0 ? EXIT_FAILED : code;
    }
    writeOutputs(parseTestRun(resultText, "the test host's result"), flags);
  }
  return code;
}

export async function runTestCommand(files: string[], flags: TestFlags): Promise<number> {
  const shard = flags.shard === undefined ? null : parseShard(flags.shard); // ShardError: a usage error
  // bad test files, config, scheduler or kernel are usage errors (TestFileError, RegistryError, MatrixError)
  const tests = await collectAll(files, flags);
  let all = matrixFor(tests, flags);
  if (!flags.list) {
    const fixtures = all.map((c) => ({ scheduler: c.scheduler, kernel: c.kernel, binary: c.binary }));
    if (
      (
        await buildMissingFixtures(fixtures, (m) =>
          process.stderr.write(paint(process.stderr).dim(`ktstr-wasm: ${m}`) + '\n'),
        )
      ).length > 0
    )
      all = matrixFor(tests, flags);
  }
  const cells = shard === null ? all : shardCells(all, shard);
  if (flags.list) {
    process.stdout.write(listText(cells));
    return EXIT_OK;
  }
  const kvm = unusableKvm();
  if (kvm !== null) {
    if (!flags.testHost)
      throw new UsageError(
        `${kvm.why}; --no-test-host was given, so the tests cannot run here (run \`ktstr-wasm doctor\`)`,
      );
    return delegate(files, flags, kvm.why, all);
  }
  const maxGuest = Math.max(...cells.map((c) => c.memoryMiB), 256) + AGENT_MEMORY_MIB;
  const jobs = flags.jobs ?? defaultJobs(maxGuest);
  const err = process.stderr;
  const run = new TestRun({
    cells,
    matrix: all.map((c) => c.id),
    shard,
    jobs,
    tool: packageVersion(),
    dumps: dumpPolicy(flags),
    repro: flags.repro !== false,
    monitorIntervalMs: flags.monitorInterval,
    snapshotDir: flags.snapshot === false ? null : undefined,
    events: {
      phase: (id, phase) => {
        if (flags.verbose) err.write(paint(err).dim(`  ${id}: ${phase}`) + '\n');
      },
      finished: (r, done, total) => {
        err.write(progressLine(r, done, total, paint(err)) + '\n');
        if (flags.bundleBlocks) sendBundle(r);
        if (flags.verbose) {
          const ph = Object.entries(r.phases)
            .filter((e): e is [string, number] => typeof e[1] === 'number')
            .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`)
            .join(', ');
          const spawn = r.runs.map((x) => `${x.workers.length} workers in ${x.spawnMs.toFixed(0)} ms`).join(', ');
          const rss = r.hostRssBytes === null ? '?' : `${(r.hostRssBytes / 2 ** 20).toFixed(0)} MiB`;
          err.write(
            paint(err).dim(
              `    ${r.start ?? 'cold'}${r.restoredAt === undefined ? '' : ` at ${r.restoredAt}`}; phases: ${ph}${spawn ? `; spawn ${spawn}` : ''}; host RSS ${rss}`,
            ) + '\n',
          );
        }
      },
    },
  });
  const release = stopOnInterrupt('every test', () => run.interrupt(), err);
  let result: TestRunResult;
  try {
    err.write(
      `ktstr-wasm test: ${cells.length} test${cells.length === 1 ? '' : 's'}${shard ? ` (shard ${shard.index}/${shard.count} of ${all.length})` : ''}, ${Math.min(jobs, cells.length)} at a time\n`,
    );
    result = await run.run();
  } finally {
    release();
  }
  printReport(result, flags.json === '-' ? process.stderr : process.stdout, { compare: flags.compareEevdf });
  writeOutputs(result, flags);
  // compact: the block crosses the test host's serial console
  if (flags.resultBlock) process.stdout.write(`${RESULT_BEGIN}\n${JSON.stringify(result)}\n${RESULT_END}\n`);
  if (result.interrupted) return EXIT_INTERRUPTED;
  return result.tests.length === cells.length && result.tests.every((t) => t.status !== 'fail') ? EXIT_OK : EXIT_FAILED;
}

export async function runTestMerge(files: string[], flags: { json?: string; junit?: string }): Promise<number> {
  const results = files.map((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${f}: ${(e as Error).message}`);
    }
    // a file named on the command line that is no test run is a usage error (the test host's own result, a failure)
    try {
      return parseTestRun(text, f);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  });
  let merged: ReturnType<typeof mergeTestRuns>;
  try {
    merged = mergeTestRuns(results, files);
  } catch (e) {
    if (e instanceof TestJsonError) throw new UsageError(e.message);
    throw e;
  }
  printReport(merged.result, flags.json === '-' ? process.stderr : process.stdout, { missing: merged.missing });
  writeOutputs(merged.result, flags);
  return merged.missing.length === 0 && merged.result.tests.every((t) => t.status !== 'fail') ? EXIT_OK : EXIT_FAILED;
}
