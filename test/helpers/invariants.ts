// The collapse invariants as reusable assertions:
//  - every output line is an input line or a marker, in input order (a subsequence);
//  - expanding the markers gives back the normalised input exactly;
//  - the JSON structure describes the same blocks as the text, with correct line ranges.

import * as assert from 'uvu/assert';
import { expandCollapsed, normaliseLog, splitLogLines } from '../../src/collapse/index.js';
import { parseMarker } from '../../src/collapse/markers.js';

function latin1(bytes: Uint8Array | string): string {
  return typeof bytes === 'string'
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

/** Output lines without markers form a subsequence of the input lines. */
export function assertLinesFromInput(input: Uint8Array | string, output: Uint8Array | string, label = ''): void {
  const inLines = splitLogLines(latin1(input));
  let at = 0;
  let n = 0;
  for (const line of splitLogLines(latin1(output))) {
    n++;
    if (parseMarker(line) !== null) continue;
    while (at < inLines.length && inLines[at] !== line) at++;
    if (at === inLines.length) {
      assert.unreachable(
        `${label}: output line ${n} ${JSON.stringify(line.slice(0, 120))} is not a marker ` +
          'and not the next matching input line',
      );
    }
    at++;
  }
}

/** normaliseLog(expand(output)) equals normaliseLog(input). */
export function assertExpandsToInput(input: Uint8Array | string, output: Uint8Array | string, label = ''): void {
  const expanded = normaliseLog(expandCollapsed(latin1(output)));
  const original = normaliseLog(latin1(input));
  if (expanded.length !== original.length) {
    assert.unreachable(`${label}: expanded output has ${expanded.length} normalised lines, input ${original.length}`);
  }
  for (let i = 0; i < original.length; i++) {
    if (expanded[i] !== original[i]) {
      assert.unreachable(
        `${label}: normalised line ${i + 1} differs after expand: ` +
          `${JSON.stringify(expanded[i].slice(0, 120))} vs input ${JSON.stringify(original[i].slice(0, 120))}`,
      );
    }
  }
}

export function assertInvariants(input: Uint8Array | string, output: Uint8Array | string, label = ''): void {
  assertLinesFromInput(input, output, label);
  assertExpandsToInput(input, output, label);
}

/** A repeat block as read back from collapsed text. */
export interface TextBlock {
  iterations: number;
  linesPerIteration: number;
  first: TextBlock[];
  last: TextBlock[];
  firstLine: string | undefined; // first non-marker line inside the block
  lastLine: string | undefined; // last non-marker line inside the block
  firstIteration: string[]; // non-marker lines of the first iteration (nested ones included)
  /** The block holds a reference marker (its lines are elsewhere in the output). */
  hasReference: boolean;
  /** The first iteration is shown as a reference to an earlier block's first iteration. */
  firstIsReference: boolean;
  /** The omission marker counted iterations - 1: the last iteration equals the first and is not printed. */
  lastIsFirst: boolean;
}

/** Parses the marker structure of collapsed text (throws on unbalanced markers). */
export function parseBlocks(text: string): TextBlock[] {
  const top: TextBlock[] = [];
  const stack: Array<{ block: TextBlock; inLast: boolean }> = [];
  for (const line of splitLogLines(text)) {
    const m = parseMarker(line);
    if (m !== null && m.kind === 'reference') {
      for (const f of stack) f.block.hasReference = true;
      const top = stack[stack.length - 1];
      if (top !== undefined && !top.inLast) top.block.firstIsReference = true;
      continue;
    }
    if (m === null) {
      for (const f of stack) {
        f.block.firstLine ??= line;
        f.block.lastLine = line;
        if (!f.inLast) f.block.firstIteration.push(line);
      }
      continue;
    }
    if (m.kind === 'header') {
      const block: TextBlock = {
        iterations: m.iterations,
        linesPerIteration: m.linesPerIteration,
        first: [],
        last: [],
        firstLine: undefined,
        lastLine: undefined,
        firstIteration: [],
        hasReference: false,
        firstIsReference: false,
        lastIsFirst: false,
      };
      const parent = stack[stack.length - 1];
      (parent === undefined ? top : parent.inLast ? parent.block.last : parent.block.first).push(block);
      stack.push({ block, inLast: false });
    } else if (m.kind === 'omitted') {
      const f = stack[stack.length - 1];
      assert.ok(f !== undefined && !f.inLast, 'omission marker outside a block');
      assert.ok(
        m.omitted === f.block.iterations - 2 || m.omitted === f.block.iterations - 1,
        'omitted count = iterations - 2 (or - 1 when the last iteration is the first again)',
      );
      f.block.lastIsFirst = m.omitted === f.block.iterations - 1;
      f.inLast = true;
    } else {
      const f = stack.pop();
      assert.ok(f !== undefined && f.inLast, 'end marker without omission marker');
    }
  }
  assert.is(stack.length, 0, 'unterminated block');
  return top;
}

/** Largest nesting depth of blocks (0 = no blocks). */
export function blockDepth(blocks: readonly TextBlock[]): number {
  let depth = 0;
  for (const b of blocks) depth = Math.max(depth, 1 + blockDepth(b.first), 1 + blockDepth(b.last));
  return depth;
}

/** Blocks whose first iteration is shown as a reference to an earlier block's. */
function countBodyReferences(blocks: readonly TextBlock[]): number {
  return blocks.reduce(
    (n, b) => n + (b.firstIsReference ? 1 : 0) + countBodyReferences(b.first) + countBodyReferences(b.last),
    0,
  );
}

export function countBlocks(blocks: readonly TextBlock[]): number {
  return blocks.reduce((n, b) => n + 1 + countBlocks(b.first) + countBlocks(b.last), 0);
}

interface JsonIteration {
  startLine: number;
  endLine: number;
  blocks: JsonBlock[];
}
interface JsonBlock {
  iterations: number;
  linesPerIteration: number;
  startLine: number;
  endLine: number;
  first: JsonIteration;
  last: JsonIteration;
}
interface JsonReference {
  sameAs: { startLine: number; endLine: number };
  lines: number;
  startLine: number;
  endLine: number;
}
interface JsonDoc {
  blocks: Array<JsonBlock | JsonReference>;
  inputLines: number;
  outputLines: number;
}

function checkBlocks(json: JsonBlock[], text: TextBlock[], inLines: string[], where: string): void {
  assert.is(json.length, text.length, `${where}: number of blocks`);
  let prevEnd = 0;
  json.forEach((jb, i) => {
    const tb = text[i];
    const at = `${where}[${i}]`;
    assert.is(jb.iterations, tb.iterations, `${at}.iterations`);
    assert.is(jb.linesPerIteration, tb.linesPerIteration, `${at}.linesPerIteration`);
    assert.ok(
      jb.startLine > prevEnd && jb.startLine <= jb.endLine && jb.endLine <= inLines.length,
      `${at}: line range ${jb.startLine}..${jb.endLine} out of order`,
    );
    assert.ok(jb.first.startLine === jb.startLine && jb.last.endLine === jb.endLine, `${at}: iteration ranges`);
    assert.ok(jb.first.endLine < jb.last.startLine, `${at}: first iteration ends before the last starts`);
    if (!tb.hasReference) {
      assert.is(inLines[jb.startLine - 1], tb.firstLine, `${at}: input line ${jb.startLine} is the block's first line`);
      // when the last iteration is not printed, the block's last printed line is the first iteration's, byte for byte the same
      assert.is(inLines[jb.endLine - 1], tb.lastLine, `${at}: input line ${jb.endLine} is the block's last line`);
    }
    prevEnd = jb.endLine;
    if (!tb.firstIsReference) checkBlocks(jb.first.blocks, tb.first, inLines, `${at}.first`);
    checkBlocks(jb.last.blocks, tb.last, inLines, `${at}.last`);
  });
}

/** The JSON document describes exactly the blocks of the text output, with true line numbers. */
export function assertJsonMatchesText(
  input: Uint8Array | string,
  text: Uint8Array | string,
  jsonText: Uint8Array | string,
): void {
  const doc = JSON.parse(latin1(jsonText)) as JsonDoc;
  const inLines = splitLogLines(latin1(input));
  const outText = latin1(text);
  assert.is(doc.inputLines, inLines.length, 'inputLines');
  assert.is(doc.outputLines, splitLogLines(outText).length, 'outputLines');
  const runs = doc.blocks.filter((b): b is JsonBlock => !('sameAs' in b));
  checkBlocks(runs, parseBlocks(outText), inLines, 'blocks');
  // references: in input order, after what they stand for, as many as the markers list ranges
  let prevEnd = 0;
  const refs = doc.blocks.filter((b): b is JsonReference => 'sameAs' in b);
  for (const r of refs) {
    assert.ok(r.startLine > prevEnd && r.startLine <= r.endLine && r.endLine <= inLines.length, 'reference line range');
    assert.ok(r.sameAs.startLine <= r.sameAs.endLine && r.sameAs.endLine < r.startLine, 'a reference points back');
    assert.ok(r.lines >= 1, 'reference lines');
    prevEnd = r.endLine;
  }
  let ranges = 0;
  for (const line of splitLogLines(outText)) {
    const m = parseMarker(line);
    if (m !== null && m.kind === 'reference') ranges += m.ranges.length;
  }
  const bodyRefs = countBodyReferences(parseBlocks(outText));
  assert.is(refs.length, ranges - bodyRefs, 'one JSON reference per top-level marker range');
}
