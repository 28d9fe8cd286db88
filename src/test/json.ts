// The test run as files: --json (schema ktstr-wasm/test v1, docs/test-api.md), --junit, and
// `test merge` of shard files. The reader checks what it relies on and names the file and
// the field when something is off.

import type { TestResult } from './judge.js';
import { TEST_SCHEMA, TEST_SCHEMA_VERSION, type TestRunResult } from './run.js';
import { xmlAttribute, xmlEscape } from '../sweep/junit.js';
import { failureBlock } from './report.js';

export class TestJsonError extends Error {
  override name = 'TestJsonError';
}

export function serializeTestRun(r: TestRunResult): string {
  return JSON.stringify(r, null, 1) + '\n';
}

const STATUSES = new Set(['pass', 'fail', 'skip']);

export function parseTestRun(text: string, source: string): TestRunResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TestJsonError(`${source}: not JSON (${(e as Error).message})`);
  }
  const r = v as Record<string, unknown>;
  if (typeof r !== 'object' || r === null || r.schema !== TEST_SCHEMA)
    throw new TestJsonError(`${source}: not a ktstr-wasm test result (schema ${JSON.stringify(r?.schema)})`);
  if (r.version !== TEST_SCHEMA_VERSION)
    throw new TestJsonError(`${source}: schema version ${String(r.version)}, this tool reads ${TEST_SCHEMA_VERSION}`);
  if (!Array.isArray(r.matrix) || !r.matrix.every((x) => typeof x === 'string'))
    throw new TestJsonError(`${source}: matrix`);
  if (!Array.isArray(r.tests)) throw new TestJsonError(`${source}: tests`);
  if (typeof r.wallMs !== 'number' || !Number.isFinite(r.wallMs)) throw new TestJsonError(`${source}: wallMs`);
  if (typeof r.startedAt !== 'string') throw new TestJsonError(`${source}: startedAt`);
  const ids = new Set<string>();
  r.tests.forEach((t: unknown, i) => {
    const x = t as Record<string, unknown>;
    for (const k of ['id', 'file', 'name', 'scheduler', 'kernel', 'topology'])
      if (typeof x?.[k] !== 'string') throw new TestJsonError(`${source}: tests[${i}].${k}`);
    if (!STATUSES.has(x.status as string)) throw new TestJsonError(`${source}: tests[${i}].status`);
    if (!Array.isArray(x.runs) || !Array.isArray(x.logs) || !x.logs.every((l) => typeof l === 'string'))
      throw new TestJsonError(`${source}: tests[${i}].runs/logs`);
    for (const k of ['schedulerStatus', 'schedulerLog', 'consoleTail'])
      if (typeof x[k] !== 'string') throw new TestJsonError(`${source}: tests[${i}].${k}`);
    if (typeof x.wallMs !== 'number' || !Number.isFinite(x.wallMs))
      throw new TestJsonError(`${source}: tests[${i}].wallMs`);
    if (typeof x.phases !== 'object' || x.phases === null) throw new TestJsonError(`${source}: tests[${i}].phases`);
    const e = x.error as Record<string, unknown> | null;
    if (!(e === null || (typeof e === 'object' && typeof e.message === 'string' && typeof e.stack === 'string')))
      throw new TestJsonError(`${source}: tests[${i}].error`);
    const f = x.failure as Record<string, unknown> | undefined;
    if (!(
      f === undefined ||
      (typeof f === 'object' && f !== null && typeof f.kind === 'string' && typeof f.message === 'string')
    ))
      throw new TestJsonError(`${source}: tests[${i}].failure`);
    const a = x.assert as Record<string, unknown> | null;
    if (!(a === null || (typeof a === 'object' && Array.isArray(a.checks) && typeof a.thresholds === 'object')))
      throw new TestJsonError(`${source}: tests[${i}].assert`);
    if (ids.has(x.id as string)) throw new TestJsonError(`${source}: test ${String(x.id)} appears twice`);
    ids.add(x.id as string);
  });
  return v as TestRunResult;
}

function testcase(t: TestResult): string {
  const head = `  <testcase classname="${xmlAttribute(`test.${t.file}`)}" name="${xmlAttribute(`${t.name} [${t.scheduler}/${t.kernel}/${t.topology}]`)}" time="${(t.wallMs / 1000).toFixed(3)}"`;
  if (t.status === 'pass') return `${head}/>\n`;
  if (t.status === 'skip')
    return `${head}>\n    <skipped message="${xmlAttribute(t.skipReason ?? '')}"/>\n  </testcase>\n`;
  const kind = t.failure?.kind ?? 'unknown';
  return `${head}>\n    <failure type="${xmlAttribute(kind)}" message="${xmlAttribute(`${kind}: ${t.failure?.message ?? ''}`)}">${xmlEscape(failureBlock(t))}</failure>\n  </testcase>\n`;
}

export function testJunit(r: TestRunResult): string {
  const failures = r.tests.filter((t) => t.status === 'fail').length;
  const skipped = r.tests.filter((t) => t.status === 'skip').length;
  const time = (r.wallMs / 1000).toFixed(3);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<testsuites name="ktstr-wasm test" tests="${r.tests.length}" failures="${failures}" time="${time}">\n` +
    `<testsuite name="ktstr-wasm test" tests="${r.tests.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${time}" timestamp="${xmlAttribute(r.startedAt)}">\n` +
    r.tests.map(testcase).join('') +
    '</testsuite>\n</testsuites>\n'
  );
}

/** Shard files into one result: the same matrix in each, no test twice; `missing` lists tests no file has. */
export function mergeTestRuns(results: TestRunResult[], files: string[]): { result: TestRunResult; missing: string[] } {
  if (results.length === 0) throw new TestJsonError('test merge: no files');
  const matrix = results[0].matrix;
  results.forEach((r, i) => {
    if (r.matrix.length !== matrix.length || r.matrix.some((id, k) => id !== matrix[k]))
      throw new TestJsonError(`test merge: ${files[i]} is from another test matrix than ${files[0]}`);
  });
  const seen = new Map<string, string>();
  const tests: TestResult[] = [];
  results.forEach((r, i) => {
    for (const t of r.tests) {
      const prev = seen.get(t.id);
      if (prev !== undefined) throw new TestJsonError(`test merge: ${t.id} is in both ${prev} and ${files[i]}`);
      seen.set(t.id, files[i]);
      tests.push(t);
    }
  });
  const order = new Map(matrix.map((id, i) => [id, i]));
  tests.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  return {
    result: {
      ...results[0],
      shard: null,
      tests,
      wallMs: Math.max(...results.map((r) => r.wallMs)),
      interrupted: results.some((r) => r.interrupted),
    },
    missing: matrix.filter((id) => !seen.has(id)),
  };
}
