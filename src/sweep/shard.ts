// `--shard i/n`: a deterministic share of the matrix, balanced by expected cost. Cells are
// taken in descending cost (ties: id), each to the shard with the least cost so far (ties:
// the lower index); the same matrix gives the same shards on every machine, and each shard
// keeps matrix order.

export interface Shard { index: number; count: number }

export class ShardError extends Error {}

export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new ShardError(`--shard must look like I/N (e.g. 2/4), got "${text}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > 10_000) throw new ShardError(`--shard ${text}: N must be from 1 to 10000`);
  if (index < 1 || index > count) throw new ShardError(`--shard ${text}: I must be from 1 to ${count}`);
  return { index, count };
}

/** Which shard (1-based) each cell id goes to. */
export function assignShards(cells: { id: string; cost: number }[], count: number): Map<string, number> {
  const load = new Array<number>(count).fill(0);
  const out = new Map<string, number>();
  const byCost = [...cells].sort((a, b) => b.cost - a.cost || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const c of byCost) {
    let best = 0;
    for (let i = 1; i < count; i++) if (load[i] < load[best]) best = i;
    load[best] += Math.max(c.cost, 0.001);
    out.set(c.id, best + 1);
  }
  return out;
}

export function shardCells<T extends { id: string; cost: number }>(cells: T[], shard: Shard): T[] {
  const owner = assignShards(cells, shard.count);
  return cells.filter((c) => owner.get(c.id) === shard.index);
}
