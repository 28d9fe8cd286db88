// A test cell's bundle is written before its checks are judged (src/test/run.ts
// settleTestBundle): a passed or skipped test's bundle goes (--keep-dumps failures), a failed
// one keeps it with the judged TestResult as test-result.json; policy all keeps every one.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { settleTestBundle } from '../../src/test/run.js';
import type { TestResult } from '../../src/test/judge.js';

const tmp = mkdtempSync(join(tmpdir(), 'ktstr-test-bundle-'));

function result(status: TestResult['status'], name: string): TestResult {
  const bundle = join(tmp, name);
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'result.json'), '{}');
  return {
    id: `test/f/${name}/eevdf/k/t`,
    file: 'f',
    name,
    scheduler: 'eevdf',
    kernel: 'k',
    topology: 't',
    status,
    ...(status === 'fail' ? { failure: { kind: 'check', message: 'fairness: spread 40% > 25%' } } : {}),
    assert: null,
    runs: [],
    error: null,
    logs: [],
    schedulerStatus: '',
    schedulerLog: '',
    consoleTail: '',
    phases: {},
    wallMs: 1,
    hostRssBytes: null,
    bundle,
  } as TestResult;
}

test("failures: a passed or skipped test's bundle is removed, a failed one gets test-result.json", () => {
  const pass = result('pass', 'p');
  const skip = result('skip', 's');
  const fail = result('fail', 'f');
  const dir = { p: pass.bundle!, s: skip.bundle!, f: fail.bundle! };
  for (const r of [pass, skip, fail]) settleTestBundle(r, { keepDumps: 'failures' });
  assert.not.ok(existsSync(dir.p));
  assert.not.ok(existsSync(dir.s));
  assert.is(pass.bundle, undefined, 'the result no longer names it');
  assert.ok(existsSync(dir.f));
  assert.is(fail.bundle, dir.f);
  const judged = JSON.parse(readFileSync(join(dir.f, 'test-result.json'), 'utf8')) as TestResult;
  assert.is(judged.failure?.kind, 'check');
  assert.is(judged.bundle, dir.f);
});

test('all: a passed test keeps its bundle', () => {
  const pass = result('pass', 'p2');
  settleTestBundle(pass, { keepDumps: 'all' });
  assert.ok(existsSync(join(pass.bundle!, 'test-result.json')));
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
