// What a verifier log line "means" for cycle detection: its normalised key, or null for
// verifier bookkeeping that never takes part in a comparison. This is the readable
// reference; assembly/collapse.ts implements the same rules over bytes.
//
// Input is one line decoded as latin1 (one char per byte), without '\n' and without a
// trailing '\r'. Keys carry a one-letter tag so that lines of different kinds never compare
// equal:
//   S  source anchor      "; acc += t; @ prog.c:12"            kept whole
//   I  instruction        "38: (85) call bpf_ktime_get_ns#5  ; R0=scalar()"
//                          -> "(85) call bpf_ktime_get_ns#5" (address and state stripped)
//   A  addressed line     "12: safe" -> "safe"
//   F  branch pop         "from 12 to 14: R0=..." -> "" (addresses and state stripped)
//   C  call return        "to caller at 5:" -> ":"
//   V  anything else      kept whole
// null (bookkeeping): blank lines; register/stack state dumps ("2: R6=0 R10=fp0",
// " frame1: R1=0"); backtracking ("mark_precise: ...", "regs=...", "parent ...",
// "propagating ...", "last_idx ..."); "SCC ..." and "(0) ..." liveness notes.
//
// Bookkeeping lines have a second, weaker key of their own (chainKey), used only to find
// repeats inside one item's run of bookkeeping (the verifier's mark_precise backtracking
// chains walk the same instructions once per earlier loop iteration):
//   B  "mark_precise: frame0: regs=r1 stack= before 19: (05) goto pc-16"
//        -> "mark_precise: frame0: regs=r1 stack= before : (05) goto pc-16"
//      any other: register/stack state from the first " R<n>=" / " fp-<n>=" on removed,
//      numbers standing alone ("last_idx 12", "12:", "insn 20") become "#"
//   null: blank lines

const BOOKKEEPING_PREFIXES = [
  'mark_precise:',
  'propagating ',
  'last_idx ',
  "parent didn't have ",
  'parent already had ',
  'regs=',
  'SCC ',
];

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

function isLetter(code: number): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90);
}

function skipDigits(s: string, i: number): number {
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  return i;
}

/** True when `s` at `i` starts a register or stack state dump: R<n>[_x]=, fp-<n>[_x]=, frame<n>:. */
export function startsState(s: string, i: number): boolean {
  if (s.startsWith('frame', i)) {
    const j = skipDigits(s, i + 5);
    return j > i + 5 && s.charCodeAt(j) === 58; // ':'
  }
  let j: number;
  if (s.charCodeAt(i) === 82 /* R */) {
    j = skipDigits(s, i + 1);
    if (j === i + 1) return false;
  } else if (s.startsWith('fp-', i)) {
    j = skipDigits(s, i + 3);
    if (j === i + 3) return false;
  } else {
    return false;
  }
  if (s.charCodeAt(j) === 95 /* _ */) {
    j++;
    while (j < s.length && isLetter(s.charCodeAt(j))) j++;
  }
  return s.charCodeAt(j) === 61; // '='
}

/** "(n) " at the start: the stack-liveness notes of newer verifiers. */
function startsParenNumber(s: string): boolean {
  if (s.charCodeAt(0) !== 40) return false;
  const j = skipDigits(s, 1);
  return j > 1 && s.charCodeAt(j) === 41 && s.charCodeAt(j + 1) === 32;
}

function trimEnd(s: string): string {
  let end = s.length;
  while (end > 0 && isSpace(s.charCodeAt(end - 1))) end--;
  return s.slice(0, end);
}

/** Normalised key of one log line, or null when the line is bookkeeping. */
export function lineKey(line: string): string | null {
  const n = line.length;
  let i = 0;
  while (i < n && isSpace(line.charCodeAt(i))) i++;
  if (i === n) return null;
  if (startsState(line, i)) return null;
  const c0 = line.charCodeAt(0);
  if (c0 === 59 /* ; */) return 'S' + line;
  if (isDigit(c0)) {
    const j = skipDigits(line, 0);
    if (line.charCodeAt(j) === 58 /* : */) {
      let k = j + 1;
      if (line.charCodeAt(k) === 32) k++;
      if (line.charCodeAt(k) === 40 /* ( */) {
        const cut = line.indexOf(' ;', k);
        return 'I' + trimEnd(cut < 0 ? line.slice(k) : line.slice(k, cut));
      }
      if (startsState(line, k)) return null;
      return 'A' + line.slice(k);
    }
  }
  if (line.startsWith('from ')) {
    const a = skipDigits(line, 5);
    if (a > 5 && line.startsWith(' to ', a)) {
      const b = skipDigits(line, a + 4);
      if (b > a + 4) {
        const colon = line.indexOf(':', b);
        return 'F' + (colon < 0 ? line.slice(b) : line.slice(b, colon));
      }
    }
  }
  if (line.startsWith('to caller at ')) {
    const a = skipDigits(line, 13);
    if (a > 13) return 'C' + line.slice(a);
  }
  for (const prefix of BOOKKEEPING_PREFIXES) {
    if (line.startsWith(prefix)) return null;
  }
  if (startsParenNumber(line)) return null;
  return 'V' + line;
}

/** True when `s` at `i` starts a register or stack state (R<n>[_x]=, fp-<n>[_x]=), not frame<n>:. */
function startsRegState(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c === 82 /* R */) return startsState(s, i);
  return c === 102 /* f */ && s.startsWith('fp-', i) && startsState(s, i);
}

/** The chain key of a bookkeeping line (see the header), or null for a blank line. */
export function chainKey(line: string): string | null {
  const n = line.length;
  let i = 0;
  while (i < n && isSpace(line.charCodeAt(i))) i++;
  if (i === n) return null;
  const before = line.indexOf('before ');
  if (before >= 0) {
    const a = before + 7;
    const b = skipDigits(line, a);
    if (b > a && line.charCodeAt(b) === 58 /* : */) return 'B' + line.slice(0, a) + line.slice(b);
  }
  let out = 'B';
  i = 0;
  while (i < n) {
    const atToken = i === 0 || line.charCodeAt(i - 1) === 32;
    if (atToken && startsRegState(line, i)) break;
    if (atToken && isDigit(line.charCodeAt(i))) {
      const j = skipDigits(line, i);
      const c = line.charCodeAt(j);
      if (j === n || c === 32 || c === 58) {
        out += '#';
        i = j;
        continue;
      }
    }
    out += line[i];
    i++;
  }
  return trimEnd(out);
}

/** True when the line is a branch pop ("from 12 to 14: ..."): its key is of kind F. */
export function isBranchPop(key: string | null): boolean {
  return key !== null && key.charCodeAt(0) === 70; // 'F'
}

/** Splits text into lines the way the collapser does ('\n' ends a line; a final '\r' is not part of the key). */
export function splitLogLines(text: string): string[] {
  if (text.length === 0) return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The normalised form of a whole log: the keys of its non-bookkeeping lines. */
export function normaliseLog(text: string): string[] {
  const keys: string[] = [];
  for (const raw of splitLogLines(text)) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const key = lineKey(line);
    if (key !== null) keys.push(key);
  }
  return keys;
}
