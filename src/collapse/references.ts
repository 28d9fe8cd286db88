// Branch re-walks for the TypeScript oracle (docs/collapse.md section 4): the segment's top
// sequence with the bookkeeping runs laid out (flattenTails), and the greedy search that
// replaces stretches equal to stretches printed earlier by references (findReferences). The
// WASM core implements the same in flatten() and referencePass().

import type { CollapseLimits } from './limits.js';
import type { Item } from './items.js';

/** A reference right after another (the same marker) needs only this many keyed lines. */
export const JOINED_REFERENCE_LINES = 2;

export interface References {
  /** The units with references in place of the stretches they stand for. */
  units: Item[];
  /** Index of each printed unit in the input sequence. */
  printedAt: Map<Item, number>;
}

/**
 * Branch re-walks: after the segment's first branch pop, the longest stretch of items
 * (lines, runs, and the searched bookkeeping laid out by flattenTails(); at least
 * minReferenceLines keyed lines) equal to a stretch printed earlier in this segment's
 * top sequence becomes a reference to it. Candidates are the earlier occurrences of the
 * start item's key, nearest first, at most candidatesPerStart; the target must end
 * before the reference starts and be printed (not itself inside a reference).
 */
export function findReferences(
  seq: Item[],
  limits: Pick<CollapseLimits, 'minReferenceLines' | 'candidatesPerStart'>,
): References {
  const { minReferenceLines, candidatesPerStart } = limits;
  const n = seq.length;
  const prev = new Int32Array(n).fill(-1);
  const lastSeen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const k = seq[i].key;
    if (k === 0) continue;
    const j = lastSeen.get(k);
    if (j !== undefined) prev[i] = j;
    lastSeen.set(k, i);
  }
  const printedAt = new Map<Item, number>();
  const printed = new Uint8Array(n);
  const out: Item[] = [];
  let s = 0;
  let rewalk = false; // after the first branch pop of the segment
  while (s < n) {
    const item = seq[s];
    let bestLen = 0;
    let bestWeight = 0;
    let bestTarget = -1;
    if (rewalk && item.key !== 0) {
      let tried = 0;
      for (let j = prev[s]; j >= 0 && tried < candidatesPerStart; j = prev[j]) {
        tried++;
        let len = 0;
        let weight = 0;
        while (
          j + len < s &&
          s + len < n &&
          printed[j + len] === 1 &&
          seq[j + len].key !== 0 &&
          seq[j + len].key === seq[s + len].key
        ) {
          weight += seq[s + len].weight;
          len++;
        }
        if (weight > bestWeight) {
          bestLen = len;
          bestWeight = weight;
          bestTarget = j;
        }
      }
    }
    const afterReference = out.length > 0 && out[out.length - 1].kind === 'ref';
    if (bestWeight >= (afterReference ? Math.min(JOINED_REFERENCE_LINES, minReferenceLines) : minReferenceLines)) {
      out.push({
        kind: 'ref',
        key: 0,
        weight: bestWeight,
        items: seq.slice(s, s + bestLen),
        target: bestTarget,
        count: bestLen,
      });
      s += bestLen;
    } else {
      printed[s] = 1;
      if (item.kind === 'line' && item.pop) rewalk = true;
      out.push(item);
      printedAt.set(item, s);
      s++;
    }
  }
  return { units: out, printedAt };
}

/** The top sequence with every searched run of bookkeeping laid out as units of its own. */
export function flattenTails(seq: Item[]): Item[] {
  const out: Item[] = [];
  for (const item of seq) {
    if (item.kind !== 'line' || item.tail === null) {
      out.push(item);
      continue;
    }
    if (item.key !== 0) out.push({ ...item, last: item.first, tail: null });
    for (const t of item.tail) out.push(t);
  }
  return out;
}
