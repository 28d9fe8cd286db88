// The marker lines that frame a collapsed repeat, and their parser. Both collapse engines
// print exactly these; the expander reads them back.

export function repeatHeader(iterations: number, linesPerIteration: number): string {
  return `--- ${iterations}x of the following ${linesPerIteration} ${linesPerIteration === 1 ? 'line' : 'lines'} ---`;
}

export function omittedMarker(omitted: number): string {
  return `--- ${omitted} identical ${omitted === 1 ? 'iteration' : 'iterations'} omitted ---`;
}

export const END_MARKER = '--- end repeat ---';

export type Marker =
  | { kind: 'header'; iterations: number; linesPerIteration: number }
  | { kind: 'omitted'; omitted: number }
  | { kind: 'end' };

const HEADER_RE = /^--- (\d+)x of the following (\d+) lines? ---$/;
const OMITTED_RE = /^--- (\d+) identical iterations? omitted ---$/;

/** Recognises a marker line (without its line ending), or returns null. */
export function parseMarker(line: string): Marker | null {
  if (!line.startsWith('--- ')) return null;
  if (line === END_MARKER) return { kind: 'end' };
  let m = HEADER_RE.exec(line);
  if (m) return { kind: 'header', iterations: Number(m[1]), linesPerIteration: Number(m[2]) };
  m = OMITTED_RE.exec(line);
  if (m) return { kind: 'omitted', omitted: Number(m[1]) };
  return null;
}
