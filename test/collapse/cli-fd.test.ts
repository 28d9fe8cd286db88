// The CLI's synchronous file path (src/collapse/fd-io.ts): a log file (or stdin redirected
// from one) collapsed into stdout redirected to a file gives exactly the expected output, in
// text, --json and --stats, on both engines; the same as through a pipe (the stream path).

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { expectedCollapsed } from '../helpers/fixtures.js';
import { repoPath } from '../helpers/repo.js';

const BIN = repoPath('bin', 'ktstr-wasm');
const LOG = repoPath('test', 'fixtures', 'logs', 'branching_loop_40.log');

/** Runs the CLI with stdout redirected to a file (and stdin from `stdinFile`); returns that file's bytes. */
function toFile(args: string[], stdinFile?: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-cli-fd-'));
  const outPath = join(dir, 'out');
  const out = openSync(outPath, 'w');
  const input = stdinFile === undefined ? 'ignore' : openSync(stdinFile, 'r');
  try {
    const r = spawnSync(process.execPath, [BIN, ...args], { stdio: [input, out, 'pipe'] });
    assert.is(r.status, 0, r.stderr.toString());
    return readFileSync(outPath);
  } finally {
    closeSync(out);
    if (typeof input === 'number') closeSync(input);
    rmSync(dir, { recursive: true, force: true });
  }
}

function toPipe(args: string[]): Buffer {
  const r = spawnSync(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20 });
  assert.is(r.status, 0, r.stderr.toString());
  return r.stdout;
}

test('file to file: the expected output on both engines, and the same as through a pipe', () => {
  const expected = expectedCollapsed('branching_loop_40');
  for (const engine of ['wasm', 'ts']) {
    assert.ok(toFile(['collapse', '--engine', engine, LOG]).equals(expected), engine);
  }
  assert.ok(toPipe(['collapse', LOG]).equals(expected), 'pipe');
  assert.ok(toFile(['collapse', '-'], LOG).equals(expected), 'stdin redirected from the file');
});

test('--json and --stats: the same bytes by file and by pipe', () => {
  for (const args of [
    ['collapse', '--json', LOG],
    ['collapse', '--stats', LOG],
    ['collapse', '--stats', '--json', LOG],
  ]) {
    assert.ok(toFile(args).equals(toPipe(args)), args.join(' '));
  }
  assert.match(toFile(['collapse', '--stats', LOG]).toString(), /processed insns\s+1349/);
});

test.run();
