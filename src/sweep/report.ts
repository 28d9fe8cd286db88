// What a person reads of a sweep: the line per finished cell, the live status on a terminal,
// the block of each failed cell, the verified_insns table per scheduler, the pass/fail grid,
// the counts line and the failing combinations. Pure functions of CellResults returning
// text; colour only through the painter passed in.

import { monitorLines, summarizeTimeline } from '../cell/monitor-summary.js';
import { reproLines } from '../cell/repro.js';
import type { CellResult } from '../cell/result.js';

/** The part of kleur the reporters use (tests pass a plain one). */
export interface Painter {
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

export const PLAIN: Painter = { green: (s) => s, red: (s) => s, yellow: (s) => s, dim: (s) => s, bold: (s) => s };

export interface Glyphs {
  pass: string;
  fail: string;
  mixed: string;
}
export const EMOJI: Glyphs = { pass: '✅', fail: '❌', mixed: '🇽' };
export const WORDS: Glyphs = { pass: 'PASS', fail: 'FAIL', mixed: 'MIXED' };

/**
 * Whether the grid and counts use WORDS (PASS / FAIL / MIXED: whole words, greppable, the same
 * width class) instead of emoji: with NO_COLOR set and non-empty, TERM=dumb, or no UTF-8
 * locale — the first non-empty of LC_ALL, LC_CTYPE, LANG (POSIX precedence) must name UTF-8.
 * Only the environment decides, not whether the stream is a TTY: a CI log shows emoji fine.
 */
export function wantsPlainGlyphs(env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return true;
  if (env.TERM === 'dumb') return true;
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return !/utf-?8/i.test(locale);
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

/**
 * Guest text made safe to print on a terminal: CR dropped, other control characters (ESC,
 * backspace, C1 such as CSI) shown as `^[`-style or `\x9b` text so scheduler or console
 * output cannot move the cursor, recolour or clear the screen. Tab and newline are kept.
 */
export function terminalSafe(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\r/g, '').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return `^${String.fromCharCode(code + 64)}`;
    if (code === 0x7f) return '^?';
    return `\\x${code.toString(16)}`;
  });
}

/** One line of guest text: terminal-safe, newlines and tabs folded into single spaces. */
export function oneLine(s: string): string {
  return terminalSafe(s)
    .replace(/\s*[\n\t]\s*/g, ' ')
    .trim();
}

/** `<kind>: <message>` of a failed cell, on one line. */
function failureText(c: CellResult): string {
  return `${c.failure?.kind ?? '?'}: ${oneLine(c.failure?.message ?? '')}`;
}

/**
 * `PASS [  12.4s] (1/4) sweep/scx-ktstr/6.12.117-sched_ext/odd-3llc — ...`: after a pass, the
 * evidence it dispatched (workers' progress, the programs' run count); after a failure, why.
 */
export function progressLine(r: CellResult, done: number, total: number, p: Painter = PLAIN): string {
  const head = r.passed ? p.green('PASS') : p.red('FAIL');
  const width = String(total).length;
  const line = `${head} [${secs(r.wallMs).padStart(7)}] (${String(done).padStart(width)}/${total}) ${r.id}`;
  if (!r.passed) return `${line} — ${failureText(r)}`;
  const evidence = dispatchEvidence(r);
  return evidence === '' ? line : `${line} ${p.dim(`— ${evidence}`)}`;
}

/** "4 CPUs progressed (>= 5767 iterations each); struct_ops programs ran 2174 times, 1.9 us/call". */
export function dispatchEvidence(r: CellResult): string {
  const parts: string[] = [];
  if (r.workers.length > 0)
    parts.push(
      `${r.workers.length} CPUs progressed (>= ${Math.min(...r.workers.map((w) => w.iterations))} iterations each)`,
    );
  const runs = r.programs.reduce((a, p) => a + (p.runCount ?? 0), 0);
  const ns = r.programs.reduce((a, p) => a + (p.runTimeNs ?? 0), 0);
  if (runs > 0) parts.push(`struct_ops programs ran ${runs} times, ${(ns / runs / 1000).toFixed(1)} us/call`);
  return parts.join('; ');
}

/** Per program of a cell: run count and ns per call (for -v). */
export function programRuns(r: CellResult): string {
  return r.programs
    .filter((p) => p.runCount !== null)
    .map(
      (p) => `${p.name} ${p.runCount}x${p.runCount ? ` ${Math.round((p.runTimeNs ?? 0) / p.runCount)} ns/call` : ''}`,
    )
    .join(', ');
}

/** Pads columns to their widest cell, all left-aligned (numbers read fine), two spaces apart; no trailing blanks. */
export function alignColumns(rows: string[][], indent = ' '): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, displayWidth(c));
    });
  return (
    rows
      .map((row) =>
        (
          indent +
          row.map((c, i) => (i === row.length - 1 ? c : c + ' '.repeat(widths[i] - displayWidth(c)))).join('  ')
        ).trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** Terminal width of a string: emoji count as two columns, ANSI escapes as none. */
export function displayWidth(s: string): number {
  // eslint-disable-next-line no-control-regex
  const plain = s.replace(/\u001b\[[0-9;]*m/g, '');
  let w = 0;
  for (const ch of plain) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x1f1e6 && cp <= 0x1f1ff)
      w += 1; // regional indicators: a flag is two of them
    else if (cp >= 0x2600 && cp <= 0x27bf) w += 2;
    else if (cp >= 0x1f300) w += 2;
    else if (cp === 0xfe0f || cp === 0x200d) w += 0;
    else w += 1;
  }
  return w;
}

function ordered<T>(items: T[], key: (t: T) => string, order: string[]): T[] {
  const rank = new Map(order.map((k, i) => [k, i]));
  return [...items].sort((a, b) => (rank.get(key(a)) ?? Infinity) - (rank.get(key(b)) ?? Infinity));
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/**
 * Per scheduler: rows kernel, columns BPF program; a cell is one number when that program's
 * verified_insns is the same on every topology of that kernel, `lo..hi` when it varies, `-`
 * when the program reported none there.
 */
export function verifiedInsnsTables(cells: CellResult[], matrix: string[] = []): string {
  const sorted = ordered(cells, (c) => c.id, matrix);
  const schedulers = unique(sorted.map((c) => c.scheduler));
  const out: string[] = [
    'verified_insns (per scheduler; rows: kernel, columns: BPF program; a range across topologies):\n',
  ];
  for (const s of schedulers) {
    const mine = sorted.filter((c) => c.scheduler === s);
    const programs = unique(mine.flatMap((c) => c.programs.map((p) => p.name))).sort();
    out.push(`${s}:\n`);
    if (programs.length === 0) {
      out.push('  (no program loaded on any kernel)\n');
      continue;
    }
    const rows: string[][] = [['kernel', ...programs]];
    for (const k of unique(mine.map((c) => c.kernel))) {
      const onKernel = mine.filter((c) => c.kernel === k);
      rows.push([
        k,
        ...programs.map((name) => {
          const values = onKernel.flatMap((c) => c.programs.filter((p) => p.name === name).map((p) => p.verifiedInsns));
          if (values.length === 0) return '-';
          const lo = Math.min(...values);
          const hi = Math.max(...values);
          return lo === hi ? String(lo) : `${lo}..${hi}`;
        }),
      ]);
    }
    out.push(alignColumns(rows));
  }
  return out.join('');
}

type Verdict = 'pass' | 'fail' | 'mixed';

/** Per (topology, scheduler): passed on every kernel, failed on every kernel, or mixed. */
function gridVerdicts(cells: CellResult[]): Map<string, Map<string, Verdict>> {
  const grid = new Map<string, Map<string, Verdict>>();
  for (const c of cells) {
    const row = grid.get(c.topology) ?? new Map<string, Verdict>();
    grid.set(c.topology, row);
    const now: Verdict = c.passed ? 'pass' : 'fail';
    const was = row.get(c.scheduler);
    row.set(c.scheduler, was === undefined || was === now ? now : 'mixed');
  }
  return grid;
}

export function summaryCounts(cells: CellResult[], o: { plain?: boolean } = {}): string {
  const g = o.plain ? WORDS : EMOJI;
  const n = { pass: 0, fail: 0, mixed: 0 };
  for (const row of gridVerdicts(cells).values()) for (const v of row.values()) n[v]++;
  return `sweep summary: ${n.pass} ${g.pass}  ${n.fail} ${g.fail}  ${n.mixed} ${g.mixed}  (${cells.length} cell${cells.length === 1 ? '' : 's'}: ${cells.filter((c) => c.passed).length} passed, ${cells.filter((c) => !c.passed).length} failed)\n`;
}

/** Rows topology, columns scheduler. */
export function summaryGrid(cells: CellResult[], o: { plain?: boolean } = {}): string {
  const g = o.plain ? WORDS : EMOJI;
  const grid = gridVerdicts(cells);
  const schedulers = unique(cells.map((c) => c.scheduler));
  const topologies = [...grid.keys()].sort();
  const rows: string[][] = [['topology', ...schedulers]];
  for (const t of topologies)
    rows.push([
      t,
      ...schedulers.map((s) => {
        const v = grid.get(t)!.get(s);
        return v === undefined ? '' : g[v];
      }),
    ]);
  return alignColumns(rows);
}

/** `failing combinations (scheduler / kernel / topology):` and one line per failed cell. */
export function failingCombinations(cells: CellResult[]): string {
  const failed = cells.filter((c) => !c.passed);
  if (failed.length === 0) return '';
  return (
    'failing combinations (scheduler / kernel / topology):\n' +
    failed.map((c) => `  ${c.scheduler} / ${c.kernel} / ${c.topology}: ${failureText(c)}\n`).join('')
  );
}

/**
 * The report of one failed cell, like ktstr's "A real rejection": header, scheduler status,
 * the failure, verifier stats, the loaded programs and the dispatch probe when there are any,
 * the exit message, the scheduler log (collapsed by the caller) and the console tail.
 */
export function failureBlock(c: CellResult, p: Painter = PLAIN): string {
  const out: string[] = [p.bold(`=== ${c.scheduler} | kernel ${c.kernel} | topology ${c.topology} ===`), ''];
  out.push(`  scheduler: ${oneLine(c.schedulerStatus)}`);
  out.push(p.red(`  failed: ${failureText(c)}`));
  if (c.verifier) {
    const v = c.verifier;
    out.push(
      '',
      '--- verifier stats ---',
      `  processed=${v.processedInsns}  states=${v.totalStates ?? '?'}/${v.peakStates ?? '?'}${v.insnLimit !== null ? `  limit=${v.insnLimit}` : ''}`,
    );
  }
  if (c.programs.length > 0) out.push('', '--- programs (verified_insns) ---', `  ${programsSummary(c)}`);
  if (c.workers.length > 0) out.push('', '--- dispatch probe ---', ...workersSummary(c).map((l) => `  ${l}`));
  if (c.exitMessage) out.push('', `  ${oneLine(c.exitMessage)}`);
  if (c.schedulerLog.trim() !== '')
    out.push('', '--- scheduler log ---', terminalSafe(c.schedulerLog).replace(/\n$/, ''));
  if (c.consoleTail.trim() !== '')
    out.push('', '--- guest console (tail) ---', terminalSafe(c.consoleTail).replace(/\n$/, ''));
  if (c.monitor !== undefined && c.monitor.samples.length > 0)
    out.push('', '  monitor:', ...monitorLines(summarizeTimeline(c.monitor)).map((l) => `    ${terminalSafe(l)}`));
  if (c.repro !== undefined) out.push('', ...reproLines(c.repro).map((l) => `  ${terminalSafe(l)}`));
  if (c.bundle !== undefined) out.push('', `  bundle: ${terminalSafe(c.bundle)}`);
  if (c.bundleError !== undefined) out.push('', p.red(`  bundle not written: ${terminalSafe(oneLine(c.bundleError))}`));
  return out.join('\n') + '\n';
}

/** "ktstr_dispatch 23, ktstr_init 140": each loaded program and its verified_insns, by name. */
export function programsSummary(c: CellResult): string {
  return [...c.programs]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((prog) => `${prog.name} ${prog.verifiedInsns}`)
    .join(', ');
}

/**
 * The dispatch probe in a few lines whatever the CPU count: how many workers progressed, the
 * CPUs whose worker did not, and any worker not running under SCHED_EXT (policy 7).
 */
export function workersSummary(c: CellResult): string[] {
  const moved = c.workers.filter((w) => w.iterations > 0);
  const stuck = c.workers.filter((w) => w.iterations === 0);
  const lines = [
    `${c.workers.length} worker${c.workers.length === 1 ? '' : 's'} (one per CPU): ${moved.length} made progress` +
      (moved.length > 0 ? ` (>= ${Math.min(...moved.map((w) => w.iterations))} iterations)` : '') +
      (stuck.length > 0 ? `, ${stuck.length} did not: cpu ${stuck.map((w) => w.cpu).join(', ')}` : ''),
  ];
  const notExt = c.workers.filter((w) => w.policy !== SCHED_EXT);
  if (notExt.length > 0)
    lines.push(`not SCHED_EXT: ${notExt.map((w) => `cpu ${w.cpu} (policy ${w.policy})`).join(', ')}`);
  return lines;
}

/** The scheduling policy number of sched_ext tasks. */
const SCHED_EXT = 7;

/** How the live status draws (every field optional). */
export interface LiveStatusOptions {
  /** No UTF-8 locale: ASCII only ('-' for the dash, '...' for a cut line). */
  plain?: boolean;
  /** Redraws per second at most (default 10); render() calls in between return ''. */
  maxPerSecond?: number;
  /** Terminal width (stream.columns): longer lines are cut, as a wrapped line would break the cursor-up count. */
  columns?: number;
  /** The clock reading the elapsed time counts from (default 0: the caller passes elapsed ms). */
  startMs?: number;
}

/**
 * The live status on a terminal: counts, elapsed, and the cell and phase of each running job.
 * No timers: the caller feeds events and calls `render(now)`, which erases the previous
 * drawing (cursor up, erase down) and draws the current one — at most `maxPerSecond` times a
 * second, else it returns ''. `clear()` erases it before normal lines are printed; `stop()`
 * erases it for good (later renders return '').
 */
export class LiveStatus {
  private readonly running = new Map<string, { job: number; phase: string }>();
  private readonly finished = new Set<string>();
  private failed = 0;
  private drawnLines = 0;
  private lastDrawMs = -Infinity;
  private stopped = false;

  constructor(
    private readonly ids: string[],
    private readonly o: LiveStatusOptions = {},
  ) {}

  cellStarted(id: string, job: number): void {
    if (!this.finished.has(id)) this.running.set(id, { job, phase: 'boot' });
  }

  cellPhase(id: string, phase: string): void {
    const r = this.running.get(id);
    if (r !== undefined && phase !== 'done') r.phase = phase;
  }

  cellFinished(result: CellResult): void {
    this.running.delete(result.id);
    if (this.finished.has(result.id)) return;
    this.finished.add(result.id);
    if (!result.passed) this.failed++;
  }

  /** The status text (no cursor control), for tests and for a one-off print. */
  text(nowMs: number): string {
    const done = this.finished.size;
    const queued = Math.max(0, this.ids.length - done - this.running.size);
    const dash = this.o.plain ? '-' : '—';
    const head =
      `sweep: ${done}/${this.ids.length} done${this.failed > 0 ? ` (${this.failed} failed)` : ''}, ` +
      `${this.running.size} running, ${queued} queued ${dash} ${secs(nowMs - (this.o.startMs ?? 0))}`;
    const jobs = [...this.running.entries()]
      .sort((a, b) => a[1].job - b[1].job)
      .map(([id, r]) => `  [${r.job}] ${id}: ${oneLine(r.phase)}`);
    return [head, ...jobs].map((l) => this.fit(l)).join('\n') + '\n';
  }

  /** Erases the previous drawing and draws the current one; '' when throttled or stopped. */
  render(nowMs: number): string {
    if (this.stopped) return '';
    const minGapMs = 1000 / Math.max(this.o.maxPerSecond ?? 10, 0.001);
    if (nowMs - this.lastDrawMs < minGapMs) return '';
    this.lastDrawMs = nowMs;
    const text = this.text(nowMs);
    const out = this.clear() + text;
    this.drawnLines = text.split('\n').length - 1;
    return out;
  }

  /** Erases what was drawn (ANSI: cursor to the start of the line N up, erase to the end of screen). */
  clear(): string {
    if (this.drawnLines === 0) return '';
    const s = `\u001b[${this.drawnLines}F\u001b[0J`;
    this.drawnLines = 0;
    return s;
  }

  /** Erases what was drawn and draws nothing more. */
  stop(): string {
    this.stopped = true;
    return this.clear();
  }

  /** A line cut to the terminal's width less one column (no terminal wraps it then). */
  private fit(line: string): string {
    const columns = this.o.columns;
    if (columns === undefined || columns < 2 || displayWidth(line) < columns) return line;
    const ellipsis = this.o.plain ? '...' : '…';
    const room = columns - 1 - ellipsis.length;
    let out = '';
    let width = 0;
    for (const ch of line) {
      const w = displayWidth(ch);
      if (width + w > room) break;
      out += ch;
      width += w;
    }
    return out + ellipsis;
  }
}
