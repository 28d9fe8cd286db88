// The sweep's output side on realistic results: the verified_insns table (flat, lo..hi, -),
// the grid (pass, fail, mixed; emoji and words), failing combinations, failure blocks,
// progress lines, the live status, JSON round trip and refusals, JUnit well-formedness with
// hostile text, shards (deterministic, complete, balanced) and merge.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CellResult } from '../../src/cell/result.js';
import {
  failingCombinations,
  failureBlock,
  LiveStatus,
  progressLine,
  summaryCounts,
  summaryGrid,
  verifiedInsnsTables,
  wantsPlainGlyphs,
} from '../../src/sweep/report.js';
import { parseSweepResult, serializeSweepResult } from '../../src/sweep/json.js';
import { sweepJunit, xmlEscape } from '../../src/sweep/junit.js';
import { assignShards, parseShard, shardCells } from '../../src/sweep/shard.js';
import { mergeResults } from '../../src/sweep/merge.js';
import { SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, type SweepResult } from '../../src/sweep/result.js';

const K1 = '6.12.117-sched_ext';
const K2 = '6.12.118-cloud';
const TOPOS: [string, number][] = [
  ['tiny-1llc', 4],
  ['tiny-2llc', 4],
  ['odd-3llc', 9],
  ['smt-2llc', 8],
];

function cell(
  scheduler: string,
  kernel: string,
  topology: string,
  cpus: number,
  over: Partial<CellResult> = {},
): CellResult {
  return {
    id: `sweep/${scheduler}/${kernel}/${topology}`,
    scheduler,
    kernel,
    topology,
    passed: true,
    schedulerStatus: 'attached (state enabled, ops ktstr)',
    programs: [
      { id: 1, name: 'ktstr_init', verifiedInsns: 100 + cpus * 10, runCount: 1, runTimeNs: 1000 },
      { id: 2, name: 'ktstr_dispatch', verifiedInsns: 23, runCount: 500, runTimeNs: 90000 },
    ],
    guestPrograms: [],
    schedulerLog: '',
    workers: [{ cpu: 0, iterations: 10, cpuTimeNs: 2e9, policy: 7 }],
    consoleTail: '',
    phases: { boot: 9000 },
    wallMs: 12406,
    hostRssBytes: 500e6,
    ...over,
  };
}

const healthy = TOPOS.map(([t, n]) => cell('scx-ktstr', K1, t, n));
const rejected = cell('ktstr_broken', K1, 'tiny-1llc', 4, {
  passed: false,
  programs: [],
  failure: { kind: 'verify', message: "R1 invalid mem access 'scalar'" },
  schedulerStatus: 'NOT ATTACHED — scheduler process exited during BPF load',
  verifier: {
    processedInsns: 186,
    insnLimit: 1000000,
    totalStates: 7,
    peakStates: 7,
    maxStatesPerInsn: 0,
    markRead: 0,
  },
  schedulerLog: "--- 8x of the following 25 lines ---\n...\nR1 invalid mem access 'scalar'\n",
  workers: [],
});
const mixed = [
  cell('scx-ktstr', K1, 'tiny-1llc', 4),
  cell('scx-ktstr', K2, 'tiny-1llc', 4, {
    passed: false,
    programs: [],
    failure: { kind: 'setup', message: 'kernel has no sched_ext' },
  }),
];

function result(cells: CellResult[], over: Partial<SweepResult> = {}): SweepResult {
  return {
    schema: SWEEP_SCHEMA,
    version: SWEEP_SCHEMA_VERSION,
    tool: '0.1.0',
    startedAt: '2026-12-04T00:00:00.000Z',
    wallMs: 50000,
    shard: null,
    matrix: cells.map((c) => c.id),
    cells,
    interrupted: false,
    ...over,
  };
}

test('verified_insns table: flat values, a lo..hi range across topologies, - when a kernel reported none', () => {
  const t = verifiedInsnsTables([
    ...healthy,
    ...mixed.slice(1).map((c) => ({ ...c, scheduler: 'scx-ktstr', id: c.id + '-x' })),
  ]);
  assert.match(t, /scx-ktstr:\n/);
  const row = t.split('\n').find((l) => l.trim().startsWith(K1))!;
  assert.match(row, /\b23\b/, 'ktstr_dispatch is flat');
  assert.match(row, /140\.\.190/, 'ktstr_init ranges over 4..9 CPUs');
  const row2 = t.split('\n').find((l) => l.trim().startsWith(K2))!;
  assert.equal(row2.trim().split(/\s+/).slice(1), ['-', '-']);
  const header = t.split('\n').find((l) => l.trim().startsWith('kernel'))!;
  assert.ok(header.indexOf('ktstr_dispatch') < header.indexOf('ktstr_init'), 'programs sorted');
});

test('grid and counts: pass, fail, mixed; words when plain', () => {
  const cells = [
    ...healthy,
    rejected,
    ...mixed.map((c) => ({ ...c, scheduler: 'other', id: c.id.replace('scx-ktstr', 'other') })),
  ];
  const grid = summaryGrid(cells);
  assert.match(grid, /tiny-1llc +✅ +❌ +🇽/);
  assert.match(summaryGrid(cells, { plain: true }), /tiny-1llc +PASS +FAIL +MIXED/);
  assert.match(summaryCounts(cells), /sweep summary: 4 ✅ {2}1 ❌ {2}1 🇽/);
  const f = failingCombinations(cells);
  assert.match(f, /ktstr_broken \/ 6\.12\.117-sched_ext \/ tiny-1llc: verify: R1 invalid mem access 'scalar'/);
  assert.match(f, /other \/ 6\.12\.118-cloud \/ tiny-1llc: setup/);
  assert.is(failingCombinations(healthy), '');
});

test('failure block, progress line, plain glyph choice', () => {
  const b = failureBlock(rejected);
  assert.match(b, /^=== ktstr_broken \| kernel 6\.12\.117-sched_ext \| topology tiny-1llc ===/);
  assert.match(b, /processed=186 {2}states=7\/7/);
  assert.match(b, /--- 8x of the following 25 lines ---/);
  assert.is(
    progressLine(healthy[2], 3, 4),
    'PASS [  12.4s] (3/4) sweep/scx-ktstr/6.12.117-sched_ext/odd-3llc — 1 CPUs progressed (>= 10 iterations each); struct_ops programs ran 501 times, 0.2 us/call',
  );
  assert.is(
    progressLine({ ...healthy[2], workers: [], programs: [] }, 3, 4),
    'PASS [  12.4s] (3/4) sweep/scx-ktstr/6.12.117-sched_ext/odd-3llc',
  );
  assert.match(progressLine(rejected, 1, 12), /^FAIL \[ {2}12\.4s\] \( 1\/12\) sweep\/ktstr_broken\/.* — verify: R1/);
  assert.ok(wantsPlainGlyphs({ NO_COLOR: '1', LANG: 'en_US.UTF-8' }));
  assert.ok(wantsPlainGlyphs({ LANG: 'C' }));
  assert.not.ok(wantsPlainGlyphs({ LANG: 'en_US.UTF-8' }));
});

test('live status: counts, running jobs with phases, redrawn in place and cleared', () => {
  const s = new LiveStatus(healthy.map((c) => c.id));
  s.cellStarted(healthy[0].id, 1);
  s.cellPhase(healthy[0].id, 'probe');
  s.cellStarted(healthy[1].id, 2);
  const text = s.text(3200);
  assert.match(text, /0\/4 done, 2 running, 2 queued — 3\.2s/);
  assert.match(text, /\[1\] sweep\/scx-ktstr\/.*\/tiny-1llc: probe/);
  const first = s.render(3200);
  assert.not.match(first, /\u001b\[/, 'nothing to erase the first time');
  const second = s.render(3300);
  assert.ok(second.startsWith('\u001b[3F\u001b[0J'), 'erases the 3 lines drawn before');
  s.cellFinished(healthy[0]);
  assert.match(s.text(4000), /1\/4 done, 1 running, 2 queued/);
  assert.is(s.clear(), '\u001b[3F\u001b[0J');
  assert.is(s.clear(), '');
});

test('JSON: round trip, and refusals naming the field', () => {
  const r = result([...healthy, rejected]);
  assert.equal(parseSweepResult(serializeSweepResult(r), 'r.json'), r);
  assert.throws(() => parseSweepResult('{', 'x.json'), /x\.json: not JSON/);
  assert.throws(() => parseSweepResult(JSON.stringify({ ...r, version: 99 }), 'x.json'), /version 99/);
  assert.throws(() => parseSweepResult(JSON.stringify({ ...r, schema: 'other' }), 'x.json'), /not a sweep result/);
  const bad = JSON.parse(serializeSweepResult(r)) as { cells: Record<string, unknown>[] };
  bad.cells[1].failure = { kind: 'nonsense', message: 'x' };
  assert.throws(() => parseSweepResult(JSON.stringify(bad), 'x.json'), /x\.json\.cells\[1\]\.failure/);
  const stray = JSON.parse(serializeSweepResult(r)) as SweepResult;
  stray.matrix = stray.matrix.slice(1);
  assert.throws(() => parseSweepResult(JSON.stringify(stray), 'x.json'), /not in its matrix/);
});

/** A strict enough XML well-formedness check for our output: balanced tags, escaped text, no forbidden characters. */
function wellFormed(xml: string): void {
  assert.not.match(xml, /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/, 'no forbidden control characters');
  const body = xml.replace(/^<\?xml[^?]*\?>\n/, '');
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w.-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body)) !== null) {
    if (m[6]) assert.unreachable(`stray < at ${m.index}`);
    if (m[5] !== undefined) {
      assert.not.match(m[5], /&(?!(amp|lt|gt|quot|apos);)/, 'every & is an entity');
      assert.not.match(m[5], />/, 'no raw >');
      continue;
    }
    if (m[1]) assert.is(stack.pop(), m[2], `</${m[2]}> closes its element`);
    else if (!m[4]) stack.push(m[2]);
  }
  assert.equal(stack, [], 'every element closed');
}

test('JUnit: one testcase per cell, failures typed, hostile text escaped', () => {
  const hostile = {
    ...rejected,
    id: rejected.id + '-h',
    schedulerLog: 'a ]]> b < c & d "e" \u0000 \u001b[31m \ud800 tail',
  };
  const xml = sweepJunit(result([...healthy, rejected, hostile]));
  wellFormed(xml);
  assert.is((xml.match(/<testcase /g) ?? []).length, 6);
  assert.is((xml.match(/<failure type="verify"/g) ?? []).length, 2);
  assert.match(xml, /classname="sweep\.scx-ktstr" name="6\.12\.117-sched_ext\/odd-3llc"/);
  assert.is(xmlEscape('<a&"\'>'), '&lt;a&amp;&quot;&apos;&gt;');
});

test('shards: every cell in exactly one, deterministic, balanced by cost; bad --shard refused', () => {
  const cells = Array.from({ length: 23 }, (_, i) => ({
    id: `c${String(i).padStart(2, '0')}`,
    cost: 4 + ((i * 7) % 13),
  }));
  for (const n of [1, 2, 3, 5]) {
    const seen = new Map<string, number>();
    const loads: number[] = [];
    for (let i = 1; i <= n; i++) {
      const part = shardCells(cells, { index: i, count: n });
      loads.push(part.reduce((a, c) => a + c.cost, 0));
      for (const c of part) seen.set(c.id, (seen.get(c.id) ?? 0) + 1);
      assert.equal(
        part.map((c) => c.id),
        [...part.map((c) => c.id)].sort(),
        'matrix order kept',
      );
    }
    assert.is(seen.size, cells.length);
    assert.ok([...seen.values()].every((v) => v === 1));
    assert.ok(Math.max(...loads) - Math.min(...loads) <= 16, `balanced within one cell's cost (${loads})`);
  }
  assert.equal(assignShards([...cells].reverse(), 3), assignShards(cells, 3), 'input order does not matter');
  assert.equal(parseShard('2/4'), { index: 2, count: 4 });
  assert.throws(() => parseShard('0/4'), /I must be from 1 to 4/);
  assert.throws(() => parseShard('5/4'), /I must be from 1 to 4/);
  assert.throws(() => parseShard('a/b'), /I\/N/);
});

test('merge: shards make the whole; another matrix, a duplicate cell and missing cells are caught', () => {
  const all = [...healthy, rejected];
  const whole = result(all);
  const owner = assignShards(
    all.map((c) => ({ id: c.id, cost: 1 })),
    2,
  );
  const parts = [1, 2].map((i) =>
    result(
      all.filter((c) => owner.get(c.id) === i),
      { matrix: whole.matrix, shard: { index: i, count: 2 } },
    ),
  );
  const m = mergeResults(parts);
  assert.equal(m.result.cells, whole.cells);
  assert.equal(m.missing, []);
  assert.is(m.exitStatus, 1, 'a failed cell fails the merged run');
  assert.is(verifiedInsnsTables(m.result.cells, m.result.matrix), verifiedInsnsTables(whole.cells, whole.matrix));
  assert.is(mergeResults([result(healthy)]).exitStatus, 0);
  const partial = mergeResults([parts[0]]);
  assert.ok(partial.missing.length > 0);
  assert.is(partial.exitStatus, 1);
  assert.throws(() => mergeResults([parts[0], parts[0]]), /in two of the files/);
  assert.throws(() => mergeResults([parts[0], result(healthy)]), /another matrix/);
  assert.throws(() => mergeResults([]), /no result files/);
});

test.run();
