// The marker lines that frame a collapsed repeat, and their parser. Both collapse engines
// print exactly these; the expander reads them back.

export function repeatHeader(iterations: number, linesPerIteration: number): string {
  return `--- ${iterations}x of the following ${linesPerIteration} ${linesPerIteration === 1 ? 'line' : 'lines'} ---`;
}

export function omittedMarker(omitted: number): string {
  return `--- ${omitted} identical ${omitted === 1 ? 'iteration' : 'iterations'} omitted ---`;
}

/** Stands for items equal to those printed at the given output line ranges, in order (a branch re-walk). */
export function referenceMarker(lines: number, ranges: ReadonlyArray<readonly [number, number]>): string {
  const list = ranges.map(([first, last]) => `${first}-${last}`).join(', ');
  return `--- same ${lines} ${lines === 1 ? 'line' : 'lines'} as output lines ${list} ---`;
}

export const END_MARKER = '--- end repeat ---';

export type Marker =
  | { kind: 'header'; iterations: number; linesPerIteration: number }
  | { kind: 'omitted'; omitted: number }
  | { kind: 'end' }
  | { kind: 'reference'; lines: number; ranges: Array<[number, number]> };

const HEADER_RE = /^--- (\d+)x of the following (\d+) lines? ---$/;
const OMITTED_RE = /^--- (\d+) identical iterations? omitted ---$/;
const REFERENCE_RE = /^--- same (\d+) lines? as output lines (\d+-\d+(?:, \d+-\d+)*) ---$/;

/** Recognises a marker line (without its line ending), or returns null. */
export function parseMarker(line: string): Marker | null {
  if (!line.startsWith('--- ')) return null;
  if (line === END_MARKER) return { kind: 'end' };
  let m = HEADER_RE.exec(line);
  if (m) return { kind: 'header', iterations: Number(m[1]), linesPerIteration: Number(m[2]) };
  m = OMITTED_RE.exec(line);
  if (m) return { kind: 'omitted', omitted: Number(m[1]) };
  m = REFERENCE_RE.exec(line);
  if (m) {
    const ranges = m[2].split(', ').map((r): [number, number] => {
      const [first, last] = r.split('-');
      return [Number(first), Number(last)];
    });
    return { kind: 'reference', lines: Number(m[1]), ranges };
  }
  return null;
}
