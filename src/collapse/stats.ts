// The verifier's own summary, parsed from a log: a streaming line scanner (`StatsScanner`)
// and formatters for `ktstr-wasm collapse --stats`.
//
// The kernel ends every program's log with (log level 4 adds the first two lines):
//   verification time 1846 usec
//   stack depth 8+0                 one depth per subprogram, '+'-separated
//   processed 484 insns (limit 1000000) max_states_per_insn 4 total_states 9 peak_states 9 mark_read 0
// Several programs' logs may be concatenated: each `processed ...` line closes one summary,
// taking the `verification time` / `stack depth` lines seen since the previous one. Fields a
// kernel does not print (older kernels, level-1 logs) are null. Kernels before 5.2 print
// `processed 42 insns (limit 131072), stack depth 8` on one line; that depth is used too.

export interface ProgramStats {
  /** 1-based position of this program's summary in the input. */
  index: number;
  /** 1-based input line number of the `processed ...` line. */
  line: number;
  processedInsns: number;
  insnLimit: number | null;
  maxStatesPerInsn: number | null;
  totalStates: number | null;
  peakStates: number | null;
  markRead: number | null;
  /** Stack depth per subprogram, in the kernel's order (`stack depth 8+0` -> [8, 0]). */
  stackDepth: number[] | null;
  verificationTimeUsec: number | null;
}

/** Lines longer than this cannot be a summary line; they are skipped without being held. */
const MAX_SUMMARY_LINE = 4096;
const NEWLINE = 10;

const PROCESSED_RE = /^processed (\d+) insns\b(.*)$/;
const LIMIT_RE = /\(limit (\d+)\)/;
const FIELD_RE = /\b(max_states_per_insn|total_states|peak_states|mark_read) (\d+)\b/g;
const TIME_RE = /^verification time (\d+) usec$/;
const STACK_RE = /^stack depth (\d+(?:\+\d+)*)$/;
const INLINE_STACK_RE = /, stack depth (\d+(?:\+\d+)*)/;

/** Scans a log in chunks of any size; collects one ProgramStats per `processed ...` line. */
export class StatsScanner {
  readonly programs: ProgramStats[] = [];
  private partial = '';
  private skipping = false; // inside an over-long line
  private lineNumber = 0;
  private pendingTime: number | null = null;
  private pendingStack: number[] | null = null;

  /** Feeds the next bytes of the log. Only lines that can be a summary line (their first
   * non-blank byte is 'v', 's' or 'p') are decoded; the rest are just counted. */
  feed(chunk: Uint8Array): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.skipping) {
        if (this.partial.length + (end - start) > MAX_SUMMARY_LINE) {
          this.skipping = true;
          this.partial = '';
        } else if (this.partial.length > 0 || this.maybeSummary(chunk, start, end)) {
          this.partial += latin1(chunk.subarray(start, end));
        } else if (nl < 0) {
          // a line continues in the next chunk: keep it until its start can be judged
          this.partial += latin1(chunk.subarray(start, end));
        }
      }
      if (nl < 0) break;
      this.endLine();
      start = nl + 1;
    }
  }

  /** Whether bytes [start, end) of a whole line can be a summary line. */
  private maybeSummary(chunk: Uint8Array, start: number, end: number): boolean {
    let i = start;
    while (i < end && (chunk[i] === 32 || chunk[i] === 9)) i++;
    const c = chunk[i];
    return i < end && (c === 118 || c === 115 || c === 112); // 'v', 's' or 'p'
  }

  /** Ends the input (a last line without '\n' still counts). Returns all summaries found. */
  finish(): ProgramStats[] {
    if (this.partial.length > 0 || this.skipping) this.endLine();
    return this.programs;
  }

  private endLine(): void {
    this.lineNumber++;
    const line = this.skipping ? null : this.partial;
    this.partial = '';
    this.skipping = false;
    if (line !== null && line.length > 0) this.scanLine(line.trim());
  }

  private scanLine(line: string): void {
    let m = TIME_RE.exec(line);
    if (m) {
      this.pendingTime = Number(m[1]);
      return;
    }
    m = STACK_RE.exec(line);
    if (m) {
      this.pendingStack = depths(m[1]);
      return;
    }
    m = PROCESSED_RE.exec(line);
    if (!m) return;
    const rest = m[2];
    const limit = LIMIT_RE.exec(rest);
    const fields = new Map<string, number>();
    for (const f of rest.matchAll(FIELD_RE)) fields.set(f[1], Number(f[2]));
    const inlineStack = INLINE_STACK_RE.exec(rest);
    this.programs.push({
      index: this.programs.length + 1,
      line: this.lineNumber,
      processedInsns: Number(m[1]),
      insnLimit: limit ? Number(limit[1]) : null,
      maxStatesPerInsn: fields.get('max_states_per_insn') ?? null,
      totalStates: fields.get('total_states') ?? null,
      peakStates: fields.get('peak_states') ?? null,
      markRead: fields.get('mark_read') ?? null,
      stackDepth: inlineStack ? depths(inlineStack[1]) : this.pendingStack,
      verificationTimeUsec: this.pendingTime,
    });
    this.pendingTime = null;
    this.pendingStack = null;
  }
}

function depths(text: string): number[] {
  return text.split('+').map(Number);
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

/** Parses a whole log held in memory. */
export function parseStats(log: Uint8Array | string): ProgramStats[] {
  const scanner = new StatsScanner();
  scanner.feed(typeof log === 'string' ? Buffer.from(log, 'latin1') : log);
  return scanner.finish();
}

/** Label styling hook (the CLI passes kleur.bold on a terminal). */
export type Style = (text: string) => string;

const ROWS: Array<[label: string, value: (p: ProgramStats) => string | null]> = [
  ['processed insns', (p) => String(p.processedInsns)],
  ['insn limit', (p) => num(p.insnLimit)],
  ['total_states', (p) => num(p.totalStates)],
  ['peak_states', (p) => num(p.peakStates)],
  ['max_states_per_insn', (p) => num(p.maxStatesPerInsn)],
  ['mark_read', (p) => num(p.markRead)],
  ['stack depth', (p) => (p.stackDepth === null ? null : p.stackDepth.join('+'))],
  ['verification time', (p) => (p.verificationTimeUsec === null ? null : `${p.verificationTimeUsec} usec`)],
];

function num(n: number | null): string | null {
  return n === null ? null : String(n);
}

/** Human-readable summary, one block per program; fields the log lacks print as '-'. */
export function formatStats(programs: readonly ProgramStats[], label: Style = (s) => s): string {
  const width = Math.max(...ROWS.map(([l]) => l.length));
  const blocks = programs.map((p) => {
    const lines = [label(`program ${p.index}`) + ` (summary at line ${p.line})`];
    for (const [name, value] of ROWS) lines.push(`  ${label(name.padEnd(width))}  ${value(p) ?? '-'}`);
    return lines.join('\n') + '\n';
  });
  return blocks.join('\n');
}

/** Machine-readable summary: `{"programs":[...]}` plus a newline. */
export function formatStatsJson(programs: readonly ProgramStats[]): string {
  return JSON.stringify({ programs }) + '\n';
}
