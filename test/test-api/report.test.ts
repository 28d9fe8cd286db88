// What `ktstr-wasm test` prints and writes: the progress line per test, the block per failed
// test (failed check lines, thresholds, the workers the failures name, a readable stack, the
// scheduler's and the console's tails, guest text made terminal-safe), the counts line; the
// JSON file (round trip, and the reader naming the file and the field), JUnit XML checked by
// a small well-formedness parser, and the merge of shard files.

import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CellResult } from '../../src/cell/result.js';
import type { TestFacts } from '../../src/guest/plan.js';
import type { Painter } from '../../src/sweep/report.js';
import { mergeTestRuns, parseTestRun, serializeTestRun, TestJsonError, testJunit } from '../../src/test/json.js';
import { judgeTest, type TestResult } from '../../src/test/judge.js';
import { countsLine, failureBlock, label, progressLine, readableStack } from '../../src/test/report.js';
import { TEST_SCHEMA, TEST_SCHEMA_VERSION, type TestRunResult } from '../../src/test/run.js';
import { RunBuilder } from './run-builder.js';

// ---- synthetic results ----

const base = (o: Partial<TestResult> = {}): TestResult => ({
  id: `test/t.ktstr.ts/${o.name ?? 'steady'}/scx_ktstr/6.12/1n1l4c1t`,
  file: 't.ktstr.ts',
  name: 'steady',
  scheduler: 'scx_ktstr',
  kernel: '6.12',
  topology: '1n1l4c1t',
  status: 'pass',
  assert: null,
  runs: [],
  error: null,
  logs: [],
  schedulerStatus: 'attached (state enabled, ops ktstr)',
  schedulerLog: '',
  consoleTail: '',
  phases: {},
  wallMs: 9100,
  hostRssBytes: null,
  ...o,
});

/** A failed test judged for real: worker 5 did nothing, worker 2 had a long gap. */
function checkFailure(): TestResult {
  const run = new RunBuilder({
    phases: [
      ['start', 0],
      ['resize a to 0-1', 5000],
    ],
  })
    .workers('a', 4, { ns: 2.5e9 })
    .workers('b', 4, { ns: 2.5e9 })
    .build();
  run.workers[5].iterations = 0;
  run.workers[2].maxGapNs = 5e9;
  const facts: TestFacts = {
    runs: [{ record: run, checks: null }],
    error: null,
    skipped: null,
    bodyMs: 10_000,
    logs: [],
    stateAtEnd: 'enabled',
    schedulerAlive: true,
  };
  const cell: CellResult = {
    id: 'test/t.ktstr.ts/steady/scx_ktstr/6.12/1n1l4c1t',
    scheduler: 'scx_ktstr',
    kernel: '6.12',
    topology: '1n1l4c1t',
    passed: true,
    schedulerStatus: 'attached (state enabled, ops ktstr)',
    programs: [],
    guestPrograms: [],
    schedulerLog: 'scx_ktstr: dispatching\n',
    workers: [],
    consoleTail: 'console line\n',
    phases: {},
    wallMs: 9100,
    hostRssBytes: null,
    test: facts,
  };
  const r = judgeTest({ cell, file: 't.ktstr.ts', name: 'steady', scheduler: 'scx_ktstr', timeoutMs: 180_000 });
  assert.is(r.failure?.kind, 'check', 'the fixture fails its checks');
  return r;
}

const MARK: Painter = {
  green: (s) => `<g>${s}</g>`,
  red: (s) => `<r>${s}</r>`,
  yellow: (s) => `<y>${s}</y>`,
  dim: (s) => `<d>${s}</d>`,
  bold: (s) => `<b>${s}</b>`,
};

// ---- progress, counts ----

test('progressLine: word, wall time, position, file › name [scheduler/kernel/topology]', () => {
  assert.is(label(base()), 't.ktstr.ts › steady [scx_ktstr/6.12/1n1l4c1t]');
  assert.is(progressLine(base(), 3, 12), 'PASS [  9.1s] ( 3/12) t.ktstr.ts › steady [scx_ktstr/6.12/1n1l4c1t]');
  assert.is(
    progressLine(base({ wallMs: 123_456 }), 12, 12),
    'PASS [123.5s] (12/12) t.ktstr.ts › steady [scx_ktstr/6.12/1n1l4c1t]',
  );
  assert.is(
    progressLine(base({ status: 'skip', skipReason: 'needs 2 LLCs\n(has 1)', wallMs: 500 }), 1, 1),
    'SKIP [  0.5s] (1/1) t.ktstr.ts › steady [scx_ktstr/6.12/1n1l4c1t] — needs 2 LLCs (has 1)',
  );
  assert.is(
    progressLine(base({ status: 'fail', failure: { kind: 'body', message: 'boom\nmore' } }), 2, 3),
    'FAIL [  9.1s] (2/3) t.ktstr.ts › steady [scx_ktstr/6.12/1n1l4c1t] — body: boom more',
  );
});

test('progressLine: painted words, and guest text in the name or reason made terminal-safe', () => {
  assert.ok(progressLine(base(), 1, 1, MARK).startsWith('<g>PASS</g> '));
  assert.ok(
    progressLine(base({ status: 'fail', failure: { kind: 'check', message: 'x' } }), 1, 1, MARK).startsWith(
      '<r>FAIL</r> ',
    ),
  );
  assert.ok(progressLine(base({ status: 'skip', skipReason: 'r' }), 1, 1, MARK).startsWith('<y>SKIP</y> '));
  const line = progressLine(
    base({ name: 'evil\x1b[2J', status: 'fail', failure: { kind: 'check', message: 'x\x1b]0;title\x07' } }),
    1,
    1,
  );
  assert.not.ok(line.includes('\x1b'), JSON.stringify(line));
  assert.not.ok(line.includes('\x07'));
  assert.ok(line.includes('evil^[[2J'), line);
});

test('countsLine: totals by status and the wall time', () => {
  const rs = [base(), base({ status: 'fail' }), base({ status: 'skip' }), base({ status: 'fail' })];
  assert.is(countsLine(rs, 12_345), '4 tests: 1 passed, 2 failed, 1 skipped (12.3 s)\n');
  assert.is(countsLine([base()], 0), '1 test: 1 passed, 0 failed, 0 skipped (0.0 s)\n');
  assert.is(countsLine([], 1000), '0 tests: 0 passed, 0 failed, 0 skipped (1.0 s)\n');
  assert.is(countsLine(rs, 1000, MARK), '4 tests: <g>1 passed</g>, <r>2 failed</r>, <y>1 skipped</y> (1.0 s)\n');
});

// ---- failure block ----

/** The worker indexes in the block's worker table. */
function tableWorkers(block: string): number[] {
  const lines = block.split('\n');
  const at = lines.indexOf('  workers:');
  if (at < 0) return [];
  const out: number[] = [];
  for (const l of lines.slice(at + 2)) {
    const m = /^ {4}(\d+)\s/.exec(l);
    if (!m) break;
    out.push(Number(m[1]));
  }
  return out;
}

test('failureBlock: the failure, every failed check line, their thresholds, the phases, and only the workers named', () => {
  const r = checkFailure();
  const block = failureBlock(r);
  const lines = block.split('\n');
  assert.is(lines[0], 'FAIL t.ktstr.ts › steady [scx_ktstr/6.12/1n1l4c1t]');
  assert.is(lines[1], `  check: ${r.failure!.message}`);
  assert.is(lines[2], '  scheduler: attached (state enabled, ops ktstr)');
  assert.ok(lines.includes('  checks failed:'));
  const failed = r.assert!.checks.filter((c) => !c.passed);
  assert.ok(failed.length >= 2, 'starvation and gaps');
  for (const c of failed) for (const f of c.failures) assert.ok(lines.includes(`    ${f}`), f);
  const t = r.assert!.thresholds as unknown as Record<string, unknown>;
  assert.ok(
    lines.includes(`  thresholds: ${failed.map((c) => `${c.check} ${JSON.stringify(t[c.check])}`).join('; ')}`),
    block,
  );
  assert.ok(lines.includes('  phases of run 1: 1 start @0.00s, 2 resize a to 0-1 @5.00s'), block);
  const named = new Set(
    failed.flatMap((c) => c.failures.flatMap((f) => [...f.matchAll(/\bworkers? (\d+)/g)].map((m) => Number(m[1])))),
  );
  assert.ok(named.has(5) && named.has(2));
  assert.equal(
    tableWorkers(block),
    [...named].sort((a, b) => a - b),
  );
  assert.ok(lines.includes('  scheduler output (tail):'));
  assert.ok(lines.includes('    scx_ktstr: dispatching'));
  assert.not.ok(block.includes('console (tail)'), 'no console for a check failure');
  assert.ok(block.endsWith('\n'));
});

test('failureBlock: a body error lists every worker (up to 24), the stack with file URLs made relative, and the log tail', () => {
  const run = new RunBuilder().workers('a', 30).build();
  const inside = join(process.cwd(), 'tests', 'x.ktstr.ts');
  const stack = `Error: expected more\n    at body (file://${inside}:4:9)\n    at run (file:///elsewhere/my%20dir/y.ts:1:2)`;
  const logs = Array.from({ length: 12 }, (_, i) => `log ${i}`);
  const r = base({
    status: 'fail',
    failure: { kind: 'body', message: 'expected more' },
    runs: [run],
    error: { message: 'expected more', stack },
    logs,
    consoleTail: 'ignored console',
  });
  const block = failureBlock(r);
  assert.equal(
    tableWorkers(block),
    Array.from({ length: 24 }, (_, i) => i),
  );
  assert.ok(block.includes(`    at body (${join('tests', 'x.ktstr.ts')}:4:9)`), block);
  assert.ok(block.includes('    at run (/elsewhere/my dir/y.ts:1:2)'), block);
  assert.not.ok(block.includes('file://'));
  assert.ok(block.includes('  log:\n    log 2\n'), 'the last 10 log lines');
  assert.not.ok(block.includes('    log 1\n'));
  assert.not.ok(block.includes('ignored console'));
});

test('readableStack: file URLs become paths relative to the working directory when below it', () => {
  const here = join(process.cwd(), 'a', 'b.ts');
  assert.is(
    readableStack(`at f (file://${here}:1:2)\nat g (file:///abs/c.ts:3:4)`),
    `at f (${join('a', 'b.ts')}:1:2)\nat g (/abs/c.ts:3:4)`,
  );
  assert.is(readableStack('at node:internal/x:1:1'), 'at node:internal/x:1:1');
});

test('failureBlock: guest text (name, message, logs, scheduler output, console) is made terminal-safe', () => {
  const ESC = '\x1b';
  const r = base({
    name: `n${ESC}[31m`,
    status: 'fail',
    failure: { kind: 'guest', message: `panic${ESC}[2J` },
    schedulerStatus: `st${ESC}c`,
    logs: [`log${ESC}[1m`],
    schedulerLog: `out${ESC}[?1049h\nline\r\n`,
    consoleTail: `Kernel panic${ESC}]0;pwned\x07\n`,
    error: { message: 'm', stack: `Error: m${ESC}[0m` },
  });
  const block = failureBlock(r);
  assert.not.ok(block.includes(ESC), JSON.stringify(block));
  assert.not.ok(block.includes('\x07'));
  assert.not.ok(block.includes('\r'));
  for (const s of [
    'n^[[31m',
    'panic^[[2J',
    'st^[c',
    'log^[[1m',
    'out^[[?1049h',
    'Kernel panic^[]0;pwned^G',
    'Error: m^[[0m',
  ])
    assert.ok(block.includes(s), s);
  assert.ok(block.includes('  console (tail):'), 'a guest failure shows the console');
});

test('failureBlock: the console shows for guest-side failures, not for body or check ones', () => {
  for (const [kind, shown] of [
    ['guest', true],
    ['timeout', true],
    ['crash', true],
    ['body', false],
    ['check', false],
  ] as const) {
    const b = failureBlock(base({ status: 'fail', failure: { kind, message: 'x' }, consoleTail: 'the console\n' }));
    assert.is(b.includes('  console (tail):\n    the console'), shown, kind);
  }
  const last15 = failureBlock(
    base({
      status: 'fail',
      failure: { kind: 'guest', message: 'x' },
      consoleTail: Array.from({ length: 20 }, (_, i) => `c${i}`).join('\n') + '\n\n',
    }),
  );
  assert.ok(last15.includes('    c5\n') && last15.includes('    c19\n') && !last15.includes('    c4\n'), last15);
});

// ---- JSON ----

const runResult = (tests: TestResult[], o: Partial<TestRunResult> = {}): TestRunResult => ({
  schema: TEST_SCHEMA,
  version: TEST_SCHEMA_VERSION,
  tool: 'ktstr-wasm 0.1.0',
  startedAt: '2026-01-01T00:00:00.000Z',
  wallMs: 20_000,
  shard: null,
  matrix: tests.map((t) => t.id),
  tests,
  interrupted: false,
  ...o,
});

test('JSON: serialize then parse gives the same run, failure blocks and all', () => {
  const r = runResult([checkFailure(), base({ name: 'b' }), base({ name: 'c', status: 'skip', skipReason: 'why' })]);
  const text = serializeTestRun(r);
  assert.ok(text.endsWith('\n'));
  const back = parseTestRun(text, 'run.json');
  assert.equal(back, JSON.parse(JSON.stringify(r)));
  assert.is(failureBlock(back.tests[0]), failureBlock(r.tests[0]));
});

test('JSON: the reader names the source and what is wrong', () => {
  const good = runResult([base({ name: 'a' }), base({ name: 'b' })]);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each case writes any field of the parsed JSON, with any value
  const mutate = (f: (v: Record<string, any>) => void): string => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the parsed JSON f mutates
    const v = JSON.parse(JSON.stringify(good)) as Record<string, any>;
    f(v);
    return JSON.stringify(v);
  };
  const cases: [string, string][] = [
    ['{', 'f.json: not JSON ('],
    ['null', 'f.json: not a ktstr-wasm test result (schema undefined)'],
    [
      mutate((v) => {
        v.schema = 'ktstr-wasm/sweep';
      }),
      'f.json: not a ktstr-wasm test result (schema "ktstr-wasm/sweep")',
    ],
    [
      mutate((v) => {
        v.version = 2;
      }),
      `f.json: schema version 2, this tool reads ${TEST_SCHEMA_VERSION}`,
    ],
    [
      mutate((v) => {
        v.matrix = [1];
      }),
      'f.json: matrix',
    ],
    [
      mutate((v) => {
        v.tests = {};
      }),
      'f.json: tests',
    ],
    [
      mutate((v) => {
        delete v.tests[1].name;
      }),
      'f.json: tests[1].name',
    ],
    [
      mutate((v) => {
        v.tests[0].kernel = 6;
      }),
      'f.json: tests[0].kernel',
    ],
    [
      mutate((v) => {
        v.tests[0].status = 'passed';
      }),
      'f.json: tests[0].status',
    ],
    [
      mutate((v) => {
        v.tests[0].runs = null;
      }),
      'f.json: tests[0].runs/logs',
    ],
    [
      mutate((v) => {
        v.tests[1].id = v.tests[0].id;
      }),
      `f.json: test ${good.tests[0].id} appears twice`,
    ],
    [
      mutate((v) => {
        v.tests[0] = null;
      }),
      'f.json: tests[0].id',
    ],
  ];
  for (const [text, msg] of cases) {
    assert.throws(
      () => parseTestRun(text, 'f.json'),
      (e: Error) => e instanceof TestJsonError && e.message.startsWith(msg),
      msg,
    );
  }
});

// ---- JUnit ----

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const allowedChar = (cp: number): boolean =>
  cp === 0x9 ||
  cp === 0xa ||
  cp === 0xd ||
  (cp >= 0x20 && cp <= 0xd7ff) ||
  (cp >= 0xe000 && cp <= 0xfffd) ||
  (cp >= 0x10000 && cp <= 0x10ffff);

function decode(raw: string, where: string): string {
  return raw.replace(/&([^;]*);?/g, (all, name: string) => {
    if (!all.endsWith(';')) assert.unreachable(`${where}: & not part of an entity reference`);
    if (name in ENTITIES) return ENTITIES[name];
    const num = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(name);
    if (!num) assert.unreachable(`${where}: unknown entity &${name};`);
    const cp = num![1] !== undefined ? parseInt(num![1], 16) : Number(num![2]);
    assert.ok(allowedChar(cp), `${where}: reference to a forbidden character ${cp}`);
    return String.fromCodePoint(cp);
  });
}

/** Parses `xml` (one root, balanced tags, quoted attributes, entity references only) or fails saying why. */
function parseXml(xml: string): XmlElement {
  for (const ch of xml)
    assert.ok(allowedChar(ch.codePointAt(0)!), `forbidden character U+${ch.codePointAt(0)!.toString(16)}`);
  assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n'));
  let rest = xml.replace(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n/, '');
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const token = /^(?:<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*\s*=\s*"[^"]*")*)\s*(\/?)>|([^<]+))/;
  while (rest.length > 0) {
    const m = token.exec(rest);
    if (!m) assert.unreachable(`not well-formed at ${JSON.stringify(rest.slice(0, 40))}`);
    rest = rest.slice(m![0].length);
    const [, closing, name, attrText, selfClosing, text] = m!;
    if (text !== undefined) {
      assert.not.ok(text.includes(']]>'), 'no ]]> in character data');
      if (stack.length === 0) assert.ok(/^\s*$/.test(text), 'only white space outside the root');
      else stack[stack.length - 1].text += decode(text, `text of <${stack[stack.length - 1].name}>`);
      continue;
    }
    if (closing) {
      assert.is(stack.pop()?.name, name, `</${name}> closes the open element`);
      continue;
    }
    const el: XmlElement = { name, attrs: {}, children: [], text: '' };
    for (const a of attrText.matchAll(/([A-Za-z_][\w.-]*)\s*=\s*"([^"]*)"/g)) {
      assert.not.ok(a[1] in el.attrs, `attribute ${a[1]} once`);
      el.attrs[a[1]] = decode(a[2].replace(/[\t\n\r]/g, ' '), `${name}@${a[1]}`);
    }
    if (stack.length > 0) stack[stack.length - 1].children.push(el);
    else {
      assert.is(root, undefined, 'one root element');
      root = el;
    }
    if (!selfClosing) stack.push(el);
  }
  assert.is(stack.length, 0, 'every element closed');
  assert.ok(root, 'a root element');
  return root!;
}

test('the XML checker rejects what is not well-formed', () => {
  for (const bad of ['<a>x < y</a>', '<a>x & y</a>', '<a><b></a></b>', '<a/><b/>', '<a>\u0000</a>']) {
    let rejected = false;
    try {
      parseXml(`<?xml version="1.0" encoding="UTF-8"?>\n${bad}`);
    } catch {
      rejected = true;
    }
    assert.ok(rejected, bad);
  }
});

test('JUnit: well-formed; counts; a testcase per test with failure or skipped elements; hostile text escaped and kept', () => {
  const hostile = 'a <b> & "c" \'d\' \x1b[31m\x00 ]]>';
  const fail = checkFailure();
  const r = runResult(
    [
      base({ name: 'ok', wallMs: 1234 }),
      fail,
      base({
        name: `weird ${hostile}`,
        status: 'fail',
        failure: { kind: 'body', message: `thrown ${hostile}` },
        error: { message: 'm', stack: `at x ${hostile}` },
        logs: [hostile],
      }),
      base({ name: 'skipped', status: 'skip', skipReason: `no ${hostile}` }),
    ],
    { wallMs: 4321 },
  );
  const root = parseXml(testJunit(r));
  assert.is(root.name, 'testsuites');
  assert.equal([root.attrs.tests, root.attrs.failures, root.attrs.time], ['4', '2', '4.321']);
  const suite = root.children[0];
  assert.is(suite.name, 'testsuite');
  assert.equal(
    [suite.attrs.tests, suite.attrs.failures, suite.attrs.skipped, suite.attrs.timestamp],
    ['4', '2', '1', r.startedAt],
  );
  const cases = suite.children;
  assert.equal(
    cases.map((c) => c.name),
    ['testcase', 'testcase', 'testcase', 'testcase'],
  );
  assert.equal(cases[0].attrs, { classname: 'test.t.ktstr.ts', name: 'ok [scx_ktstr/6.12/1n1l4c1t]', time: '1.234' });
  assert.equal(cases[0].children, []);
  const f = cases[1].children[0];
  assert.is(f.name, 'failure');
  assert.is(f.attrs.type, 'check');
  assert.is(f.attrs.message, `check: ${fail.failure!.message}`);
  assert.ok(f.text.includes('  checks failed:'), 'the failure block is the text');
  const w = cases[2];
  assert.ok(w.attrs.name.startsWith('weird a <b> & "c" \'d\''), w.attrs.name);
  assert.is(w.children[0].attrs.type, 'body');
  assert.ok(w.children[0].attrs.message.startsWith('body: thrown a <b> & "c"'), w.children[0].attrs.message);
  assert.ok(w.children[0].text.includes('a <b> & "c"'));
  const s = cases[3].children[0];
  assert.is(s.name, 'skipped');
  assert.ok(s.attrs.message.startsWith('no a <b> & "c"'), s.attrs.message);
});

// ---- merge ----

test('mergeTestRuns: shards into one run in matrix order; missing tests listed; wall time the longest; interrupted if any', () => {
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => base({ name }));
  const matrix = [a.id, b.id, c.id, d.id];
  const s1 = runResult([c, a], { matrix, shard: { index: 1, count: 3 }, wallMs: 100 });
  const s2 = runResult([b], { matrix, shard: { index: 2, count: 3 }, wallMs: 300, interrupted: true });
  const { result, missing } = mergeTestRuns([s1, s2], ['s1.json', 's2.json']);
  assert.equal(
    result.tests.map((t) => t.name),
    ['a', 'b', 'c'],
  );
  assert.equal(missing, [d.id]);
  assert.is(result.shard, null);
  assert.is(result.wallMs, 300);
  assert.is(result.interrupted, true);
  assert.equal(result.matrix, matrix);
  const whole = mergeTestRuns([s1, runResult([b, d], { matrix })], ['s1.json', 'rest.json']);
  assert.equal(whole.missing, []);
  assert.is(whole.result.interrupted, false);
});

test('mergeTestRuns: another matrix, a test in two files, or no files are errors naming the files', () => {
  const [a, b] = ['a', 'b'].map((name) => base({ name }));
  const s1 = runResult([a], { matrix: [a.id, b.id] });
  assert.throws(
    () => mergeTestRuns([s1, runResult([b], { matrix: [b.id, a.id] })], ['one.json', 'two.json']),
    (e: Error) =>
      e instanceof TestJsonError && e.message === 'test merge: two.json is from another test matrix than one.json',
  );
  assert.throws(
    () => mergeTestRuns([s1, runResult([b], { matrix: [a.id] })], ['one.json', 'short.json']),
    /short\.json is from another test matrix than one\.json/,
  );
  assert.throws(
    () => mergeTestRuns([s1, runResult([a, b], { matrix: [a.id, b.id] })], ['one.json', 'two.json']),
    (e: Error) => e instanceof TestJsonError && e.message === `test merge: ${a.id} is in both one.json and two.json`,
  );
  assert.throws(() => mergeTestRuns([], []), /test merge: no files/);
});

test.run();
