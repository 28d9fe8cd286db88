// Inverse of collapse for checking: replays each collapsed block as first iteration,
// (iterations - 2) copies of it, then the last iteration, and each reference as the
// expansion of the earlier output lines it names. The result normalises
// (normaliseLog) to exactly the normalised input; that is the invariant the tests assert.

import { parseMarker } from './markers.js';
import { splitLogLines } from './line-key.js';

export class ExpandError extends Error {}

interface Frame {
  iterations: number;
  first: string[];
  last: string[];
  inLast: boolean;
  /** The omission marker counted iterations - 1: the last iteration is the first again. */
  lastIsFirst: boolean;
}

/** Expands the markers of collapsed text; throws ExpandError on unbalanced markers. */
export function expandCollapsed(text: string): string {
  const lines = splitLogLines(text);
  const out = expandLines(lines, 0, lines.length, new Map());
  return out.length === 0 ? '' : out.join('\n') + '\n';
}

/** Expands lines [from, to) of the collapsed text; a reference expands the earlier lines it names. */
function expandLines(lines: string[], from: number, to: number, memo: Map<string, string[]>): string[] {
  const out: string[] = [];
  const stack: Frame[] = [];
  const target = (): string[] => {
    const top = stack[stack.length - 1];
    return top === undefined ? out : top.inLast ? top.last : top.first;
  };
  for (let at = from; at < to; at++) {
    const raw = lines[at];
    const marker = parseMarker(raw);
    if (marker === null) {
      target().push(raw);
      continue;
    }
    if (marker.kind === 'header') {
      stack.push({ iterations: marker.iterations, first: [], last: [], inLast: false, lastIsFirst: false });
    } else if (marker.kind === 'omitted') {
      const top = stack[stack.length - 1];
      if (top === undefined || top.inLast) throw new ExpandError('omission marker outside a repeat');
      if (marker.omitted === top.iterations - 1) top.lastIsFirst = true;
      else if (marker.omitted !== top.iterations - 2) throw new ExpandError('omission count does not match header');
      top.inLast = true;
    } else if (marker.kind === 'reference') {
      const dest = target();
      for (const [first, last] of marker.ranges) {
        if (first < 1 || first > last || last > at) {
          throw new ExpandError(`reference to output lines ${first}-${last} at line ${at + 1} does not point back`);
        }
        const key = `${first}-${last}`;
        let body = memo.get(key);
        if (body === undefined) {
          body = expandLines(lines, first - 1, last, memo);
          memo.set(key, body);
        }
        for (const line of body) dest.push(line);
      }
    } else {
      const top = stack.pop();
      if (top === undefined || !top.inLast) throw new ExpandError('end marker without a repeat');
      if (top.lastIsFirst) {
        if (top.last.length > 0)
          throw new ExpandError('lines after an omission marker that counted the last iteration');
        top.last = top.first;
      }
      const dest = target();
      for (let i = 0; i < top.iterations - 1; i++) for (const line of top.first) dest.push(line);
      for (const line of top.last) dest.push(line);
    }
  }
  if (stack.length > 0) throw new ExpandError('unterminated repeat');
  return out;
}
