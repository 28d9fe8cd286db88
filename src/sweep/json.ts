// The sweep's JSON result file (--json; docs/sweep-json.md): written as indented JSON,
// read back (sweep merge, the test host's inner sweep) with every field checked, so a file
// from another version or a damaged one is refused with the file and the field named.

import { SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, type SweepResult } from './result.js';
import type { CellResult } from '../cell/result.js';
import { FAILURE_KINDS } from '../cell/result.js';

export class SweepJsonError extends Error {}

export function serializeSweepResult(r: SweepResult): string {
  return JSON.stringify(r, null, 2) + '\n';
}

type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isNumber: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const isBool: Check = (v) => typeof v === 'boolean';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function need(o: Record<string, unknown>, key: string, check: Check, where: string, optional = false): void {
  if (optional && (o[key] === undefined || o[key] === null)) return;
  if (!check(o[key])) throw new SweepJsonError(`${where}.${key}: missing or of the wrong type`);
}

function checkCell(v: unknown, where: string): CellResult {
  if (!isObject(v)) throw new SweepJsonError(`${where}: not an object`);
  for (const k of ['id', 'scheduler', 'kernel', 'topology', 'schedulerStatus', 'schedulerLog', 'consoleTail']) need(v, k, isString, where);
  need(v, 'passed', isBool, where);
  need(v, 'wallMs', isNumber, where);
  need(v, 'hostRssBytes', isNumber, where, true);
  for (const k of ['programs', 'guestPrograms', 'workers']) if (!Array.isArray(v[k])) throw new SweepJsonError(`${where}.${k}: not an array`);
  (v.programs as unknown[]).forEach((p, i) => {
    if (!isObject(p)) throw new SweepJsonError(`${where}.programs[${i}]: not an object`);
    need(p, 'name', isString, `${where}.programs[${i}]`);
    need(p, 'id', isNumber, `${where}.programs[${i}]`);
    need(p, 'verifiedInsns', isNumber, `${where}.programs[${i}]`);
  });
  if (v.failure !== undefined) {
    if (!isObject(v.failure) || !FAILURE_KINDS.includes(v.failure.kind as never) || !isString(v.failure.message)) throw new SweepJsonError(`${where}.failure: not {kind, message} with a known kind`);
  }
  if (!v.passed && v.failure === undefined) throw new SweepJsonError(`${where}: failed without a failure`);
  if (!isObject(v.phases)) throw new SweepJsonError(`${where}.phases: not an object`);
  return v as unknown as CellResult;
}

/** Parses and checks a result file's text; `source` names it in errors. */
export function parseSweepResult(text: string, source: string): SweepResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new SweepJsonError(`${source}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw new SweepJsonError(`${source}: not a JSON object`);
  if (doc.schema !== SWEEP_SCHEMA) throw new SweepJsonError(`${source}: not a sweep result (schema is ${JSON.stringify(doc.schema)}, expected "${SWEEP_SCHEMA}")`);
  if (doc.version !== SWEEP_SCHEMA_VERSION) throw new SweepJsonError(`${source}: sweep result version ${String(doc.version)}; this ktstr-wasm reads version ${SWEEP_SCHEMA_VERSION}`);
  need(doc, 'tool', isString, source);
  need(doc, 'startedAt', isString, source);
  need(doc, 'wallMs', isNumber, source);
  need(doc, 'interrupted', isBool, source);
  if (!Array.isArray(doc.matrix) || !doc.matrix.every(isString)) throw new SweepJsonError(`${source}.matrix: not an array of cell ids`);
  if (!Array.isArray(doc.cells)) throw new SweepJsonError(`${source}.cells: not an array`);
  if (doc.shard !== null) {
    if (!isObject(doc.shard) || !isNumber(doc.shard.index) || !isNumber(doc.shard.count)) throw new SweepJsonError(`${source}.shard: not {index, count} or null`);
  }
  const cells = doc.cells.map((c, i) => checkCell(c, `${source}.cells[${i}]`));
  const inMatrix = new Set(doc.matrix as string[]);
  for (const c of cells) if (!inMatrix.has(c.id)) throw new SweepJsonError(`${source}: cell ${c.id} is not in its matrix`);
  return doc as unknown as SweepResult;
}
