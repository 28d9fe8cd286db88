// The item sequences the TypeScript oracle (oracle.ts) collapses: a keyed line with its
// bookkeeping, a run of repeated iterations, or a reference to units printed earlier.

export interface LineItem {
  kind: 'line';
  first: number; // segment line index of the content line
  last: number; // last line (inclusive) of its trailing bookkeeping
  key: number; // 0 = barrier, equal to nothing
  weight: number;
  pop: boolean; // a branch pop ("from X to Y: ...")
  /** Its bookkeeping lines as items of their own (by chain key), when there are enough to search. */
  tail: Item[] | null;
}

export interface RunItem {
  kind: 'run';
  /** Equal for runs whose iteration is the same, whatever their repeat counts. */
  iterKey: number;
  reps: number;
  iterWeight: number;
  weight: number;
  key: number;
  first: Item[];
  last: Item[];
}

/** Units equal to units printed earlier in the segment (indexes into the segment's units). */
export interface RefItem {
  kind: 'ref';
  key: 0;
  weight: number;
  items: Item[];
  target: number; // index of the first target unit
  count: number;
}

export type Item = LineItem | RunItem | RefItem;
