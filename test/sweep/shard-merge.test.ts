// Shards and merge on a realistic matrix (2 schedulers x 2 kernels x the 24 x86 presets,
// cost = vCPUs + a boot's fixed part, setup failures free): every cell in exactly one shard,
// the same split whatever order the cells come in (and a pinned split, so it cannot drift
// between versions or machines), balanced within one cell's cost, --shard parsing; merging
// the shards' files gives the whole run back, and mismatched or overlapping files are refused
// with the files named.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { assignShards, parseShard, shardCells, ShardError } from '../../src/sweep/shard.js';
import { mergeResults } from '../../src/sweep/merge.js';
import { parseSweepResult, serializeSweepResult } from '../../src/sweep/json.js';
import { healthy, rejected, stockSetupFailure, sweepResult } from './fake-cells.js';
import { repoPath } from '../helpers/repo.js';

interface Cell {
  id: string;
  cpus: number;
  cost: number;
}

const presets = (
  JSON.parse(readFileSync(repoPath('presets', 'x86.json'), 'utf8')) as { presets: { name: string; cpus: number }[] }
).presets;
const matrix: Cell[] = ['scx-ktstr', 'scx_lavd'].flatMap((s) =>
  ['6.12.117-sched_ext', '6.12.118+deb12-cloud-amd64'].flatMap((k) =>
    presets.map((p) => ({ id: `sweep/${s}/${k}/${p.name}`, cpus: p.cpus, cost: k.includes('cloud') ? 0 : p.cpus + 4 })),
  ),
);

/** A fixed permutation (no Math.random: the test is the same on every run). */
function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  let seed = 12345;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

test("every cell in exactly one shard, input order kept, balanced within one cell's cost", () => {
  assert.is(matrix.length, 96);
  const maxCost = Math.max(...matrix.map((c) => c.cost));
  for (const n of [1, 2, 3, 5, 7, 96, 100]) {
    const owner = new Map<string, number>();
    const loads: number[] = [];
    for (let i = 1; i <= n; i++) {
      const part = shardCells(matrix, { index: i, count: n });
      loads.push(part.reduce((a, c) => a + c.cost, 0));
      for (const c of part) {
        assert.not.ok(owner.has(c.id), `${c.id} in shards ${owner.get(c.id)} and ${i} of ${n}`);
        owner.set(c.id, i);
      }
      const positions = part.map((c) => matrix.indexOf(c));
      assert.equal(
        positions,
        [...positions].sort((a, b) => a - b),
        'matrix order kept',
      );
    }
    assert.is(owner.size, matrix.length, `every cell in a shard (n=${n})`);
    assert.ok(Math.max(...loads) - Math.min(...loads) <= maxCost, `n=${n}: loads ${loads.join(', ')}`);
  }
});

test('deterministic: the same split whatever the input order; a pinned split for a small matrix', () => {
  for (const n of [2, 3, 7]) assert.equal(assignShards(shuffled(matrix), n), assignShards(matrix, n));
  const small = [
    { id: 'a', cost: 8 },
    { id: 'b', cost: 8 },
    { id: 'c', cost: 13 },
    { id: 'd', cost: 5 },
    { id: 'e', cost: 0 },
    { id: 'f', cost: 8 },
  ];
  // descending cost, ties by id, each to the least loaded shard (ties: the lower index):
  // c->1 (13|0) a->2 (13|8) b->2 (13|16) f->1 (21|16) d->2 (21|21) e->1
  assert.equal(
    shardCells(small, { index: 1, count: 2 }).map((c) => c.id),
    ['c', 'e', 'f'],
  );
  assert.equal(
    shardCells(small, { index: 2, count: 2 }).map((c) => c.id),
    ['a', 'b', 'd'],
  );
});

test('a cost function instead of a cost field; bad shards and costs refused', () => {
  const plain = matrix.map(({ id, cpus }) => ({ id, cpus }));
  const byCpus = shardCells(plain, { index: 2, count: 4 }, (c) => c.cpus);
  assert.equal(
    byCpus.map((c) => c.id),
    shardCells(
      matrix.map((c) => ({ ...c, cost: c.cpus })),
      { index: 2, count: 4 },
    ).map((c) => c.id),
  );
  assert.throws(
    () => shardCells(matrix, { index: 0, count: 2 }),
    (e: unknown) => e instanceof ShardError,
  );
  assert.throws(() => shardCells(matrix, { index: 3, count: 2 }), /index must be from 1 to 2/);
  assert.throws(() => shardCells(plain, { index: 1, count: 2 }, () => Number.NaN), /cost NaN is not a finite number/);
  assert.throws(() => shardCells(plain, { index: 1, count: 2 }, () => -1), /cost -1/);
  assert.throws(() => shardCells([matrix[0], matrix[0]], { index: 1, count: 2 }), /in the matrix twice/);
  assert.throws(() => assignShards(matrix, 0), /shard count must be/);
});

test('parseShard: I/N with 1 <= I <= N; usage errors otherwise', () => {
  assert.equal(parseShard('2/4'), { index: 2, count: 4 });
  assert.equal(parseShard(' 1 / 1 '), { index: 1, count: 1 });
  const bad: [string, RegExp][] = [
    ['0/4', /I must be from 1 to 4/],
    ['5/4', /I must be from 1 to 4/],
    ['1/0', /N must be from 1/],
    ['3', /I\/N/],
    ['-1/2', /I\/N/],
    ['1/2/3', /I\/N/],
    ['a/b', /I\/N/],
    ['', /I\/N/],
    ['1.5/2', /I\/N/],
    ['1/99999', /N must be from 1 to 10000/],
  ];
  for (const [text, why] of bad) assert.throws(() => parseShard(text), why, text);
});

const cells = [...healthy, stockSetupFailure, rejected];
const whole = sweepResult(cells);
/** The sweep as N shard files would hold it. */
function shardFiles(n: number) {
  return Array.from({ length: n }, (_, i) =>
    sweepResult(
      shardCells(cells, { index: i + 1, count: n }, (c) => c.workers.length + 4),
      {
        matrix: whole.matrix,
        shard: { index: i + 1, count: n },
        startedAt: `2026-12-04T03:0${i}:00.000Z`,
        wallMs: 1000 * (i + 1),
      },
    ),
  );
}

test('merge: the shards give the whole run back, in matrix order; it reads back as a result file', () => {
  const parts = shardFiles(3);
  assert.ok(
    parts.every((p) => p.cells.length > 0 && p.cells.length < cells.length),
    'each shard ran part of it',
  );
  const m = mergeResults([parts[2], parts[0], parts[1]]);
  assert.equal(m.result.cells, whole.cells);
  assert.equal(m.result.matrix, whole.matrix);
  assert.is(m.result.shard, null);
  assert.is(m.result.startedAt, '2026-12-04T03:00:00.000Z', 'the earliest start');
  assert.is(m.result.wallMs, 3000, 'the longest shard');
  assert.equal(m.missing, []);
  assert.is(m.exitStatus, 1, 'a failed cell fails the merged run');
  assert.equal(parseSweepResult(serializeSweepResult(m.result), 'merged.json'), m.result);
});

test('merge: exit 0 only when every matrix cell ran and passed and no shard was interrupted', () => {
  const passing = sweepResult(healthy);
  const [a, b] = [1, 2].map((i) =>
    sweepResult(
      shardCells(healthy, { index: i, count: 2 }, () => 1),
      { matrix: passing.matrix, shard: { index: i, count: 2 } },
    ),
  );
  assert.is(mergeResults([a, b]).exitStatus, 0);
  assert.is(mergeResults([a, { ...b, interrupted: true }]).exitStatus, 1);
  const partial = mergeResults([b]);
  assert.equal(
    partial.missing,
    a.cells.map((c) => c.id),
    'cells no file ran, in matrix order',
  );
  assert.is(partial.exitStatus, 1);
});

test('merge refuses: another matrix (naming a cell), the same cell twice (naming both files), nothing to merge', () => {
  const parts = shardFiles(2);
  const names = ['shard-1.json', 'shard-2.json'];
  assert.throws(
    () => mergeResults([parts[0], parts[0]], [names[0], 'copy.json']),
    /cell sweep\/.* is in two of the files \(shard-1\.json and copy\.json\)/,
  );
  const other = sweepResult(healthy);
  assert.throws(
    () => mergeResults([parts[0], other], names),
    /shard-2\.json comes from another matrix than shard-1\.json \(4 cells vs 6; sweep\/scx-ktstr\/6\.12\.118\+deb12-cloud-amd64\/tiny-1llc is in shard-1\.json's matrix, not in shard-2\.json's\)/,
  );
  const reordered = { ...parts[1], matrix: [...parts[1].matrix].reverse() };
  assert.throws(
    () => mergeResults([parts[0], reordered]),
    /file 2 comes from another matrix than file 1 \(6 cells vs 6; the same cells in another order \(position 1:/,
  );
  assert.throws(() => mergeResults([]), /no result files to merge/);
});

test.run();
