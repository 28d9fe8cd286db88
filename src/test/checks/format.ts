// How the checks write numbers, CPU sets and guest text in failure lines: measured durations
// with three significant digits (`3.41 s`, `12.0 ms`), thresholds as written (`2 s`,
// `500 µs`), percentages, CPU sets as ranges (`0-3,6`), and guest strings made one short,
// printable line.

import { cpuList } from '../../vmm/topology/index.js';
import { oneLine } from '../../sweep/report.js';

const sig3 = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** A measured duration, ns -> `3.41 s`, `12.0 ms`, `850 µs`, `120 ns`. */
export function fmtDuration(ns: number): string {
  if (!Number.isFinite(ns)) return String(ns);
  const a = Math.abs(ns);
  if (a >= 999.5e6) return `${sig3(ns / 1e9)} s`;
  if (a >= 999.5e3) return `${sig3(ns / 1e6)} ms`;
  if (a >= 999.5) return `${sig3(ns / 1e3)} µs`;
  return `${Math.round(ns)} ns`;
}

/** A number as short as it is exact to 6 digits: 2, 1.5, 0.05. */
export function trimNum(x: number): string {
  return String(Number(x.toPrecision(6)));
}

/** A threshold in ms as written: 2000 -> `2 s`, 500 -> `500 ms`, 0.5 -> `500 µs`. */
export function fmtLimitMs(ms: number): string {
  if (ms >= 1000) return `${trimNum(ms / 1000)} s`;
  if (ms >= 1 || ms === 0) return `${trimNum(ms)} ms`;
  return `${trimNum(ms * 1000)} µs`;
}

/** A measured percentage: `23.4%`. */
export const fmtPct = (pct: number): string => `${pct.toFixed(1)}%`;
/** A threshold percentage: `15%`. */
export const fmtLimitPct = (pct: number): string => `${trimNum(pct)}%`;

/** A value, rate or ratio: integers as they are, else integers from 100 up, else three significant digits. */
export function fmtNum(x: number): string {
  if (!Number.isFinite(x) || Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

/** A fraction with two significant digits: 0.04, 0.0042, 0.5. */
export const fmtFraction = (x: number): string => (Number.isFinite(x) ? String(Number(x.toPrecision(2))) : String(x));

/** Seconds since the start, one decimal: `5.2s`. */
export const fmtAt = (ns: number): string => `${(ns / 1e9).toFixed(1)}s`;

/** A CPU set as ranges: [0,1,2,3,6] -> `0-3,6`; empty -> `none`. */
export function cpuRanges(cpus: Iterable<number>): string {
  return cpuList(cpus) || 'none';
}

/** Guest text on one printable line, at most `max` characters (an ellipsis marks a cut). */
export function guestText(s: string, max = 200): string {
  const t = oneLine(s);
  return t.length <= max ? t : `${t.slice(0, max - 1)}…`;
}
