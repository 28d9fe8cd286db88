// `npm run bench:collapse`: throughput (MB/s) of the WASM core and the TypeScript oracle,
// in the same run, on the real fixtures and on generated logs of a few hundred MB, plus
// peak RSS per input size (each big run in a fresh child process, so RSS is per run).
// Prints tables; asserts nothing.

import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EngineName } from '../../src/collapse/index.js';
import { collapse } from '../helpers/engines.js';
import { fixtures } from '../helpers/fixtures.js';
import { logChunks, logPool } from '../helpers/big-log.js';
import { repoPath } from '../helpers/repo.js';
import type { ChildResult } from '../helpers/stream-child.js';

const ENGINES: readonly EngineName[] = ['wasm', 'ts'];
const SIZES_MB = [100, 400];
const CLI_MB = 300;

function table(header: string[], rows: string[][]): void {
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
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
    rows.push([name, fmt(bytes.length / 1e3), `${lines(bytes)} -> ${lines(out)}`, fmt(mbps(bytes.length, w)),
      fmt(mbps(bytes.length, t)), fmt(t / w, 2), same ? 'yes' : 'NO']);
  }
  table(['fixture', 'KB', 'lines in -> out', 'wasm MB/s', 'ts MB/s', 'wasm/ts', 'same'], rows);
}

function child(engine: EngineName, megabytes: number): ChildResult {
  const out = execFileSync(process.execPath, [repoPath('dist', 'test', 'helpers', 'stream-child.js'), engine, String(megabytes)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20,
  });
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
      rows.push([`${engine}`, String(size), fmt(r.outputBytes / 1e6), fmt(r.seconds, 2), fmt(mbps(r.inputBytes, r.seconds)),
        fmt(r.maxRssMiB, 0)]);
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
  const rss = ENGINES.map((e) => `${e} ${SIZES_MB.map((s) => fmt(results.get(`${e}:${s}`)!.maxRssMiB, 0)).join(' -> ')} MiB`);
  console.log(`peak RSS ${SIZES_MB.join(' MB -> ')} MB: ${rss.join('; ')}\n`);
}

/** The real CLI on a file, stdout to /dev/null; RSS from inside the CLI process. */
function benchCli(): void {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-bench-'));
  try {
    const file = join(dir, 'big.log');
    const fd = openSync(file, 'w');
    let bytes = 0;
    for (const chunk of logChunks(CLI_MB * 1e6, logPool())) bytes += writeSync(fd, chunk);
    closeSync(fd);
    console.log(`CLI end to end: ktstr-wasm collapse FILE > /dev/null (${fmt(bytes / 1e6, 0)} MB file, page-cached)\n`);
    const mainUrl = pathToFileURL(repoPath('dist', 'src', 'cli', 'main.js')).href;
    const rows: string[][] = [];
    const seconds: Record<string, number> = {};
    for (const engine of ENGINES) {
      const script = `import { main } from ${JSON.stringify(mainUrl)};
process.on('exit', () => process.stderr.write('maxRSS ' + process.resourceUsage().maxRSS + '\\n'));
await main(['node', 'ktstr-wasm', 'collapse', '--engine', ${JSON.stringify(engine)}, ${JSON.stringify(file)}]);`;
      const devnull = openSync('/dev/null', 'w');
      const start = process.hrtime.bigint();
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', devnull, 'pipe'] });
      const s = Number(process.hrtime.bigint() - start) / 1e9;
      closeSync(devnull);
      const rss = /maxRSS (\d+)/.exec(r.stderr.toString());
      seconds[engine] = s;
      rows.push([engine, r.status === 0 ? 'ok' : `exit ${r.status}`, fmt(s, 2), fmt(mbps(bytes, s)),
        rss ? fmt(Number(rss[1]) / 1024, 0) : '?']);
    }
    table(['engine', 'status', 'seconds', 'MB/s', 'peak RSS MiB'], rows);
    console.log(`CLI wasm/ts = ${fmt(seconds.ts / seconds.wasm, 2)}x\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`ktstr-wasm collapse benchmark — node ${process.version}, ${process.arch}\n`);
benchFixtures();
benchGenerated();
benchCli();
