// `sweep merge FILE...`: the union of several shards' results as one run — they must come
// from the same matrix; a cell in two files is refused; matrix cells that no file ran are
// listed as not run (the merged run then fails: the sweep is incomplete).

import { SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, type SweepResult } from './result.js';
import type { CellResult } from '../cell/result.js';
import { UsageError } from '../errors.js';

/** Files that cannot be merged: a usage error. */
export class MergeError extends UsageError {
  override name = 'MergeError';
}

export interface Merged {
  /** One result for the whole matrix: shard null, cells in matrix order. */
  result: SweepResult;
  /** Matrix cells no file ran, in matrix order (the caller prints them as "not run"). */
  missing: string[];
  /** 0: every matrix cell ran and passed; 1 otherwise (a failure, a missing cell, an interrupted shard). */
  exitStatus: number;
}

/** Why two matrices differ, naming a cell one has and the other lacks (or the first position they disagree at). */
function matrixDifference(a: string[], b: string[], nameA: string, nameB: string): string {
  const inB = new Set(b);
  const inA = new Set(a);
  const onlyA = a.find((id) => !inB.has(id));
  if (onlyA !== undefined) return `${onlyA} is in ${nameA}'s matrix, not in ${nameB}'s`;
  const onlyB = b.find((id) => !inA.has(id));
  if (onlyB !== undefined) return `${onlyB} is in ${nameB}'s matrix, not in ${nameA}'s`;
  const at = a.findIndex((id, i) => b[i] !== id);
  return `the same cells in another order (position ${at + 1}: ${a[at]} vs ${b[at]})`;
}

/**
 * Merges shard results of one sweep. `names` (the files' names, same order) are used in error
 * messages; without them the files are "file 1", "file 2", ...
 */
export function mergeResults(results: SweepResult[], names: string[] = []): Merged {
  if (results.length === 0) throw new MergeError('no result files to merge');
  const nameOf = (i: number): string => names[i] ?? `file ${i + 1}`;
  const matrix = results[0].matrix;
  results.forEach((r, i) => {
    if (r.matrix.length === matrix.length && r.matrix.every((id, j) => id === matrix[j])) return;
    throw new MergeError(
      `${nameOf(i)} comes from another matrix than ${nameOf(0)} (${r.matrix.length} cells vs ${matrix.length}; ` +
        `${matrixDifference(matrix, r.matrix, nameOf(0), nameOf(i))}): merge the shards of one sweep`,
    );
  });
  const cells = new Map<string, { cell: CellResult; file: number }>();
  results.forEach((r, i) => {
    for (const c of r.cells) {
      const first = cells.get(c.id);
      if (first !== undefined)
        throw new MergeError(
          `cell ${c.id} is in two of the files (${nameOf(first.file)} and ${nameOf(i)}): each cell must come from one shard`,
        );
      cells.set(c.id, { cell: c, file: i });
    }
  });
  const missing = matrix.filter((id) => !cells.has(id));
  const ordered = matrix.flatMap((id) => {
    const c = cells.get(id);
    return c === undefined ? [] : [c.cell];
  });
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
