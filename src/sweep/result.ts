// The sweep's JSON result file (`--json`), versioned: what `sweep merge` reads back and what
// CI systems consume. docs/sweep-json.md documents the schema; bump SWEEP_SCHEMA_VERSION on
// any change a reader would notice.

import type { CellResult } from '../cell/result.js';

export const SWEEP_SCHEMA = 'ktstr-wasm/sweep';
export const SWEEP_SCHEMA_VERSION = 1;

export interface SweepShard {
  /** 1-based. */
  index: number;
  count: number;
}

export interface SweepResult {
  schema: typeof SWEEP_SCHEMA;
  version: number;
  /** ktstr-wasm version that wrote it. */
  tool: string;
  startedAt: string;
  wallMs: number;
  shard: SweepShard | null;
  /** Every cell id of the whole matrix (all shards), in matrix order. */
  matrix: string[];
  /** The cells this run ran (its shard), each with its result. Cells stopped by Ctrl-C are absent. */
  cells: CellResult[];
  /** True when the run was interrupted before every cell of its shard finished. */
  interrupted: boolean;
}
