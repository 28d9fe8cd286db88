// Streaming memory: generated logs (produced chunk by chunk, never held whole) go through
// the WASM engine in child processes; each child's peak RSS stays under a fixed bound and
// does not grow between 200 MB and 1 GB of input.

import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { wasmBuilt } from '../helpers/engines.js';
import { repoPath } from '../helpers/repo.js';
import type { ChildResult } from '../helpers/stream-child.js';

const RSS_BOUND_MIB = 400;
const GROWTH_BOUND_MIB = 64;

function measure(megabytes: number): ChildResult {
  const out = execFileSync(
    process.execPath,
    [repoPath('dist', 'test', 'helpers', 'stream-child.js'), 'wasm', String(megabytes)],
    {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return JSON.parse(out) as ChildResult;
}

test('wasm engine: 200 MB and 1 GB stream through in bounded memory', () => {
  assert.ok(wasmBuilt(), 'build/collapse.wasm is missing: run npm run build');
  const small = measure(200);
  const large = measure(1000);
  for (const r of [small, large]) {
    const label = `${(r.inputBytes / 1e6).toFixed(0)} MB input`;
    assert.ok(r.maxRssMiB < RSS_BOUND_MIB, `${label}: peak RSS ${r.maxRssMiB.toFixed(0)} MiB >= ${RSS_BOUND_MIB} MiB`);
    assert.ok(
      r.outputBytes > 0 && r.outputBytes < r.inputBytes / 4,
      `${label}: loops collapsed (${r.outputBytes} bytes out)`,
    );
  }
  assert.is(small.inputBytes, 200e6);
  assert.is(large.inputBytes, 1000e6);
  const growth = large.maxRssMiB - small.maxRssMiB;
  assert.ok(
    growth < GROWTH_BOUND_MIB,
    `peak RSS grew by ${growth.toFixed(0)} MiB from 200 MB to 1 GB of input (${small.maxRssMiB.toFixed(0)} -> ${large.maxRssMiB.toFixed(0)} MiB)`,
  );
});

test.run();
