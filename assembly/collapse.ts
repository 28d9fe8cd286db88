// WASM core of `ktstr-wasm collapse`: line splitting, normalisation, hashing, cycle
// detection and rendering of BPF verifier logs, over raw linear memory with no managed
// allocations. The algorithm and every rule are specified in docs/collapse.md; the
// readable TypeScript oracle (src/collapse/oracle.ts, src/collapse/line-key.ts) implements
// the same rules and the tests require byte-identical output from both.
//
// Host ABI: init(limits..., json) -> 0 | error (also resets, so an instance can be reused);
// inputBuffer()/inputCapacity() give the staging area the host copies input into; feed(n)
// consumes n staged bytes; finish() ends the input. Output leaves through the imported env.emit(ptr, len), valid only during
// the call.

@external("env", "emit")
declare function emit(ptr: usize, len: i32): void;

// ---- limits (set by init) -------------------------------------------------------------------
let minPeriodLines: u32 = 5;
let minRepetitions: u32 = 3;
let maxPeriodItems: u32 = 1024;
let candidatesPerStart: u32 = 32;
let segmentBytes: u32 = 16 << 20;
let segmentLines: u32 = 1 << 18;
let longLineBytes: u32 = 16 << 20;
let maxDepth: u32 = 16;
let minReferenceLines: u32 = 5;
let jsonMode: bool = false;

const STAGING_BYTES: u32 = 1 << 20;
const OUT_BYTES: u32 = 1 << 20;
const DIRECT_EMIT_BYTES: u32 = 64 << 10;
const NL: u8 = 10;
const CR: u8 = 13;

// ---- fixed regions ---------------------------------------------------------------------------
let staging: usize = 0;
let outBuf: usize = 0;
let outLen: u32 = 0;
let segBuf: usize = 0; // line bytes, each followed by its '\n' when it had one
let lineTab: usize = 0; // per line: offset u32, length u32, key u64, newline u32, pop u32 -> 24 bytes
let arenaBase: usize = 0;
let arenaTop: usize = 0;
let arenaHigh: usize = 0;
let memoFrom: usize = 0; // i32 per period
let memoTo: usize = 0;
let memoStamp: usize = 0; // u32 per period
let passStamp: u32 = 0;

const LINE_REC: usize = 24;

// ---- input state -------------------------------------------------------------------------------
let lineCount: u32 = 0;
let segmentByteCount: u64 = 0; // sum of (length + 1) over held lines, as the spec counts
let bufUsed: u32 = 0; // bytes used in segBuf, including the partial line
let partialLen: u32 = 0; // the partial line occupies [bufUsed - partialLen, bufUsed)
let inLongLine: bool = false;
let totalLines: u64 = 0;
let segmentBase: u64 = 0;

// ---- output state ------------------------------------------------------------------------------
let outputLines: u64 = 0;
let lastByte: u8 = NL;
let wroteAnything: bool = false;
let jsonBlocks: u32 = 0;
let pendStart: usize = 0; // a pending contiguous range of segment bytes to write
let pendEnd: usize = 0;

// ---- memory -------------------------------------------------------------------------------------

/** Grows memory to cover `end`, geometrically (by at least half of what there is, at least
 * 16 MiB): each grow costs the host a new buffer, so a page at a time would cost seconds. */
function ensureMemory(end: usize): bool {
  const have = (<usize>memory.size()) << 16;
  if (end <= have) return true;
  const need = <i32>((end - have + 0xffff) >> 16);
  let pages = max<i32>(need, max<i32>(memory.size() >> 1, 256));
  if (memory.size() + pages > 65536) pages = need;
  return memory.grow(pages) >= 0;
}

function arenaAlloc(bytes: usize): usize {
  const at = (arenaTop + 7) & ~(<usize>7);
  const end = at + bytes;
  if (end > arenaHigh) {
    if (!ensureMemory(end)) unreachable();
    arenaHigh = (<usize>memory.size()) << 16;
  }
  arenaTop = end;
  return at;
}

export function init(
  minLines: u32, minReps: u32, maxPeriod: u32, candidates: u32,
  segBytes: u32, segLines: u32, longLine: u32, depth: u32, json: u32, minRefLines: u32,
): i32 {
  minReferenceLines = minRefLines;
  minPeriodLines = minLines;
  minRepetitions = minReps;
  maxPeriodItems = maxPeriod;
  candidatesPerStart = candidates;
  segmentBytes = segBytes;
  segmentLines = segLines;
  longLineBytes = longLine;
  maxDepth = depth;
  jsonMode = json != 0;
  // an instance is reused for the next input: start from a clean state
  outLen = 0;
  lineCount = 0;
  segmentByteCount = 0;
  bufUsed = 0;
  partialLen = 0;
  inLongLine = false;
  totalLines = 0;
  segmentBase = 0;
  outputLines = 0;
  lastByte = NL;
  wroteAnything = false;
  jsonBlocks = 0;
  pendStart = 0;
  pendEnd = 0;

  let at: usize = (__heap_base + 15) & ~(<usize>15);
  staging = at; at += STAGING_BYTES;
  outBuf = at; at += OUT_BYTES;
  segBuf = at;
  at += <usize>segBytes + (<usize>segBytes >> 1) + <usize>longLine + 64;
  at = (at + 15) & ~(<usize>15);
  lineTab = at; at += (<usize>segLines + 2) * LINE_REC;
  memoFrom = at; at += (<usize>maxPeriod + 1) * 4;
  memoTo = at; at += (<usize>maxPeriod + 1) * 4;
  memoStamp = at; at += (<usize>maxPeriod + 1) * 4;
  at = (at + 15) & ~(<usize>15);
  scratchKeys = at; at += (<usize>segLines + 1) << 3;
  scratchNext = at; at += (<usize>segLines + 1) << 2;
  scratchWeight = at; at += (<usize>segLines + 2) << 2;
  scratchPrinted = at; at += <usize>segLines + 1;
  at = (at + 15) & ~(<usize>15);
  unitLines = at; at += (<usize>segLines + 1) << 4;
  scratchTable = at; at += (<usize>tableSize(segLines + 1)) << 4;
  arenaBase = (at + 15) & ~(<usize>15);
  if (!ensureMemory(arenaBase + 65536)) return 1;
  memory.fill(memoStamp, 0, (<usize>maxPeriod + 1) * 4);
  arenaTop = arenaBase;
  arenaHigh = (<usize>memory.size()) << 16;
  if (jsonMode) writeAscii('{"blocks":[');
  return 0;
}

export function inputBuffer(): usize {
  return staging;
}

export function inputCapacity(): u32 {
  return STAGING_BYTES;
}

// ---- output -------------------------------------------------------------------------------------

function flushOut(): void {
  if (outLen > 0) {
    emit(outBuf, <i32>outLen);
    outLen = 0;
  }
}

function writeBytes(src: usize, len: u32): void {
  if (len == 0) return;
  lastByte = load<u8>(src + len - 1);
  wroteAnything = true;
  if (len >= DIRECT_EMIT_BYTES) {
    flushOut();
    emit(src, <i32>len);
    return;
  }
  if (outLen + len > OUT_BYTES) flushOut();
  memory.copy(outBuf + outLen, src, len);
  outLen += len;
}

function writeByte(b: u8): void {
  if (outLen + 1 > OUT_BYTES) flushOut();
  store<u8>(outBuf + outLen, b);
  outLen += 1;
  lastByte = b;
  wroteAnything = true;
}

function writeAscii(s: string): void {
  for (let i = 0; i < s.length; i++) writeByte(<u8>s.charCodeAt(i));
}

function writeDecimal(v: u64): void {
  if (v >= 10) writeDecimal(v / 10);
  writeByte(<u8>(48 + <u32>(v % 10)));
}

/** Line bytes go through a pending range so that neighbouring lines leave in one copy. */
function queueRange(start: usize, end: usize): void {
  if (start == end) return;
  if (pendEnd == start && pendEnd != 0) {
    pendEnd = end;
    return;
  }
  flushRange();
  pendStart = start;
  pendEnd = end;
}

function flushRange(): void {
  if (pendEnd > pendStart) writeBytes(pendStart, <u32>(pendEnd - pendStart));
  pendStart = 0;
  pendEnd = 0;
}

function writeMarkerStart(): void {
  flushRange();
  if (wroteAnything && lastByte != NL) writeByte(NL);
}

function writeHeader(reps: u32, iterWeight: u32): void {
  outputLines++;
  if (jsonMode) return;
  writeMarkerStart();
  writeAscii('--- ');
  writeDecimal(reps);
  writeAscii('x of the following ');
  writeDecimal(iterWeight);
  writeAscii(iterWeight == 1 ? ' line ---\n' : ' lines ---\n');
}

function writeOmitted(omitted: u32): void {
  outputLines++;
  if (jsonMode) return;
  writeMarkerStart();
  writeAscii('--- ');
  writeDecimal(omitted);
  writeAscii(omitted == 1 ? ' identical iteration omitted ---\n' : ' identical iterations omitted ---\n');
}

function writeEnd(): void {
  outputLines++;
  if (jsonMode) return;
  writeMarkerStart();
  writeAscii('--- end repeat ---\n');
}

// ---- lines -------------------------------------------------------------------------------------

@inline function lineOff(i: u32): u32 { return load<u32>(lineTab + <usize>i * LINE_REC); }
@inline function lineLen(i: u32): u32 { return load<u32>(lineTab + <usize>i * LINE_REC, 4); }
@inline function lineKeyOf(i: u32): u64 { return load<u64>(lineTab + <usize>i * LINE_REC, 8); }
@inline function lineNl(i: u32): u32 { return load<u32>(lineTab + <usize>i * LINE_REC, 16); }
@inline function linePop(i: u32): u32 { return load<u32>(lineTab + <usize>i * LINE_REC, 20); }

/** End (exclusive) of line i's bytes in segBuf, including its '\n'. */
@inline function lineEnd(i: u32): usize {
  return segBuf + <usize>lineOff(i) + <usize>lineLen(i) + <usize>lineNl(i);
}

// ---- normalisation ----------------------------------------------------------------------------

@inline function isDigit(c: u32): bool { return c - 48 < 10; }
@inline function isSpace(c: u32): bool { return c == 32 || c == 9; }
@inline function isLetter(c: u32): bool { return ((c | 32) - 97) < 26; }

// byte at i, or 256 past the end (matches no character class)
@inline function at(p: usize, n: u32, i: u32): u32 {
  return i < n ? <u32>load<u8>(p + i) : 256;
}

function skipDigits(p: usize, n: u32, i: u32): u32 {
  while (i < n && isDigit(<u32>load<u8>(p + i))) i++;
  return i;
}

function startsWith(p: usize, n: u32, i: u32, s: string): bool {
  const m = <u32>s.length;
  if (i + m > n) return false;
  for (let k: u32 = 0; k < m; k++) {
    if (<u32>load<u8>(p + i + k) != <u32>s.charCodeAt(k)) return false;
  }
  return true;
}

function startsState(p: usize, n: u32, i: u32): bool {
  if (startsWith(p, n, i, 'frame')) {
    const j = skipDigits(p, n, i + 5);
    return j > i + 5 && at(p, n, j) == 58;
  }
  let j: u32;
  const c = at(p, n, i);
  if (c == 82) {
    j = skipDigits(p, n, i + 1);
    if (j == i + 1) return false;
  } else if (startsWith(p, n, i, 'fp-')) {
    j = skipDigits(p, n, i + 3);
    if (j == i + 3) return false;
  } else {
    return false;
  }
  if (at(p, n, j) == 95) {
    j++;
    while (j < n && isLetter(<u32>load<u8>(p + j))) j++;
  }
  return at(p, n, j) == 61;
}

const K1: u64 = 0x9e3779b97f4a7c15;
const K2: u64 = 0xc2b2ae3d27d4eb4f;

@inline function fmix(h: u64): u64 {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53;
  h ^= h >> 33;
  return h;
}

function hashBytes(tag: u32, p: usize, len: u32): u64 {
  let h: u64 = (<u64>tag * K2) ^ (<u64>len * K1);
  let i: u32 = 0;
  while (i + 8 <= len) {
    h = (h ^ load<u64>(p + i)) * K1;
    h = rotl<u64>(h, 29);
    i += 8;
  }
  let tail: u64 = 0;
  let shift: u64 = 0;
  while (i < len) {
    tail |= (<u64>load<u8>(p + i)) << shift;
    shift += 8;
    i++;
  }
  h = (h ^ tail) * K2;
  h = fmix(h);
  return h == 0 ? 1 : h;
}

/** Set by lineKey: the line is a branch pop ("from X to Y: ..."). */
let keyIsPop: bool = false;

/** True at i: a register or stack state (R<n>[_x]=, fp-<n>[_x]=), not frame<n>:. */
function startsRegState(p: usize, n: u32, i: u32): bool {
  const c = at(p, n, i);
  if (c == 82) return startsState(p, n, i);
  return c == 102 && startsWith(p, n, i, 'fp-') && startsState(p, n, i);
}

/** Chain key of a bookkeeping line (see src/collapse/line-key.ts chainKey): 0 for a blank line. */
function chainKey(p: usize, n: u32): u64 {
  let i: u32 = 0;
  while (i < n && isSpace(<u32>load<u8>(p + i))) i++;
  if (i == n) return 0;
  // a backtracking step: the text around the address, hashed in two parts (no copy); the
  // first "before " decides the split, so equal keys always split alike
  for (let q = findByte(p, 0, n, 98); q + 7 <= n; q = findByte(p, q + 1, n, 98)) {
    if (startsWith(p, n, q, 'before ')) {
      const a = q + 7;
      const b = skipDigits(p, n, a);
      if (b > a && at(p, n, b) == 58) {
        const h = fmix((hashBytes(66 /* B */, p, a) * K1) ^ hashBytes(98 /* b */, p + b, n - b));
        return h == 0 ? 1 : h;
      }
      break;
    }
  }
  // anything else: numbers standing alone become '#', the text stops at a register state
  const save = arenaTop;
  const buf = arenaAlloc(<usize>n + 8);
  let len: u32 = 0;
  i = 0;
  while (i < n) {
    const atToken = i == 0 || load<u8>(p + i - 1) == 32;
    if (atToken && startsRegState(p, n, i)) break;
    if (atToken && isDigit(<u32>load<u8>(p + i))) {
      const j = skipDigits(p, n, i);
      const c = at(p, n, j);
      if (j == n || c == 32 || c == 58) {
        store<u8>(buf + len, 35);
        len++;
        i = j;
        continue;
      }
    }
    store<u8>(buf + len, load<u8>(p + i));
    len++;
    i++;
  }
  while (len > 0 && isSpace(<u32>load<u8>(buf + len - 1))) len--;
  const h = hashBytes(66 /* B */, buf, len);
  arenaTop = save;
  return h;
}

/** Normalised key of a line (without '\n' and trailing '\r'): 0 for bookkeeping. */
function lineKey(p: usize, n: u32): u64 {
  keyIsPop = false;
  let i: u32 = 0;
  while (i < n && isSpace(<u32>load<u8>(p + i))) i++;
  if (i == n) return 0;
  if (startsState(p, n, i)) return 0;
  const c0 = <u32>load<u8>(p);
  if (c0 == 59) return hashBytes(83 /* S */, p, n);
  if (isDigit(c0)) {
    const j = skipDigits(p, n, 0);
    if (at(p, n, j) == 58) {
      let k = j + 1;
      if (at(p, n, k) == 32) k++;
      if (at(p, n, k) == 40) {
        let cut = n;
        for (let q = k; q + 1 < n; q++) {
          if (load<u8>(p + q) == 32 && load<u8>(p + q + 1) == 59) { cut = q; break; }
        }
        while (cut > k && isSpace(<u32>load<u8>(p + cut - 1))) cut--;
        return hashBytes(73 /* I */, p + k, cut - k);
      }
      if (startsState(p, n, k)) return 0;
      return hashBytes(65 /* A */, p + k, n - k);
    }
  }
  if (startsWith(p, n, 0, 'from ')) {
    const a = skipDigits(p, n, 5);
    if (a > 5 && startsWith(p, n, a, ' to ')) {
      const b = skipDigits(p, n, a + 4);
      if (b > a + 4) {
        let colon = b;
        while (colon < n && load<u8>(p + colon) != 58) colon++;
        keyIsPop = true;
        return hashBytes(70 /* F */, p + b, colon - b);
      }
    }
  }
  if (startsWith(p, n, 0, 'to caller at ')) {
    const a = skipDigits(p, n, 13);
    if (a > 13) return hashBytes(67 /* C */, p + a, n - a);
  }
  if (c0 == 109 && startsWith(p, n, 0, 'mark_precise:')) return 0;
  if (startsWith(p, n, 0, 'propagating ')) return 0;
  if (startsWith(p, n, 0, 'last_idx ')) return 0;
  if (startsWith(p, n, 0, "parent didn't have ")) return 0;
  if (startsWith(p, n, 0, 'parent already had ')) return 0;
  if (startsWith(p, n, 0, 'regs=')) return 0;
  if (startsWith(p, n, 0, 'SCC ')) return 0;
  if (c0 == 40) {
    const j = skipDigits(p, n, 1);
    if (j > 1 && at(p, n, j) == 41 && at(p, n, j + 1) == 32) return 0;
  }
  return hashBytes(86 /* V */, p, n);
}

// ---- input ---------------------------------------------------------------------------------------

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;
const NLS: u64 = 0x0a0a0a0a0a0a0a0a;

/** Index of the first byte `b` in [from, end) of buf, or end; eight bytes at a time. */
function findByte(buf: usize, from: u32, end: u32, b: u8): u32 {
  const pattern: u64 = ONES * <u64>b;
  let i = from;
  while (i + 8 <= end) {
    const x = load<u64>(buf + i) ^ pattern;
    const hit = (x - ONES) & ~x & HIGHS;
    if (hit != 0) return i + <u32>(ctz<u64>(hit) >> 3);
    i += 8;
  }
  while (i < end && load<u8>(buf + i) != b) i++;
  return i;
}

/** Index of the first '\n' in [from, end) of buf, or end; eight bytes at a time. */
function findNewline(buf: usize, from: u32, end: u32): u32 {
  let i = from;
  while (i + 8 <= end) {
    const x = load<u64>(buf + i) ^ NLS;
    const hit = (x - ONES) & ~x & HIGHS;
    if (hit != 0) return i + <u32>(ctz<u64>(hit) >> 3);
    i += 8;
  }
  while (i < end && load<u8>(buf + i) != NL) i++;
  return i;
}

export function feed(len: u32): void {
  let start: u32 = 0;
  while (start < len) {
    const nl = findNewline(staging, start, len);
    const found = nl < len;
    const chunk = nl - start;
    if (inLongLine) {
      if (!jsonMode) {
        flushRange();
        writeBytes(staging + start, found ? chunk + 1 : chunk);
      }
      if (found) inLongLine = false;
    } else if (<u64>partialLen + <u64>chunk > <u64>longLineBytes) {
      beginLongLine(staging + start, chunk, found);
    } else {
      memory.copy(segBuf + bufUsed, staging + start, chunk);
      bufUsed += chunk;
      partialLen += chunk;
      if (found) {
        store<u8>(segBuf + bufUsed, NL);
        bufUsed += 1;
        addLine(true);
      }
    }
    start = nl + 1;
  }
}

export function finish(): void {
  if (!inLongLine && partialLen > 0) addLine(false);
  inLongLine = false;
  processSegment(true);
  flushRange();
  if (jsonMode) {
    writeAscii('],"inputLines":');
    writeDecimal(totalLines);
    writeAscii(',"outputLines":');
    writeDecimal(outputLines);
    writeAscii('}\n');
  }
  flushOut();
}

function beginLongLine(rest: usize, restLen: u32, complete: bool): void {
  // flush everything held; that moves the partial line (which follows the held lines) to
  // the front of segBuf, from where it streams out ahead of the rest of the long line
  processSegment(true);
  flushRange();
  totalLines++;
  segmentBase = totalLines;
  outputLines++;
  if (!jsonMode) {
    writeBytes(segBuf, partialLen);
    writeBytes(rest, restLen);
    if (complete) writeByte(NL);
  }
  bufUsed = 0;
  partialLen = 0;
  if (!complete) inLongLine = true;
}

/** The partial line, ending at bufUsed (with its '\n' when `newline`), becomes a held line. */
function addLine(newline: bool): void {
  let len = partialLen;
  if (lineCount > 0 &&
      (segmentByteCount + <u64>len + 1 > <u64>segmentBytes || lineCount + 1 > segmentLines)) {
    processSegment(false);
  }
  const off = bufUsed - len - (newline ? 1 : 0);
  let keyLen = len;
  if (keyLen > 0 && load<u8>(segBuf + off + keyLen - 1) == CR) keyLen--;
  const rec = lineTab + <usize>lineCount * LINE_REC;
  store<u32>(rec, off);
  store<u32>(rec, len, 4);
  store<u64>(rec, lineKey(segBuf + off, keyLen), 8);
  store<u32>(rec, newline ? 1 : 0, 16);
  store<u32>(rec, keyIsPop ? 1 : 0, 20);
  lineCount++;
  segmentByteCount += <u64>len + 1;
  totalLines++;
  partialLen = 0;
}

// ---- items and sequences -----------------------------------------------------------------------
// item record (ITEM_BYTES = 40): key u64 @0, weight u32 @8, kind u32 @12 (0 line, 1 run, 2 reference),
//   line: first u32 @16, last u32 @20, tailSeq u32 @24 (0: none), pop u32 @28;
//   run: reps u32 @16, iterWeight u32 @20, firstSeq u32 @24, lastSeq u32 @28, iterKey u64 @32
//        (equal for runs of the same iteration whatever their repeat counts);
//   reference: target unit u32 @16, count u32 @20, covered units seq u32 @24
// sequence: length u32 @0, then item pointers u32

const ITEM_BYTES: usize = 40;

@inline function itemKey(it: usize): u64 { return load<u64>(it); }
@inline function itemWeight(it: usize): u32 { return load<u32>(it, 8); }
@inline function itemIsRun(it: usize): bool { return load<u32>(it, 12) == 1; }
@inline function itemKind(it: usize): u32 { return load<u32>(it, 12); }
@inline function seqLen(seq: usize): u32 { return load<u32>(seq); }
@inline function seqAt(seq: usize, i: u32): usize { return <usize>load<u32>(seq + 4 + (<usize>i << 2)); }
@inline function seqSet(seq: usize, i: u32, it: usize): void { store<u32>(seq + 4 + (<usize>i << 2), <u32>it); }

function newSeq(capacity: u32): usize {
  const seq = arenaAlloc(4 + (<usize>capacity << 2));
  store<u32>(seq, 0);
  return seq;
}

function newLineItem(first: u32, key: u64, weight: u32, pop: u32): usize {
  const it = arenaAlloc(ITEM_BYTES);
  store<u64>(it, key);
  store<u32>(it, weight, 8);
  store<u32>(it, 0, 12);
  store<u32>(it, first, 16);
  store<u32>(it, first, 20);
  store<u32>(it, 0, 24);
  store<u32>(it, pop, 28);
  return it;
}

function buildItems(): usize {
  const seq = newSeq(lineCount);
  let n: u32 = 0;
  let last: usize = 0;
  for (let i: u32 = 0; i < lineCount; i++) {
    const key = lineKeyOf(i);
    if (key != 0) {
      last = newLineItem(i, key, 1, linePop(i));
      seqSet(seq, n++, last);
    } else if (n == 0) {
      last = newLineItem(i, 0, 0, 0);
      seqSet(seq, n++, last);
    } else {
      store<u32>(last, i, 20);
    }
  }
  store<u32>(seq, n);
  for (let k: u32 = 0; k < n; k++) collapseTail(seqAt(seq, k));
  return seq;
}

/** Lays the item's bookkeeping lines out as items of their own (by chain key) and searches them for repeats. */
function collapseTail(item: usize): void {
  const first = load<u32>(item, 16);
  const last = load<u32>(item, 20);
  const from = itemKey(item) != 0 ? first + 1 : first;
  if (last + 1 - from < minPeriodLines) return;
  let tail = newSeq(last + 1 - from);
  let n: u32 = 0;
  let prev: usize = 0;
  for (let i = from; i <= last; i++) {
    let keyLen = lineLen(i);
    const p = segBuf + <usize>lineOff(i);
    if (keyLen > 0 && load<u8>(p + keyLen - 1) == CR) keyLen--;
    const key = chainKey(p, keyLen);
    if (key != 0) {
      prev = newLineItem(i, key, 1, 0);
      seqSet(tail, n++, prev);
    } else if (n == 0) {
      prev = newLineItem(i, 0, 0, 0);
      seqSet(tail, n++, prev);
    } else {
      store<u32>(prev, i, 20);
    }
  }
  store<u32>(tail, n);
  if (<u64>n >= <u64>minPeriodLines * <u64>minRepetitions) tail = repeatPasses(tail, maxDepth);
  collapseBodies(tail, 1);
  store<u32>(item, <u32>tail, 24);
}

function firstLineOf(it: usize): u32 {
  while (itemKind(it) != 0) it = seqAt(<usize>load<u32>(it, 24), 0);
  return load<u32>(it, 16);
}

function lastLineOf(it: usize): u32 {
  while (itemKind(it) != 0) {
    const seq = <usize>load<u32>(it + (itemIsRun(it) ? 28 : 24));
    it = seqAt(seq, seqLen(seq) - 1);
  }
  return load<u32>(it, 20);
}

// ---- the greedy pass ----------------------------------------------------------------------------

let passConsumed: u32 = 0;
// per-pass scratch regions, sized at init for the largest sequence (segmentLines items)
let scratchKeys: usize = 0;
let scratchNext: usize = 0;
let scratchWeight: usize = 0;
let scratchTable: usize = 0;
let scratchPrinted: usize = 0; // u8 per unit of the reference pass
let unitLines: usize = 0; // per unit: first and last output line (u64 each)

function tableSize(n: u32): u32 {
  let size: u32 = 16;
  while (size < n * 2) size <<= 1;
  return size;
}

// per-pass scratch (valid during one greedyPass)
let pKeys: usize = 0;
let pNext: usize = 0;
let pWeight: usize = 0;
let pN: u32 = 0;

@inline function keyAt(i: u32): u64 { return load<u64>(pKeys + (<usize>i << 3)); }
@inline function same(i: u32, j: u32): bool {
  const k = keyAt(i);
  return k != 0 && k == keyAt(j);
}
@inline function weightBefore(i: u32): u32 { return load<u32>(pWeight + (<usize>i << 2)); }

function matchesThrough(p: u32, start: u32, need: u32): bool {
  const slot = <usize>p << 2;
  let from: i32 = load<i32>(memoFrom + slot);
  let to: i32 = load<i32>(memoTo + slot);
  if (load<u32>(memoStamp + slot) != passStamp || <i32>start < from || <i32>start > to) {
    from = <i32>start;
    to = <i32>start;
  }
  let t = <u32>to;
  while (t < need && t < pN && same(t, t - p)) t++;
  store<u32>(memoStamp + slot, passStamp);
  store<i32>(memoFrom + slot, from);
  store<i32>(memoTo + slot, <i32>t);
  return t >= need;
}

function findPeriod(s: u32): u32 {
  if (keyAt(s) == 0) return 0;
  let tried: u32 = 0;
  let j = load<i32>(pNext + (<usize>s << 2));
  while (j >= 0) {
    const p = <u32>j - s;
    if (p > maxPeriodItems) break;
    if (weightBefore(<u32>j) - weightBefore(s) >= minPeriodLines) {
      if (tried == candidatesPerStart) break;
      tried++;
      const need = <u64>s + <u64>minRepetitions * <u64>p;
      if (need <= <u64>pN && matchesThrough(p, s + p, <u32>need)) return p;
    }
    j = load<i32>(pNext + (<usize>j << 2));
  }
  return 0;
}

/** The smallest divisor d of p such that items [s, m) repeat with period d. */
function shortestPeriod(s: u32, m: u32, p: u32): u32 {
  for (let d: u32 = 1; d < p; d++) {
    if (p % d != 0) continue;
    let i = s + d;
    while (i < m && same(i, i - d)) i++;
    if (i >= m) return d;
  }
  return p;
}

function sliceSeq(seq: usize, from: u32, count: u32): usize {
  const out = newSeq(count);
  memory.copy(out + 4, seq + 4 + (<usize>from << 2), <usize>count << 2);
  store<u32>(out, count);
  return out;
}

/** One greedy pass over `seq`, deciding starts below `limit`; sets passConsumed. */
function greedyPass(seq: usize, limit: u32): usize {
  const n = seqLen(seq);
  const out = newSeq(n);
  passStamp++;
  pN = n;
  pKeys = scratchKeys;
  pNext = scratchNext;
  pWeight = scratchWeight;
  let w: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const it = seqAt(seq, i);
    store<u64>(pKeys + (<usize>i << 3), itemKey(it));
    store<u32>(pWeight + (<usize>i << 2), w);
    w += itemWeight(it);
  }
  store<u32>(pWeight + (<usize>n << 2), w);
  // next occurrence of each key, through an open-addressing table (key u64, index i32)
  const size = tableSize(n);
  const table = scratchTable;
  memory.fill(table, 0, <usize>size * 16);
  const mask = size - 1;
  for (let i = <i32>n - 1; i >= 0; i--) {
    const k = keyAt(<u32>i);
    let nextIdx: i32 = -1;
    if (k != 0) {
      let slot = <u32>(k ^ (k >> 32)) & mask;
      while (true) {
        const e = table + (<usize>slot << 4);
        const ek = load<u64>(e);
        if (ek == 0) {
          store<u64>(e, k);
          store<i32>(e, i, 8);
          break;
        }
        if (ek == k) {
          nextIdx = load<i32>(e, 8);
          store<i32>(e, i, 8);
          break;
        }
        slot = (slot + 1) & mask;
      }
    }
    store<i32>(pNext + (<usize>i << 2), nextIdx);
  }

  let outN: u32 = 0;
  let s: u32 = 0;
  while (s < limit) {
    let p = findPeriod(s);
    if (p == 0) {
      seqSet(out, outN++, seqAt(seq, s));
      s++;
      continue;
    }
    let m = s + minRepetitions * p;
    while (m < n && same(m, m - p)) m++;
    p = shortestPeriod(s, m, p);
    const reps = (m - s) / p;
    seqSet(out, outN++, makeRun(seq, s, p, reps));
    s += reps * p;
  }
  store<u32>(out, outN);
  passConsumed = s;
  return out;
}

function makeRun(seq: usize, s: u32, p: u32, reps: u32): usize {
  let h: u64 = fmix(<u64>reps * K1 + 0x52554e);
  let g: u64 = 0x50455249; // the iteration alone
  for (let i: u32 = 0; i < p; i++) {
    const k = keyAt(s + i);
    h = (h ^ k) * K2;
    h = rotl<u64>(h, 31);
    g = (g ^ k) * K1;
    g = rotl<u64>(g, 27);
  }
  h = fmix(h ^ <u64>p);
  if (h == 0) h = 1;
  g = fmix(g ^ <u64>p);
  const iterWeight = weightBefore(s + p) - weightBefore(s);
  const it = arenaAlloc(ITEM_BYTES);
  store<u64>(it, h);
  store<u32>(it, reps * iterWeight, 8);
  store<u32>(it, 1, 12);
  store<u32>(it, reps, 16);
  store<u32>(it, iterWeight, 20);
  store<u32>(it, <u32>sliceSeq(seq, s, p), 24);
  store<u32>(it, <u32>sliceSeq(seq, s + (reps - 1) * p, p), 28);
  store<u64>(it, g, 32);
  return it;
}

function repeatPasses(seq: usize, passes: u32): usize {
  let current = seq;
  for (let pass: u32 = 0; pass < passes; pass++) {
    const out = greedyPass(current, seqLen(current));
    if (seqLen(out) == seqLen(current)) break;
    current = out;
  }
  return current;
}

function collapseBodies(seq: usize, depth: u32): void {
  if (depth >= maxDepth) return;
  const n = seqLen(seq);
  for (let i: u32 = 0; i < n; i++) {
    const it = seqAt(seq, i);
    if (!itemIsRun(it)) continue;
    const first = repeatPasses(<usize>load<u32>(it, 24), maxDepth);
    store<u32>(it, <u32>first, 24);
    collapseBodies(first, depth + 1);
    const last = repeatPasses(<usize>load<u32>(it, 28), maxDepth);
    store<u32>(it, <u32>last, 28);
    collapseBodies(last, depth + 1);
  }
}

// ---- branch re-walks: references to earlier output ------------------------------------------

let units: usize = 0; // the flattened top sequence of the segment being rendered
/** A reference right after another (the same marker) needs only this many keyed lines. */
const JOINED_REFERENCE_LINES: u32 = 2;

/** The top sequence with every laid-out run of bookkeeping as units of its own. */
function flatten(seq: usize): usize {
  const n = seqLen(seq);
  let total: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const it = seqAt(seq, i);
    const tail = itemKind(it) == 0 ? <usize>load<u32>(it, 24) : 0;
    total += tail == 0 ? 1 : seqLen(tail) + 1;
  }
  const out = newSeq(total);
  let k: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const it = seqAt(seq, i);
    const tail = itemKind(it) == 0 ? <usize>load<u32>(it, 24) : 0;
    if (tail == 0) {
      seqSet(out, k++, it);
      continue;
    }
    if (itemKey(it) != 0) {
      const head = newLineItem(load<u32>(it, 16), itemKey(it), itemWeight(it), load<u32>(it, 28));
      seqSet(out, k++, head);
    }
    const tn = seqLen(tail);
    for (let j: u32 = 0; j < tn; j++) seqSet(out, k++, seqAt(tail, j));
  }
  store<u32>(out, k);
  return out;
}

/** After the segment's first branch pop, the longest stretch of units equal to printed earlier units
 * (at least minReferenceLines keyed lines) becomes a reference item (docs/collapse.md). */
function referencePass(seq: usize): usize {
  const n = seqLen(seq);
  const keys = scratchKeys;
  const prev = scratchNext;
  const printed = scratchPrinted;
  for (let i: u32 = 0; i < n; i++) store<u64>(keys + (<usize>i << 3), itemKey(seqAt(seq, i)));
  const size = tableSize(n);
  const table = scratchTable;
  memory.fill(table, 0, <usize>size * 16);
  memory.fill(printed, 0, <usize>n);
  const mask = size - 1;
  for (let i: u32 = 0; i < n; i++) {
    const k = load<u64>(keys + (<usize>i << 3));
    let prevIdx: i32 = -1;
    if (k != 0) {
      let slot = <u32>(k ^ (k >> 32)) & mask;
      while (true) {
        const e = table + (<usize>slot << 4);
        const ek = load<u64>(e);
        if (ek == 0) {
          store<u64>(e, k);
          store<i32>(e, <i32>i, 8);
          break;
        }
        if (ek == k) {
          prevIdx = load<i32>(e, 8);
          store<i32>(e, <i32>i, 8);
          break;
        }
        slot = (slot + 1) & mask;
      }
    }
    store<i32>(prev + (<usize>i << 2), prevIdx);
  }
  const out = newSeq(n);
  let outN: u32 = 0;
  let s: u32 = 0;
  let rewalk = false;
  let lastWasReference = false;
  while (s < n) {
    const it = seqAt(seq, s);
    const key = load<u64>(keys + (<usize>s << 3));
    let bestLen: u32 = 0;
    let bestWeight: u32 = 0;
    let bestTarget: u32 = 0;
    if (rewalk && key != 0) {
      let tried: u32 = 0;
      let j = load<i32>(prev + (<usize>s << 2));
      while (j >= 0 && tried < candidatesPerStart) {
        tried++;
        const ju = <u32>j;
        let len: u32 = 0;
        let weight: u32 = 0;
        while (ju + len < s && s + len < n && load<u8>(printed + ju + len) != 0) {
          const kj = load<u64>(keys + (<usize>(ju + len) << 3));
          if (kj == 0 || kj != load<u64>(keys + (<usize>(s + len) << 3))) break;
          weight += itemWeight(seqAt(seq, s + len));
          len++;
        }
        if (weight > bestWeight) {
          bestLen = len;
          bestWeight = weight;
          bestTarget = ju;
        }
        j = load<i32>(prev + (<usize>j << 2));
      }
    }
    const need = lastWasReference && JOINED_REFERENCE_LINES < minReferenceLines ? JOINED_REFERENCE_LINES : minReferenceLines;
    lastWasReference = false;
    if (bestWeight >= need) {
      lastWasReference = true;
      const ref = arenaAlloc(ITEM_BYTES);
      store<u64>(ref, 0);
      store<u32>(ref, bestWeight, 8);
      store<u32>(ref, 2, 12);
      store<u32>(ref, bestTarget, 16);
      store<u32>(ref, bestLen, 20);
      store<u32>(ref, <u32>sliceSeq(seq, s, bestLen), 24);
      store<u32>(ref, 0, 28);
      seqSet(out, outN++, ref);
      s += bestLen;
    } else {
      store<u8>(printed + s, 1);
      if (itemKind(it) == 0 && load<u32>(it, 28) != 0) rewalk = true;
      seqSet(out, outN++, it);
      s++;
    }
  }
  store<u32>(out, outN);
  return out;
}

// ---- one segment ------------------------------------------------------------------------------------

function processSegment(eof: bool): void {
  if (lineCount == 0) return;
  arenaTop = arenaBase;
  const items = buildItems();
  const n = seqLen(items);
  let limit = n;
  if (!eof) {
    const span = <u64>minRepetitions * <u64>maxPeriodItems;
    if (<u64>n > span) {
      const lookahead = <u32>(<u64>n - span);
      const from = load<u32>(seqAt(items, lookahead), 16);
      let carryBytes: u64 = 0;
      for (let i = from; i < lineCount; i++) carryBytes += <u64>lineLen(i) + 1;
      const carryLines = lineCount - from;
      if (carryBytes <= <u64>(segmentBytes >> 1) && carryLines <= (segmentLines >> 1)) limit = lookahead;
    }
  }
  let top = greedyPass(items, limit);
  const consumed = passConsumed;
  if (seqLen(top) < consumed) top = repeatPasses(top, maxDepth - 1);
  collapseBodies(top, 1);
  units = flatten(top);
  top = referencePass(units);
  renderUnits(top);
  flushRange();

  // carry the undecided tail (and the bytes after it: a line being added) to the front
  const carryFrom = consumed < n ? load<u32>(seqAt(items, consumed), 16) : lineCount;
  const shift: u32 = carryFrom < lineCount ? lineOff(carryFrom) : (carryFrom > 0 ? <u32>(lineEnd(carryFrom - 1) - segBuf) : 0);
  if (shift > 0) {
    memory.copy(segBuf, segBuf + shift, bufUsed - shift);
    bufUsed -= shift;
  }
  let bytes: u64 = 0;
  const carried = lineCount - carryFrom;
  for (let i: u32 = 0; i < carried; i++) {
    const src = lineTab + <usize>(carryFrom + i) * LINE_REC;
    const dst = lineTab + <usize>i * LINE_REC;
    memory.copy(dst, src, LINE_REC);
    store<u32>(dst, load<u32>(dst) - shift);
    bytes += <u64>load<u32>(dst, 4) + 1;
  }
  lineCount = carried;
  segmentByteCount = bytes;
  segmentBase += carryFrom;
  arenaTop = arenaBase;
}

// ---- rendering ---------------------------------------------------------------------------------------

const MAX_MARKER_RANGES: u32 = 8;
const pendingRanges = memory.data(<i32>(MAX_MARKER_RANGES * 16));
let pendingCount: u32 = 0;
let pendingWeight: u32 = 0;

function flushReferences(): void {
  if (pendingCount == 0) return;
  outputLines++;
  if (!jsonMode) {
    writeMarkerStart();
    writeAscii('--- same ');
    writeDecimal(pendingWeight);
    writeAscii(pendingWeight == 1 ? ' line as output lines ' : ' lines as output lines ');
    for (let i: u32 = 0; i < pendingCount; i++) {
      if (i > 0) writeAscii(', ');
      writeDecimal(load<u64>(pendingRanges + (<usize>i << 4)));
      writeByte(45);
      writeDecimal(load<u64>(pendingRanges + (<usize>i << 4), 8));
    }
    writeAscii(' ---\n');
  }
  pendingCount = 0;
  pendingWeight = 0;
}

function addReference(weight: u32, first: u64, last: u64): void {
  if (pendingCount == MAX_MARKER_RANGES) flushReferences();
  store<u64>(pendingRanges + (<usize>pendingCount << 4), first);
  store<u64>(pendingRanges + (<usize>pendingCount << 4), last, 8);
  pendingCount++;
  pendingWeight += weight;
}

// first iterations of printed top-level runs, by iteration key: key u64, first line u64, last line u64
let bodyTable: usize = 0;
let bodyMask: u32 = 0;

/** The slot of `key` in the body table (its key is 0 when the key is not there). */
function bodySlot(key: u64): usize {
  let slot = <u32>(key ^ (key >> 32)) & bodyMask;
  while (true) {
    const e = bodyTable + <usize>slot * 24;
    const ek = load<u64>(e);
    if (ek == 0 || ek == key) return e;
    slot = (slot + 1) & bodyMask;
  }
}

/** Prints the segment's units (see renderUnits in src/collapse/oracle.ts). */
function renderUnits(top: usize): void {
  const count = seqLen(top);
  const size = tableSize(count);
  bodyTable = arenaAlloc(<usize>size * 24);
  memory.fill(bodyTable, 0, <usize>size * 24);
  bodyMask = size - 1;
  let unit: u32 = 0;
  let rewalk = false;
  pendingCount = 0;
  pendingWeight = 0;
  for (let i: u32 = 0; i < count; i++) {
    const it = seqAt(top, i);
    const kind = itemKind(it);
    if (kind == 2) {
      const target = load<u32>(it, 16);
      const n = load<u32>(it, 20);
      const first = load<u64>(unitLines + (<usize>target << 4));
      const last = load<u64>(unitLines + (<usize>(target + n - 1) << 4), 8);
      if (jsonMode) referenceJson(it);
      addReference(load<u32>(it, 8), first, last);
      unit += n;
      continue;
    }
    flushReferences();
    const start = outputLines + 1;
    if (kind == 1) {
      if (jsonMode) {
        if (jsonBlocks++ > 0) writeByte(44);
        blockJson(it);
      }
      const e = bodySlot(load<u64>(it, 32));
      if (rewalk && load<u64>(e) != 0) {
        renderRun(it, true, load<u64>(e, 8), load<u64>(e, 16));
      } else {
        renderRun(it, false, 0, 0);
        if (load<u64>(e) == 0) {
          store<u64>(e, load<u64>(it, 32));
          store<u64>(e, runBodyFirst, 8);
          store<u64>(e, runBodyLast, 16);
        }
      }
    } else {
      renderText(it);
      if (load<u32>(it, 28) != 0) rewalk = true;
    }
    store<u64>(unitLines + (<usize>unit << 4), start);
    store<u64>(unitLines + (<usize>unit << 4), outputLines, 8);
    unit++;
  }
  flushReferences();
}

function referenceJson(ref: usize): void {
  const target = load<u32>(ref, 16);
  const count = load<u32>(ref, 20);
  if (jsonBlocks++ > 0) writeByte(44);
  writeAscii('{"sameAs":{"startLine":');
  writeDecimal(lineNumber(firstLineOf(seqAt(units, target))));
  writeAscii(',"endLine":');
  writeDecimal(lineNumber(lastLineOf(seqAt(units, target + count - 1))));
  writeAscii('},"lines":');
  writeDecimal(load<u32>(ref, 8));
  writeAscii(',"startLine":');
  writeDecimal(lineNumber(firstLineOf(ref)));
  writeAscii(',"endLine":');
  writeDecimal(lineNumber(lastLineOf(ref)));
  writeByte(125);
}

function renderLines(first: u32, last: u32): void {
  outputLines += <u64>(last - first + 1);
  if (!jsonMode) queueRange(segBuf + <usize>lineOff(first), lineEnd(last));
}

/** True when two iterations of plain lines (no runs, no laid-out bookkeeping) are byte for byte the same. */
function sameText(a: usize, b: usize): bool {
  const n = seqLen(a);
  if (seqLen(b) != n) return false;
  for (let k: u32 = 0; k < n; k++) {
    const x = seqAt(a, k);
    const y = seqAt(b, k);
    if (itemKind(x) != 0 || itemKind(y) != 0 || load<u32>(x, 24) != 0 || load<u32>(y, 24) != 0) return false;
    const xf = load<u32>(x, 16);
    const yf = load<u32>(y, 16);
    const count = load<u32>(x, 20) - xf;
    if (load<u32>(y, 20) - yf != count) return false;
    for (let i: u32 = 0; i <= count; i++) {
      const len = lineLen(xf + i);
      if (lineLen(yf + i) != len || lineNl(xf + i) != lineNl(yf + i)) return false;
      if (memory.compare(segBuf + <usize>lineOff(xf + i), segBuf + <usize>lineOff(yf + i), len) != 0) return false;
    }
  }
  return true;
}

function renderText(it: usize): void {
  if (itemKind(it) == 0) {
    const first = load<u32>(it, 16);
    const tail = <usize>load<u32>(it, 24);
    if (tail == 0) {
      renderLines(first, load<u32>(it, 20));
      return;
    }
    if (itemKey(it) != 0) renderLines(first, first);
    const tn = seqLen(tail);
    for (let i: u32 = 0; i < tn; i++) renderText(seqAt(tail, i));
    return;
  }
  renderRun(it, false, 0, 0);
}

// output lines of the first iteration of the run renderRun printed last
let runBodyFirst: u64 = 0;
let runBodyLast: u64 = 0;

/** Prints a run; with `asReference`, its first iteration as a reference to output lines first..last. */
function renderRun(it: usize, asReference: bool, first: u64, last: u64): void {
  const reps = load<u32>(it, 16);
  const iterWeight = load<u32>(it, 20);
  writeHeader(reps, iterWeight);
  const start = outputLines + 1;
  const firstSeq = <usize>load<u32>(it, 24);
  if (asReference) {
    addReference(iterWeight, first, last);
    flushReferences();
  } else {
    const fn = seqLen(firstSeq);
    for (let i: u32 = 0; i < fn; i++) renderText(seqAt(firstSeq, i));
  }
  const bodyFirst = start;
  const bodyLast = outputLines;
  const lastSeq = <usize>load<u32>(it, 28);
  if (sameText(firstSeq, lastSeq)) {
    writeOmitted(reps - 1);
  } else {
    writeOmitted(reps - 2);
    const ln = seqLen(lastSeq);
    for (let i: u32 = 0; i < ln; i++) renderText(seqAt(lastSeq, i));
  }
  writeEnd();
  runBodyFirst = bodyFirst;
  runBodyLast = bodyLast;
}

function lineNumber(index: u32): u64 {
  return segmentBase + <u64>index + 1;
}

/** The runs a sequence shows at its own level: its runs and the runs in its items' laid-out bookkeeping. */
function blocksJson(seq: usize, count: u32): u32 {
  const n = seqLen(seq);
  for (let i: u32 = 0; i < n; i++) {
    const it = seqAt(seq, i);
    if (itemIsRun(it)) {
      if (count++ > 0) writeByte(44);
      blockJson(it);
    } else if (itemKind(it) == 0 && load<u32>(it, 24) != 0) {
      const tail = <usize>load<u32>(it, 24);
      const tn = seqLen(tail);
      for (let j: u32 = 0; j < tn; j++) {
        const t = seqAt(tail, j);
        if (!itemIsRun(t)) continue;
        if (count++ > 0) writeByte(44);
        blockJson(t);
      }
    }
  }
  return count;
}

function iterationJson(seq: usize): void {
  const n = seqLen(seq);
  writeAscii('{"startLine":');
  writeDecimal(lineNumber(firstLineOf(seqAt(seq, 0))));
  writeAscii(',"endLine":');
  writeDecimal(lineNumber(lastLineOf(seqAt(seq, n - 1))));
  writeAscii(',"blocks":[');
  blocksJson(seq, 0);
  writeAscii(']}');
}

function blockJson(it: usize): void {
  writeAscii('{"iterations":');
  writeDecimal(load<u32>(it, 16));
  writeAscii(',"linesPerIteration":');
  writeDecimal(load<u32>(it, 20));
  writeAscii(',"startLine":');
  writeDecimal(lineNumber(firstLineOf(it)));
  writeAscii(',"endLine":');
  writeDecimal(lineNumber(lastLineOf(it)));
  writeAscii(',"first":');
  iterationJson(<usize>load<u32>(it, 24));
  writeAscii(',"last":');
  iterationJson(<usize>load<u32>(it, 28));
  writeByte(125);
}
