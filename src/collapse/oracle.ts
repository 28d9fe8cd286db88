// Plain TypeScript implementation of the collapse algorithm (docs/collapse.md). It is the
// differential-testing oracle for the WASM core in assembly/collapse.ts: written for
// clarity (strings, objects, exact key equality) rather than speed, with the same
// segmenting, greedy search and rendering rules, so both must print identical bytes.

import type { CollapseEngine, CollapseOptions, OutputSink } from './engine.js';
import { resolveLimits, type CollapseLimits } from './limits.js';
import { chainKey, isBranchPop, lineKey } from './line-key.js';
import { END_MARKER, omittedMarker, referenceMarker, repeatHeader } from './markers.js';
import type { Item, LineItem, RunItem, RefItem } from './items.js';
import { findReferences, flattenTails } from './references.js';

interface LineRecord {
  bytes: Uint8Array;
  newline: boolean;
  key: string | null;
  pop: boolean; // a branch pop ("from X to Y: ...")
}

const NEWLINE = 10;
/** Most ranges one reference marker lists. */
const MAX_MARKER_RANGES = 8;
const encoder = new TextEncoder();

export class OracleCollapser implements CollapseEngine {
  private readonly limits: CollapseLimits;
  private readonly json: boolean;
  private readonly sink: OutputSink;

  private lines: LineRecord[] = [];
  private segmentByteCount = 0;
  private segmentBase = 0; // absolute index of lines[0]
  private partial: Uint8Array[] = [];
  private partialLength = 0;
  private inLongLine = false;
  private totalLines = 0;

  private outputLines = 0;
  private lastByte = NEWLINE;
  private wroteAnything = false;
  private jsonBlocks = 0;
  private interned = new Map<string, number>();

  constructor(sink: OutputSink, options: CollapseOptions = {}) {
    this.sink = sink;
    this.limits = resolveLimits(options.limits);
    this.json = options.json === true;
    if (this.json) this.write(encoder.encode('{"blocks":['));
  }

  feed(chunk: Uint8Array): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl < 0 ? chunk.length : nl;
      if (this.inLongLine) {
        this.writeLineBytes(chunk.subarray(start, nl < 0 ? end : end + 1));
        if (nl >= 0) this.inLongLine = false;
      } else if (this.partialLength + (end - start) > this.limits.longLineBytes) {
        this.beginLongLine(chunk.subarray(start, end), nl >= 0);
      } else if (nl < 0) {
        this.partial.push(chunk.subarray(start, end));
        this.partialLength += end - start;
      } else {
        this.partial.push(chunk.subarray(start, end));
        this.addLine(this.takePartial(), true);
      }
      start = end + 1;
    }
  }

  finish(): void {
    if (!this.inLongLine && this.partialLength > 0) this.addLine(this.takePartial(), false);
    this.inLongLine = false;
    this.processSegment(true);
    if (this.json) {
      this.write(encoder.encode(`],"inputLines":${this.totalLines},"outputLines":${this.outputLines}}\n`));
    }
  }

  // ---- input ---------------------------------------------------------------------------

  private takePartial(): Uint8Array {
    const parts = this.partial;
    this.partial = [];
    this.partialLength = 0;
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** A line too long to hold: flush everything held, then stream the line straight out. */
  private beginLongLine(rest: Uint8Array, complete: boolean): void {
    this.processSegment(true);
    const head = this.takePartial();
    this.totalLines++;
    this.segmentBase = this.totalLines;
    this.outputLines++;
    this.writeLineBytes(head);
    this.writeLineBytes(rest);
    if (complete) this.writeLineBytes(Uint8Array.of(NEWLINE));
    else this.inLongLine = true;
  }

  private addLine(bytes: Uint8Array, newline: boolean): void {
    const { segmentBytes, segmentLines } = this.limits;
    if (
      this.lines.length > 0 &&
      (this.segmentByteCount + bytes.length + 1 > segmentBytes || this.lines.length + 1 > segmentLines)
    ) {
      this.processSegment(false);
    }
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 13) end--;
    const key = lineKey(Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1'));
    this.lines.push({ bytes, newline, key, pop: isBranchPop(key) });
    this.segmentByteCount += bytes.length + 1;
    this.totalLines++;
  }

  // ---- one segment -----------------------------------------------------------------------

  private buildItems(): LineItem[] {
    const items: LineItem[] = [];
    const lines = this.lines;
    for (let i = 0; i < lines.length; i++) {
      const key = lines[i].key;
      if (key !== null) {
        items.push({
          kind: 'line',
          first: i,
          last: i,
          key: this.intern(key),
          weight: 1,
          pop: lines[i].pop,
          tail: null,
        });
      } else if (items.length === 0) {
        items.push({ kind: 'line', first: i, last: i, key: 0, weight: 0, pop: false, tail: null });
      } else {
        items[items.length - 1].last = i;
      }
    }
    for (const item of items) this.collapseTail(item);
    return items;
  }

  /** Searches the item's bookkeeping lines (by their chain keys) for repeats of their own. */
  private collapseTail(item: LineItem): void {
    const from = item.key !== 0 ? item.first + 1 : item.first;
    const { minPeriodLines, minRepetitions, maxDepth } = this.limits;
    if (item.last + 1 - from < minPeriodLines) return;
    const tail: LineItem[] = [];
    for (let i = from; i <= item.last; i++) {
      const bytes = this.lines[i].bytes;
      let end = bytes.length;
      if (end > 0 && bytes[end - 1] === 13) end--;
      const key = chainKey(Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1'));
      if (key !== null) {
        tail.push({ kind: 'line', first: i, last: i, key: this.intern(key), weight: 1, pop: false, tail: null });
      } else if (tail.length === 0) {
        tail.push({ kind: 'line', first: i, last: i, key: 0, weight: 0, pop: false, tail: null });
      } else {
        tail[tail.length - 1].last = i;
      }
    }
    const collapsed = tail.length >= minPeriodLines * minRepetitions ? this.repeatPasses(tail, maxDepth) : tail;
    this.collapseBodies(collapsed, 1);
    item.tail = collapsed;
  }

  private processSegment(eof: boolean): void {
    if (this.lines.length === 0) return;
    const { minRepetitions, maxPeriodItems, segmentBytes, segmentLines, maxDepth } = this.limits;
    const items = this.buildItems();
    const n = items.length;
    let limit = n;
    if (!eof) {
      const lookahead = n - minRepetitions * maxPeriodItems;
      if (lookahead > 0) {
        const from = items[lookahead].first;
        let carryBytes = 0;
        for (let i = from; i < this.lines.length; i++) carryBytes += this.lines[i].bytes.length + 1;
        const carryLines = this.lines.length - from;
        if (carryBytes <= segmentBytes / 2 && carryLines <= segmentLines / 2) limit = lookahead;
      }
    }
    const first = this.greedyPass(items, limit);
    let top = first.out;
    if (top.length < first.consumed) top = this.repeatPasses(top, maxDepth - 1);
    this.collapseBodies(top, 1);
    this.topLines = [];
    this.topSeq = flattenTails(top);
    const found = findReferences(this.topSeq, this.limits);
    this.topIndex = found.printedAt;
    this.renderUnits(found.units);

    const carryFrom = first.consumed < n ? items[first.consumed].first : this.lines.length;
    const carried = this.lines.slice(carryFrom);
    this.segmentBase += carryFrom;
    this.lines = carried;
    this.segmentByteCount = carried.reduce((sum, l) => sum + l.bytes.length + 1, 0);
    this.interned = new Map();
  }

  private intern(text: string): number {
    let id = this.interned.get(text);
    if (id === undefined) {
      id = this.interned.size + 1;
      this.interned.set(text, id);
    }
    return id;
  }

  private repeatPasses(seq: Item[], passes: number): Item[] {
    let current = seq;
    for (let pass = 0; pass < passes; pass++) {
      const { out } = this.greedyPass(current, current.length);
      if (out.length === current.length) break;
      current = out;
    }
    return current;
  }

  private collapseBodies(seq: Item[], depth: number): void {
    if (depth >= this.limits.maxDepth) return;
    for (const item of seq) {
      if (item.kind !== 'run') continue;
      item.first = this.repeatPasses(item.first, this.limits.maxDepth);
      this.collapseBodies(item.first, depth + 1);
      item.last = this.repeatPasses(item.last, this.limits.maxDepth);
      this.collapseBodies(item.last, depth + 1);
    }
  }

  /**
   * One left-to-right pass: at each start s < limit, the smallest period p (among the
   * first candidatesPerStart later occurrences of item s's key, p <= maxPeriodItems, block
   * weight >= minPeriodLines) whose block repeats minRepetitions times becomes a run,
   * extended as far as it keeps repeating.
   */
  private greedyPass(items: Item[], limit: number): { out: Item[]; consumed: number } {
    const { minPeriodLines, minRepetitions, maxPeriodItems, candidatesPerStart } = this.limits;
    const n = items.length;
    const keys = items.map((it) => it.key);
    const next = new Int32Array(n).fill(-1);
    const lastSeen = new Map<number, number>();
    for (let i = n - 1; i >= 0; i--) {
      if (keys[i] === 0) continue;
      const j = lastSeen.get(keys[i]);
      if (j !== undefined) next[i] = j;
      lastSeen.set(keys[i], i);
    }
    const weightBefore = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) weightBefore[i + 1] = weightBefore[i] + items[i].weight;
    const same = (i: number, j: number): boolean => keys[i] !== 0 && keys[i] === keys[j];

    // memo per period: positions [runFrom, runTo) all match their predecessor p items back
    const runFrom = new Int32Array(maxPeriodItems + 1).fill(-1);
    const runTo = new Int32Array(maxPeriodItems + 1).fill(-1);
    const matchesThrough = (p: number, start: number, need: number): boolean => {
      let from = runFrom[p];
      let to = runTo[p];
      if (from < 0 || start < from || start > to) {
        from = start;
        to = start;
      }
      while (to < need && to < n && same(to, to - p)) to++;
      runFrom[p] = from;
      runTo[p] = to;
      return to >= need;
    };
    const findPeriod = (s: number): number => {
      if (keys[s] === 0) return 0;
      let tried = 0;
      for (let j = next[s]; j >= 0; j = next[j]) {
        const p = j - s;
        if (p > maxPeriodItems) break;
        if (weightBefore[j] - weightBefore[s] < minPeriodLines) continue;
        if (tried === candidatesPerStart) break;
        tried++;
        const need = s + minRepetitions * p;
        if (need <= n && matchesThrough(p, s + p, need)) return p;
      }
      return 0;
    };

    const out: Item[] = [];
    let s = 0;
    while (s < limit) {
      let p = findPeriod(s);
      if (p === 0) {
        out.push(items[s]);
        s++;
        continue;
      }
      let m = s + minRepetitions * p;
      while (m < n && same(m, m - p)) m++;
      // show the run in its shortest period: a 4-line loop body found as an 8-line block
      // is eight iterations of 4 lines, not four of 8
      let shortest = p;
      for (let d = 1; d < p && shortest === p; d++) {
        if (p % d !== 0) continue;
        let periodic = true;
        for (let i = s + d; i < m && periodic; i++) periodic = same(i, i - d);
        if (periodic) shortest = d;
      }
      p = shortest;
      const reps = Math.floor((m - s) / p);
      const first = items.slice(s, s + p);
      const iterWeight = weightBefore[s + p] - weightBefore[s];
      out.push({
        kind: 'run',
        reps,
        iterWeight,
        weight: reps * iterWeight,
        key: this.intern(`R${reps}:${keys.slice(s, s + p).join(',')}`),
        iterKey: this.intern(`P:${keys.slice(s, s + p).join(',')}`),
        first,
        last: items.slice(s + (reps - 1) * p, s + reps * p),
      });
      s += reps * p;
    }
    return { out, consumed: s };
  }

  // ---- output ----------------------------------------------------------------------------

  private write(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.sink(bytes);
    this.lastByte = bytes[bytes.length - 1];
    this.wroteAnything = true;
  }

  private writeLineBytes(bytes: Uint8Array): void {
    if (!this.json) this.write(bytes);
  }

  private writeMarker(text: string): void {
    this.outputLines++;
    if (this.json) return;
    if (this.wroteAnything && this.lastByte !== NEWLINE) this.write(Uint8Array.of(NEWLINE));
    this.write(encoder.encode(text + '\n'));
  }

  private lineNumber(index: number): number {
    return this.segmentBase + index + 1;
  }

  private firstLine(item: Item): number {
    if (item.kind === 'ref') return this.firstLine(item.items[0]);
    return item.kind === 'run' ? this.firstLine(item.first[0]) : item.first;
  }

  private lastLine(item: Item): number {
    if (item.kind === 'ref') return this.lastLine(item.items[item.items.length - 1]);
    return item.kind === 'run' ? this.lastLine(item.last[item.last.length - 1]) : item.last;
  }

  /** Output line span [first, last] of each printed unit, by its index in the segment's units. */
  private topLines: Array<[number, number]> = [];
  private topIndex = new Map<Item, number>();
  private topSeq: Item[] = [];

  private topSeqItem(index: number): Item {
    return this.topSeq[index];
  }

  /**
   * Prints the segment's units. Consecutive references share one marker (at most
   * MAX_MARKER_RANGES ranges); after the first printed branch pop, a run whose iteration
   * equals the first iteration of a run printed earlier in the segment shows that
   * iteration as a reference to it.
   */
  private renderUnits(out: Item[]): void {
    const bodies = new Map<number, [number, number]>();
    let pending: Array<[number, number]> = [];
    let pendingWeight = 0;
    const flush = (): void => {
      if (pending.length === 0) return;
      this.writeMarker(referenceMarker(pendingWeight, pending));
      pending = [];
      pendingWeight = 0;
    };
    let rewalk = false;
    for (const item of out) {
      if (item.kind === 'ref') {
        const first = this.topLines[item.target][0];
        const last = this.topLines[item.target + item.count - 1][1];
        if (this.json) this.write(encoder.encode((this.jsonBlocks++ > 0 ? ',' : '') + this.refJson(item)));
        if (pending.length === MAX_MARKER_RANGES) flush();
        pending.push([first, last]);
        pendingWeight += item.weight;
        continue;
      }
      flush();
      const start = this.outputLines + 1;
      if (item.kind === 'run') {
        if (this.json) this.write(encoder.encode((this.jsonBlocks++ > 0 ? ',' : '') + this.blockJson(item)));
        const body = rewalk ? bodies.get(item.iterKey) : undefined;
        if (body !== undefined) {
          this.renderRun(item, body);
        } else {
          const span = this.renderRun(item, null);
          if (!bodies.has(item.iterKey)) bodies.set(item.iterKey, span);
        }
      } else {
        this.renderText(item);
        if (item.pop) rewalk = true;
      }
      const index = this.topIndex.get(item);
      if (index !== undefined) this.topLines[index] = [start, this.outputLines];
    }
    flush();
  }

  private renderLines(first: number, last: number): void {
    for (let i = first; i <= last; i++) {
      const line = this.lines[i];
      this.outputLines++;
      this.writeLineBytes(line.bytes);
      if (line.newline) this.writeLineBytes(Uint8Array.of(NEWLINE));
    }
  }

  private renderText(item: Item): void {
    if (item.kind === 'line') {
      if (item.tail === null) {
        this.renderLines(item.first, item.last);
      } else {
        if (item.key !== 0) this.renderLines(item.first, item.first);
        for (const it of item.tail) this.renderText(it);
      }
      return;
    }
    if (item.kind === 'ref') throw new Error('reference inside a repeat');
    this.renderRun(item, null);
  }

  /** Prints a run; its first iteration as a reference when `body` names earlier output lines. Returns the
   * output lines of the first iteration. */
  private renderRun(item: RunItem, body: [number, number] | null): [number, number] {
    this.writeMarker(repeatHeader(item.reps, item.iterWeight));
    const start = this.outputLines + 1;
    if (body === null) {
      for (const it of item.first) this.renderText(it);
    } else {
      this.writeMarker(referenceMarker(item.iterWeight, [body]));
    }
    const span: [number, number] = [start, this.outputLines];
    if (this.sameText(item.first, item.last)) {
      this.writeMarker(omittedMarker(item.reps - 1));
    } else {
      this.writeMarker(omittedMarker(item.reps - 2));
      for (const it of item.last) this.renderText(it);
    }
    this.writeMarker(END_MARKER);
    return span;
  }

  /** True when two iterations of plain lines are byte for byte the same (the last is then not printed). */
  private sameText(a: Item[], b: Item[]): boolean {
    if (a.length !== b.length) return false;
    for (let k = 0; k < a.length; k++) {
      const x = a[k];
      const y = b[k];
      if (x.kind !== 'line' || y.kind !== 'line' || x.tail !== null || y.tail !== null) return false;
      if (x.last - x.first !== y.last - y.first) return false;
      for (let i = 0; i <= x.last - x.first; i++) {
        const p = this.lines[x.first + i];
        const q = this.lines[y.first + i];
        if (p.newline !== q.newline || Buffer.compare(p.bytes, q.bytes) !== 0) return false;
      }
    }
    return true;
  }

  /** The runs a sequence shows at its own level: its runs, and the runs in its items' bookkeeping. */
  private blocksOf(seq: Item[]): RunItem[] {
    const runs: RunItem[] = [];
    for (const it of seq) {
      if (it.kind === 'run') runs.push(it);
      else if (it.kind === 'line' && it.tail !== null) for (const t of it.tail) if (t.kind === 'run') runs.push(t);
    }
    return runs;
  }

  private iterationJson(seq: Item[]): string {
    const blocks = this.blocksOf(seq).map((it) => this.blockJson(it));
    return (
      `{"startLine":${this.lineNumber(this.firstLine(seq[0]))},` +
      `"endLine":${this.lineNumber(this.lastLine(seq[seq.length - 1]))},"blocks":[${blocks.join(',')}]}`
    );
  }

  private blockJson(run: RunItem): string {
    return (
      `{"iterations":${run.reps},"linesPerIteration":${run.iterWeight},` +
      `"startLine":${this.lineNumber(this.firstLine(run))},"endLine":${this.lineNumber(this.lastLine(run))},` +
      `"first":${this.iterationJson(run.first)},"last":${this.iterationJson(run.last)}}`
    );
  }

  private refJson(ref: RefItem): string {
    return (
      `{"sameAs":{"startLine":${this.lineNumber(this.firstLine(this.topSeqItem(ref.target)))},` +
      `"endLine":${this.lineNumber(this.lastLine(this.topSeqItem(ref.target + ref.count - 1)))}},` +
      `"lines":${ref.weight},"startLine":${this.lineNumber(this.firstLine(ref))},` +
      `"endLine":${this.lineNumber(this.lastLine(ref))}}`
    );
  }
}
