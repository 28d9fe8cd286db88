// `npm run bench:cli`: how long the CLI takes to start, from spawn to exit, for commands
// that only build the commander program (`--version`, `shell --help`), against a bare
// `node -e 0` measured in the same run (so the ratio says what the CLI adds to Node's own
// start-up on this machine), and `--version` from the compiled modules rather than the one-file
// bundle bin/ktstr-wasm loads (src/build/bundles.ts). Runs alternate between the commands; medians of
// KTSTR_BENCH_RUNS spawns each (default 15). Inside the test host:
// `flock /tmp/ktstr-testhost.lock ./bin/ktstr-wasm host run -- node dist/test/bench/cli-start.bench.js`.
// Prints a table; asserts nothing (a spawn that fails is reported and ends the bench with 1).

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../../src/paths.js';

const RUNS = Math.max(1, Number(process.env.KTSTR_BENCH_RUNS ?? 15));
const bin = join(packageRoot(), 'bin', 'ktstr-wasm');

interface Case {
  name: string;
  argv: string[];
}

const CASES: Case[] = [
  { name: 'node -e 0 (baseline)', argv: ['-e', '0'] },
  { name: 'ktstr-wasm --version', argv: [bin, '--version'] },
  // the same from the compiled modules instead of the one-file bundle bin/ktstr-wasm loads
  {
    name: '--version from the modules',
    argv: [
      '--input-type=module',
      '-e',
      `await (await import(${JSON.stringify(pathToFileURL(join(packageRoot(), 'dist', 'src', 'cli', 'main.js')).href)})).main([process.argv[0], 'ktstr-wasm', '--version'])`,
    ],
  },
  { name: 'ktstr-wasm shell --help', argv: [bin, 'shell', '--help'] },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Milliseconds from spawn to exit of one run; throws when the command does not exit 0. */
function timeOnce(c: Case): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, c.argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  const ms = performance.now() - t0;
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`${c.name}: exit ${r.status ?? r.signal}\n${r.stderr.toString().slice(-1000)}`);
  return ms;
}

const samples = CASES.map(() => [] as number[]);
try {
  // one untimed round warms the file cache
  for (const c of CASES) timeOnce(c);
  for (let i = 0; i < RUNS; i++) CASES.forEach((c, k) => samples[k].push(timeOnce(c)));
} catch (err) {
  process.stderr.write(`cli-start bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

const base = median(samples[0]);
const header = ['command', 'median ms', 'min ms', 'over node ms', 'x node'];
const rows = CASES.map((c, k) => {
  const m = median(samples[k]);
  return [c.name, m.toFixed(1), Math.min(...samples[k]).toFixed(1), (m - base).toFixed(1), (m / base).toFixed(2)];
});
console.log(
  `CLI start-up, spawn to exit: median of ${RUNS} runs each (${process.version}, ${process.env.KTSTR_IN_TEST_HOST === '1' ? 'inside the test host' : 'this machine'})\n`,
);
const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]): string =>
  cells.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
console.log(line(header));
console.log(width.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
