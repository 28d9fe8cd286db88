// `--shard i/n`: a deterministic share of the matrix, balanced by expected cost. Cells are
// taken in descending cost (ties: id, compared by code unit, not locale), each to the shard
// with the least cost so far (ties: the lower index); the same matrix gives the same shards on
// every machine whatever order the cells come in, and each shard keeps the input order.

import { UsageError } from '../errors.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** A bad --shard text or shard request: a usage error. */
export class ShardError extends UsageError {
  override name = 'ShardError';
}

/** More shards than this is a typo, not a CI fan-out. */
const MAX_SHARDS = 10_000;

/** Parses `I/N` (1 <= I <= N). */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new ShardError(`--shard must look like I/N (e.g. 2/4), got "${text}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) throw new ShardError(`--shard ${text}: N must be from 1 to ${MAX_SHARDS}`);
  if (index < 1 || index > count) throw new ShardError(`--shard ${text}: I must be from 1 to ${count}`);
  return { index, count };
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Which shard (1-based) each cell id goes to. Costs must be finite and >= 0; ids unique. */
export function assignShards(cells: { id: string; cost: number }[], count: number): Map<string, number> {
  if (!Number.isSafeInteger(count) || count < 1)
    throw new ShardError(`shard count must be a whole number >= 1, got ${count}`);
  const ids = new Set<string>();
  for (const c of cells) {
    if (ids.has(c.id)) throw new ShardError(`cell ${c.id} is in the matrix twice`);
    ids.add(c.id);
    if (!Number.isFinite(c.cost) || c.cost < 0)
      throw new ShardError(`cell ${c.id}: cost ${c.cost} is not a finite number >= 0`);
  }
  const load = new Array<number>(count).fill(0);
  const owner = new Map<string, number>();
  const byCost = [...cells].sort((a, b) => b.cost - a.cost || byCodeUnit(a.id, b.id));
  for (const c of byCost) {
    let least = 0;
    for (let i = 1; i < count; i++) if (load[i] < load[least]) least = i;
    // a free cell (cost 0: a setup failure) still takes a turn, so they spread too
    load[least] += Math.max(c.cost, 0.001);
    owner.set(c.id, least + 1);
  }
  return owner;
}

/**
 * The cells of `shard`, in input order. `cost` gives a cell's expected cost (default: its
 * `cost` field, e.g. the matrix's vCPUs plus a boot's fixed part).
 */
export function shardCells<T extends { id: string; cost: number }>(cells: T[], shard: Shard): T[];
export function shardCells<T extends { id: string }>(cells: T[], shard: Shard, cost: (cell: T) => number): T[];
export function shardCells<T extends { id: string }>(cells: T[], shard: Shard, cost?: (cell: T) => number): T[] {
  if (!Number.isSafeInteger(shard.index) || shard.index < 1 || shard.index > shard.count) {
    throw new ShardError(`shard ${shard.index}/${shard.count}: the index must be from 1 to ${shard.count}`);
  }
  const costOf = cost ?? ((c: T) => (c as unknown as { cost: number }).cost);
  const owner = assignShards(
    cells.map((c) => ({ id: c.id, cost: costOf(c) })),
    shard.count,
  );
  return cells.filter((c) => owner.get(c.id) === shard.index);
}
