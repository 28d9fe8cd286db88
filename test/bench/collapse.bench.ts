// `npm run bench:collapse`: throughput (MB/s) of the WASM core and the TypeScript oracle,
// in the same run, on the real fixtures and on generated logs of a few hundred MB, plus
// peak RSS per input size (each big run in a fresh child process, so RSS is per run); then
// the CLI end to end (bin/ktstr-wasm, file -> stdout redirected to a file) on a >= 100 MB
// log made of the real fixtures, text, --json, --stats and the oracle, and the peak RSS of
// a 2 GB one (KTSTR_BENCH_BIG_MB=0 skips it). Prints tables; asserts nothing.

import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EngineName } from '../../src/collapse/index.js';
import { collapse } from '../helpers/engines.js';
import { fixtures } from '../helpers/fixtures.js';
import { repoPath } from '../helpers/repo.js';
import type { ChildResult } from '../helpers/stream-child.js';

const ENGINES: readonly EngineName[] = ['wasm', 'ts'];
const SIZES_MB = [100, 400];
const CLI_MB = 110;

function table(header: string[], rows: string[][]): void {
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
  console.log(line(header));
  console.log(width.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  console.log();
}

const mbps = (bytes: number, seconds: number): number => bytes / 1e6 / seconds;
const fmt = (n: number, digits = 1): string => n.toFixed(digits);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Seconds per collapse of `input`: median of 3 measurements, each repeated for >= 100 ms. */
function timeCollapse(engine: EngineName, input: Buffer): number {
  const samples: number[] = [];
  for (let m = 0; m < 3; m++) {
    let reps = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0;
    do {
      collapse(engine, input);
      reps++;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    } while (elapsed < 0.1);
    samples.push(elapsed / reps);
  }
  return median(samples);
}

function benchFixtures(): void {
  console.log('Real fixtures (in process, median of 3; each sample repeats the collapse for >= 100 ms)\n');
  const rows: string[][] = [];
  const all = fixtures();
  const inputs: Array<[string, Buffer]> = all.map((f) => [f.name, f.bytes]);
  inputs.push(['all fixtures concatenated', Buffer.concat(all.map((f) => f.bytes))]);
  for (const [name, bytes] of inputs) {
    const lines = (b: Buffer): number => b.toString('latin1').split('\n').length - 1;
    const out = collapse('wasm', bytes);
    const same = out.equals(collapse('ts', bytes));
    const [w, t] = ENGINES.map((e) => timeCollapse(e, bytes));
    rows.push([
      name,
      fmt(bytes.length / 1e3),
      `${lines(bytes)} -> ${lines(out)}`,
      fmt(mbps(bytes.length, w)),
      fmt(mbps(bytes.length, t)),
      fmt(t / w, 2),
      same ? 'yes' : 'NO',
    ]);
  }
  table(['fixture', 'KB', 'lines in -> out', 'wasm MB/s', 'ts MB/s', 'wasm/ts', 'same'], rows);
}

function child(engine: EngineName, megabytes: number): ChildResult {
  const out = execFileSync(
    process.execPath,
    [repoPath('dist', 'test', 'helpers', 'stream-child.js'), engine, String(megabytes)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(out) as ChildResult;
}

function benchGenerated(): void {
  console.log('Generated level-2 logs (collapseStream from a chunk generator to a counting sink;');
  console.log('one fresh child process per run; the ~17 MiB generator pool is part of the RSS)\n');
  const rows: string[][] = [];
  const results = new Map<string, ChildResult>();
  for (const size of SIZES_MB) {
    for (const engine of ENGINES) {
      const r = child(engine, size);
      results.set(`${engine}:${size}`, r);
      rows.push([
        `${engine}`,
        String(size),
        fmt(r.outputBytes / 1e6),
        fmt(r.seconds, 2),
        fmt(mbps(r.inputBytes, r.seconds)),
        fmt(r.maxRssMiB, 0),
      ]);
    }
  }
  table(['engine', 'MB in', 'MB out', 'seconds', 'MB/s', 'peak RSS MiB'], rows);
  const ratio = SIZES_MB.map((s) => {
    const w = results.get(`wasm:${s}`)!;
    const t = results.get(`ts:${s}`)!;
    const same = w.outputBytes === t.outputBytes ? 'same output size' : 'OUTPUT SIZE DIFFERS';
    return `${s} MB: wasm/ts = ${fmt(t.seconds / w.seconds, 2)}x (${same})`;
  });
  console.log(ratio.join('\n'));
  const rss = ENGINES.map(
    (e) => `${e} ${SIZES_MB.map((s) => fmt(results.get(`${e}:${s}`)!.maxRssMiB, 0)).join(' -> ')} MiB`,
  );
  console.log(`peak RSS ${SIZES_MB.join(' MB -> ')} MB: ${rss.join('; ')}\n`);
}

/** A log of at least `megabytes` MB made by concatenating the real fixtures, rotating (as
 * many programs' logs in one file). */
function writeRealLog(file: string, megabytes: number): number {
  const logs = fixtures().map((f) => f.bytes);
  const fd = openSync(file, 'w');
  let bytes = 0;
  try {
    for (let k = 0; bytes < megabytes * 1e6; k++) bytes += writeSync(fd, logs[k % logs.length]);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

interface CliRun {
  status: number | null;
  wall: number;
  cpu: number;
  rssMiB: number;
  outBytes: number;
}

/** bin/ktstr-wasm with `args`, stdout redirected to a file; CPU time and peak RSS from inside the process. */
function runCli(args: string[], outFile: string): CliRun {
  const bin = repoPath('bin', 'ktstr-wasm');
  const script = `process.argv = [process.argv[0], ${JSON.stringify(bin)}, ...${JSON.stringify(args)}];
process.on('exit', () => { const u = process.resourceUsage();
  process.stderr.write('rusage ' + u.userCPUTime + ' ' + u.systemCPUTime + ' ' + u.maxRSS + '\\n'); });
await import(${JSON.stringify(pathToFileURL(bin).href)});`;
  const out = openSync(outFile, 'w');
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', out, 'pipe'] });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  closeSync(out);
  const m = /rusage (\d+) (\d+) (\d+)/.exec(r.stderr.toString());
  return {
    status: r.status,
    wall,
    cpu: m ? (Number(m[1]) + Number(m[2])) / 1e6 : NaN,
    rssMiB: m ? Number(m[3]) / 1024 : NaN,
    outBytes: statSync(outFile).size,
  };
}

/** The real CLI end to end: file -> stdout redirected to a file, on a real log of >= 100 MB. */
function benchCli(): void {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-bench-'));
  try {
    const file = join(dir, 'real.log');
    const outFile = join(dir, 'out.txt');
    const bytes = writeRealLog(file, CLI_MB);
    console.log(
      `CLI end to end: ktstr-wasm collapse FILE > out.txt (${fmt(bytes / 1e6, 0)} MB of real logs, the fixtures`,
    );
    console.log(
      "concatenated; page-cached). MB/s by wall clock and by the CLI process's own CPU time (user + system),",
    );
    console.log('which is what a busy machine does not distort; median of 3 runs.\n');
    const cases: Array<[string, string[]]> = [
      ['collapse (wasm)', ['collapse', file]],
      ['collapse --json', ['collapse', '--json', file]],
      ['collapse --stats', ['collapse', '--stats', file]],
      ['collapse --engine ts', ['collapse', '--engine', 'ts', file]],
    ];
    const rows: string[][] = [];
    for (const [name, args] of cases) {
      const runs = [0, 1, 2].map(() => runCli(args, outFile));
      const r = runs.sort((x, y) => x.wall - y.wall)[1];
      rows.push([
        name,
        r.status === 0 ? 'ok' : `exit ${r.status}`,
        fmt(r.outBytes / 1e6, 2),
        fmt(r.wall, 2),
        fmt(mbps(bytes, r.wall)),
        fmt(r.cpu, 2),
        fmt(mbps(bytes, r.cpu)),
        fmt(r.rssMiB, 0),
      ]);
    }
    table(['command', 'status', 'MB out', 'wall s', 'MB/s wall', 'cpu s', 'MB/s cpu', 'peak RSS MiB'], rows);
    const bigMb = Number(process.env.KTSTR_BENCH_BIG_MB ?? 2000);
    if (bigMb > 0) {
      const big = join(dir, 'big.log');
      const bigBytes = writeRealLog(big, bigMb);
      const r = runCli(['collapse', big], outFile);
      console.log(
        `Bounded memory: ${fmt(bigBytes / 1e9, 2)} GB of real logs (KTSTR_BENCH_BIG_MB=${bigMb}): ` +
          `${r.status === 0 ? 'ok' : `exit ${r.status}`}, ${fmt(r.wall, 1)} s wall (${fmt(mbps(bigBytes, r.wall))} MB/s), ` +
          `${fmt(r.cpu, 1)} s cpu (${fmt(mbps(bigBytes, r.cpu))} MB/s), peak RSS ${fmt(r.rssMiB, 0)} MiB\n`,
      );
      rmSync(big, { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`ktstr-wasm collapse benchmark — node ${process.version}, ${process.arch}\n`);
benchFixtures();
benchGenerated();
benchCli();
