// Inverse of collapse for checking: replays each collapsed block as first iteration,
// (iterations - 2) copies of it, then the last iteration. The result normalises
// (normaliseLog) to exactly the normalised input; that is the invariant the tests assert.

import { parseMarker } from './markers.js';
import { splitLogLines } from './line-key.js';

export class ExpandError extends Error {}

interface Frame {
  iterations: number;
  first: string[];
  last: string[];
  inLast: boolean;
}

/** Expands the markers of collapsed text; throws ExpandError on unbalanced markers. */
export function expandCollapsed(text: string): string {
  const out: string[] = [];
  const stack: Frame[] = [];
  const target = (): string[] => {
    const top = stack[stack.length - 1];
    return top === undefined ? out : top.inLast ? top.last : top.first;
  };
  for (const raw of splitLogLines(text)) {
    const marker = parseMarker(raw);
    if (marker === null) {
      target().push(raw);
      continue;
    }
    if (marker.kind === 'header') {
      stack.push({ iterations: marker.iterations, first: [], last: [], inLast: false });
    } else if (marker.kind === 'omitted') {
      const top = stack[stack.length - 1];
      if (top === undefined || top.inLast) throw new ExpandError('omission marker outside a repeat');
      if (marker.omitted !== top.iterations - 2) throw new ExpandError('omission count does not match header');
      top.inLast = true;
    } else {
      const top = stack.pop();
      if (top === undefined || !top.inLast) throw new ExpandError('end marker without a repeat');
      const lines = target();
      for (let i = 0; i < top.iterations - 1; i++) for (const line of top.first) lines.push(line);
      for (const line of top.last) lines.push(line);
    }
  }
  if (stack.length > 0) throw new ExpandError('unterminated repeat');
  return out.length === 0 ? '' : out.join('\n') + '\n';
}
