// `sweep merge FILE...`: the union of several shards' results as one run — they must come
// from the same matrix; a cell in two files is refused; matrix cells that no file ran are
// listed as not run (the merged run then fails: the sweep is incomplete).

import { SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, type SweepResult } from './result.js';
import type { CellResult } from '../cell/result.js';

export class MergeError extends Error {}

export interface Merged {
  result: SweepResult;
  /** Matrix cells no file ran. */
  missing: string[];
  /** 0 every matrix cell ran and passed; 1 otherwise. */
  exitStatus: number;
}

export function mergeResults(results: SweepResult[]): Merged {
  if (results.length === 0) throw new MergeError('no result files to merge');
  const matrix = results[0].matrix;
  const key = JSON.stringify(matrix);
  results.forEach((r, i) => {
    if (JSON.stringify(r.matrix) !== key) throw new MergeError(`file ${i + 1} comes from another matrix (${r.matrix.length} cells vs ${matrix.length}): merge shards of one sweep`);
  });
  const cells = new Map<string, CellResult>();
  for (const r of results) {
    for (const c of r.cells) {
      if (cells.has(c.id)) throw new MergeError(`cell ${c.id} is in two of the files`);
      cells.set(c.id, c);
    }
  }
  const missing = matrix.filter((id) => !cells.has(id));
  const ordered = matrix.map((id) => cells.get(id)).filter((c): c is CellResult => c !== undefined);
  const result: SweepResult = {
    schema: SWEEP_SCHEMA,
    version: SWEEP_SCHEMA_VERSION,
    tool: results[0].tool,
    startedAt: results.map((r) => r.startedAt).sort()[0],
    wallMs: Math.max(...results.map((r) => r.wallMs)),
    shard: null,
    matrix,
    cells: ordered,
    interrupted: results.some((r) => r.interrupted),
  };
  const exitStatus = missing.length === 0 && !result.interrupted && ordered.every((c) => c.passed) ? 0 : 1;
  return { result, missing, exitStatus };
}
