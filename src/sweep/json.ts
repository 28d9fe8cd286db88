// The sweep's JSON result file (--json; docs/sweep-json.md): written as indented JSON,
// read back (sweep merge, the test host's inner sweep) with every field checked, so a file
// from another version or a damaged one is refused with the file and the field named.

import { SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, type SweepResult } from './result.js';
import type { CellResult } from '../cell/result.js';
import { FAILURE_KINDS } from '../cell/result.js';

/** A result file that is not one this version reads; the message names the file and the field. */
export class SweepJsonError extends Error {
  override name = 'SweepJsonError';
}

export function serializeSweepResult(r: SweepResult): string {
  return JSON.stringify(r, null, 2) + '\n';
}

type Json = Record<string, unknown>;
interface Check {
  ok(v: unknown): boolean;
  what: string;
}

const STRING: Check = { ok: (v) => typeof v === 'string', what: 'a string' };
const NUMBER: Check = { ok: (v) => typeof v === 'number' && Number.isFinite(v), what: 'a number' };
const COUNT: Check = { ok: (v) => Number.isSafeInteger(v) && (v as number) >= 0, what: 'a whole number >= 0' };
const BOOL: Check = { ok: (v) => typeof v === 'boolean', what: 'true or false' };
const nullable = (c: Check): Check => ({ ok: (v) => v === null || c.ok(v), what: `${c.what} or null` });

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeOf(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`.slice(0, 60);
}

function need(o: Json, key: string, check: Check, where: string): void {
  if (!check.ok(o[key])) throw new SweepJsonError(`${where}.${key}: expected ${check.what}, found ${typeOf(o[key])}`);
}

/** Absent is fine; present must pass `check`. */
function optional(o: Json, key: string, check: Check, where: string): void {
  if (o[key] !== undefined) need(o, key, check, where);
}

function objectAt(v: unknown, where: string): Json {
  if (!isObject(v)) throw new SweepJsonError(`${where}: expected an object, found ${typeOf(v)}`);
  return v;
}

function arrayAt(o: Json, key: string, where: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new SweepJsonError(`${where}.${key}: expected an array, found ${typeOf(v)}`);
  return v;
}

// Numbers that come from the guest are checked as the host checked them on arrival
// (src/cell/facts-check.ts: finite), so every file a sweep writes reads back.

function checkProgram(v: unknown, where: string): void {
  const p = objectAt(v, where);
  need(p, 'name', STRING, where);
  for (const k of ['id', 'verifiedInsns']) need(p, k, NUMBER, where);
  for (const k of ['runCount', 'runTimeNs']) need(p, k, nullable(NUMBER), where);
}

function checkWorker(v: unknown, where: string): void {
  const w = objectAt(v, where);
  for (const k of ['cpu', 'iterations', 'cpuTimeNs', 'policy']) need(w, k, NUMBER, where);
}

function checkCell(v: unknown, where: string): CellResult {
  const c = objectAt(v, where);
  for (const k of ['id', 'scheduler', 'kernel', 'topology', 'schedulerStatus', 'schedulerLog', 'consoleTail'])
    need(c, k, STRING, where);
  need(c, 'passed', BOOL, where);
  need(c, 'wallMs', NUMBER, where);
  need(c, 'hostRssBytes', nullable(NUMBER), where);
  optional(c, 'exitMessage', STRING, where);
  arrayAt(c, 'programs', where).forEach((p, i) => checkProgram(p, `${where}.programs[${i}]`));
  arrayAt(c, 'guestPrograms', where).forEach((p, i) => checkProgram(p, `${where}.guestPrograms[${i}]`));
  arrayAt(c, 'workers', where).forEach((w, i) => checkWorker(w, `${where}.workers[${i}]`));
  const phases = objectAt(c.phases, `${where}.phases`);
  for (const k of Object.keys(phases)) optional(phases, k, NUMBER, `${where}.phases`);
  if (c.verifier !== undefined) {
    const v = objectAt(c.verifier, `${where}.verifier`);
    need(v, 'processedInsns', NUMBER, `${where}.verifier`);
    for (const k of ['insnLimit', 'totalStates', 'peakStates', 'maxStatesPerInsn', 'markRead'])
      need(v, k, nullable(NUMBER), `${where}.verifier`);
  }
  if (c.failure !== undefined) {
    const f = objectAt(c.failure, `${where}.failure`);
    if (!FAILURE_KINDS.includes(f.kind as never)) {
      throw new SweepJsonError(
        `${where}.failure.kind: expected one of ${FAILURE_KINDS.join(', ')}, found ${typeOf(f.kind)}`,
      );
    }
    need(f, 'message', STRING, `${where}.failure`);
  }
  if (!c.passed && c.failure === undefined) throw new SweepJsonError(`${where}.failure: missing on a cell that failed`);
  if (c.passed && c.failure !== undefined) throw new SweepJsonError(`${where}.failure: present on a cell that passed`);
  const expectedId = `sweep/${c.scheduler}/${c.kernel}/${c.topology}`;
  if (c.id !== expectedId)
    throw new SweepJsonError(
      `${where}.id: ${JSON.stringify(c.id)} does not name its cell (expected ${JSON.stringify(expectedId)})`,
    );
  return c as unknown as CellResult;
}

/** Parses and checks a result file's text; `source` (the file name) starts every error message. */
export function parseSweepResult(text: string, source: string): SweepResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new SweepJsonError(`${source}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(doc))
    throw new SweepJsonError(`${source}: not a sweep result (expected a JSON object, found ${typeOf(doc)})`);
  if (doc.schema !== SWEEP_SCHEMA) {
    throw new SweepJsonError(
      `${source}.schema: not a sweep result (schema is ${JSON.stringify(doc.schema) ?? 'missing'}, expected "${SWEEP_SCHEMA}")`,
    );
  }
  if (doc.version !== SWEEP_SCHEMA_VERSION) {
    throw new SweepJsonError(
      `${source}.version: sweep result version ${JSON.stringify(doc.version) ?? 'missing'}; this ktstr-wasm reads version ${SWEEP_SCHEMA_VERSION}`,
    );
  }
  need(doc, 'tool', STRING, source);
  need(doc, 'startedAt', STRING, source);
  need(doc, 'wallMs', NUMBER, source);
  need(doc, 'interrupted', BOOL, source);
  if (doc.shard !== null) {
    const shard = objectAt(doc.shard, `${source}.shard`);
    need(shard, 'count', COUNT, `${source}.shard`);
    need(shard, 'index', COUNT, `${source}.shard`);
    const { index, count } = shard as { index: number; count: number };
    if (index < 1 || index > count)
      throw new SweepJsonError(`${source}.shard: index ${index} is not from 1 to count ${count}`);
  }
  const matrix = arrayAt(doc, 'matrix', source);
  const inMatrix = new Set<string>();
  matrix.forEach((id, i) => {
    if (typeof id !== 'string')
      throw new SweepJsonError(`${source}.matrix[${i}]: expected a cell id string, found ${typeOf(id)}`);
    if (inMatrix.has(id)) throw new SweepJsonError(`${source}.matrix[${i}]: cell ${id} is listed twice`);
    inMatrix.add(id);
  });
  const seen = new Set<string>();
  arrayAt(doc, 'cells', source).forEach((v, i) => {
    const c = checkCell(v, `${source}.cells[${i}]`);
    if (!inMatrix.has(c.id)) throw new SweepJsonError(`${source}.cells[${i}]: cell ${c.id} is not in its matrix`);
    if (seen.has(c.id)) throw new SweepJsonError(`${source}.cells[${i}]: cell ${c.id} is in the file twice`);
    seen.add(c.id);
  });
  return doc as unknown as SweepResult;
}
