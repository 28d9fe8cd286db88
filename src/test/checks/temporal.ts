// temporal: assertions over a series of periodic samples (a scheduler statistic read every
// 100 ms, a BPF map field): each helper returns one CheckVerdict named `temporal` whose
// failure line starts with the series' name. Samples are untrusted: a non-finite value or
// time, times out of order or an oversized series fail the verdict, never throw.

import { fmtLimitPct, fmtNum, fmtPct, guestText, trimNum } from './format.js';
import { Lines, type CheckVerdict } from './verdict.js';

export interface Sample {
  /** ms since the start of the series' clock. */
  atMs: number;
  value: number;
}

/** Longest series accepted. */
export const MAX_SAMPLES = 1_000_000;

const at = (ms: number): string => `t=${(ms / 1000).toFixed(1)}s`;

/** Validates a series; null with a failure line written when unusable. */
function usable(lines: Lines, name: string, series: unknown, what = 'series'): Sample[] | null {
  if (!Array.isArray(series)) {
    lines.fail(`${name}: ${what} is not a list of samples`);
    return null;
  }
  if (series.length > MAX_SAMPLES) {
    lines.fail(`${name}: ${what} has ${series.length} samples (at most ${MAX_SAMPLES})`);
    return null;
  }
  let prev = -Infinity;
  for (let i = 0; i < series.length; i++) {
    const s = series[i] as Partial<Sample> | null;
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.atMs !== 'number' ||
      !Number.isFinite(s.atMs) ||
      typeof s.value !== 'number' ||
      !Number.isFinite(s.value)
    ) {
      lines.fail(`${name}: ${what} sample ${i} is unusable (atMs ${String(s?.atMs)}, value ${String(s?.value)})`);
      return null;
    }
    if (s.atMs < prev) {
      lines.fail(`${name}: ${what} sample ${i} at ${s.atMs} ms is before the one ahead of it (${prev} ms)`);
      return null;
    }
    prev = s.atMs;
  }
  return series as Sample[];
}

function badBound(lines: Lines, name: string, bounds: Record<string, unknown>): boolean {
  for (const [k, v] of Object.entries(bounds)) {
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      lines.fail(`${name}: bound ${k} is ${String(v)}, not a finite number`);
      return true;
    }
  }
  return false;
}

function start(name: string): { lines: Lines; label: string } {
  return { lines: new Lines('temporal'), label: guestText(String(name), 80) };
}

/** Every sample at least the one before it. */
function nondecreasing(name: string, series: Sample[]): CheckVerdict {
  const { lines, label } = start(name);
  const s = usable(lines, label, series);
  if (!s) return lines.verdict({});
  let drops = 0;
  for (let i = 1; i < s.length; i++) {
    if (s[i].value >= s[i - 1].value) continue;
    if (drops === 0)
      lines.fail(
        `${label} decreased from ${fmtNum(s[i - 1].value)} to ${fmtNum(s[i].value)} at ${at(s[i].atMs)} (must not decrease)`,
      );
    drops++;
  }
  if (drops > 1) lines.fail(`${label} decreased ${drops} times in all`);
  return lines.verdict({ samples: s.length, drops }, s.length < 2 ? 'fewer than 2 samples' : null);
}

/** Overall rate, (last - first) / elapsed seconds, within [min, max] per second. */
function rateWithin(name: string, series: Sample[], min: number, max: number): CheckVerdict {
  const { lines, label } = start(name);
  const s = usable(lines, label, series);
  if (!s || badBound(lines, label, { min, max })) return lines.verdict({});
  if (s.length < 2 || s[s.length - 1].atMs === s[0].atMs)
    return lines.verdict({ samples: s.length }, 'fewer than 2 samples apart in time');
  const secs = (s[s.length - 1].atMs - s[0].atMs) / 1000;
  const rate = (s[s.length - 1].value - s[0].value) / secs;
  if (rate < min || rate > max)
    lines.fail(`${label} rate ${fmtNum(rate)}/s over ${trimNum(secs)} s (want ${trimNum(min)} to ${trimNum(max)}/s)`);
  return lines.verdict({ samples: s.length, rate: Number(rate.toPrecision(6)) });
}

/** Coefficient of variation of the values (population) at most maxCvPct. */
function steadyWithin(name: string, series: Sample[], maxCvPct: number): CheckVerdict {
  const { lines, label } = start(name);
  const s = usable(lines, label, series);
  if (!s || badBound(lines, label, { maxCvPct })) return lines.verdict({});
  if (s.length < 2) return lines.verdict({ samples: s.length }, 'fewer than 2 samples');
  const mean = s.reduce((a, x) => a + x.value, 0) / s.length;
  const sd = Math.sqrt(s.reduce((a, x) => a + (x.value - mean) ** 2, 0) / s.length);
  const cv = sd === 0 ? 0 : mean === 0 ? Infinity : (sd / Math.abs(mean)) * 100;
  if (cv > maxCvPct)
    lines.fail(
      `${label} CV ${Number.isFinite(cv) ? fmtPct(cv) : 'unbounded (mean 0)'} over ${s.length} samples, mean ${fmtNum(mean)} (max ${fmtLimitPct(maxCvPct)})`,
    );
  return lines.verdict({ samples: s.length, cvPct: Number.isFinite(cv) ? Number(cv.toFixed(2)) : -1 });
}

/**
 * From `afterMs` on (default: the second half of the series' time span), every value within
 * tolPct of target (relative to |target|; absolute tolPct/100 when target is 0).
 */
function convergesTo(name: string, series: Sample[], target: number, tolPct: number, afterMs?: number): CheckVerdict {
  const { lines, label } = start(name);
  const s = usable(lines, label, series);
  if (!s || badBound(lines, label, { target, tolPct, afterMs })) return lines.verdict({});
  if (s.length === 0) return lines.verdict({ samples: 0 }, 'no samples');
  const from = afterMs ?? (s[0].atMs + s[s.length - 1].atMs) / 2;
  const tol = target === 0 ? tolPct / 100 : (Math.abs(target) * tolPct) / 100;
  const tail = s.filter((x) => x.atMs >= from);
  if (tail.length === 0) {
    lines.fail(`${label} has no samples from ${at(from)} on to show it converges to ${trimNum(target)}`);
    return lines.verdict({ samples: s.length });
  }
  const out = tail.filter((x) => Math.abs(x.value - target) > tol);
  if (out.length > 0) {
    lines.fail(
      `${label} not within ${fmtLimitPct(tolPct)} of ${trimNum(target)} from ${at(from)} on: ${fmtNum(out[0].value)} at ${at(out[0].atMs)} (${out.length} of ${tail.length} samples outside)`,
    );
  }
  return lines.verdict({ samples: s.length, outside: out.length });
}

/** Every value is 1 (true); values must be 0 or 1. */
function alwaysTrue(name: string, series: Sample[]): CheckVerdict {
  const { lines, label } = start(name);
  const s = usable(lines, label, series);
  if (!s) return lines.verdict({});
  const odd = s.find((x) => x.value !== 0 && x.value !== 1);
  if (odd) {
    lines.fail(`${label} has value ${fmtNum(odd.value)} at ${at(odd.atMs)}, not 0 or 1`);
    return lines.verdict({ samples: s.length });
  }
  const falses = s.filter((x) => x.value === 0);
  if (falses.length > 0)
    lines.fail(`${label} false at ${at(falses[0].atMs)} (${falses.length} of ${s.length} samples false)`);
  return lines.verdict({ samples: s.length, falses: falses.length }, s.length === 0 ? 'no samples' : null);
}

/** a/b within [min, max] at every time both series have a sample with b != 0. */
function ratioWithin(name: string, a: Sample[], b: Sample[], min: number, max: number): CheckVerdict {
  const { lines, label } = start(name);
  const sa = usable(lines, label, a, 'series a');
  const sb = usable(lines, label, b, 'series b');
  if (!sa || !sb || badBound(lines, label, { min, max })) return lines.verdict({});
  const bAt = new Map<number, number>();
  for (const x of sb) bAt.set(x.atMs, x.value);
  const ratios: { atMs: number; r: number }[] = [];
  for (const x of sa) {
    const d = bAt.get(x.atMs);
    if (d !== undefined && d !== 0) ratios.push({ atMs: x.atMs, r: x.value / d });
  }
  if (ratios.length === 0) {
    if (sa.length === 0 && sb.length === 0) return lines.verdict({ samples: 0 }, 'no samples');
    lines.fail(`${label}: no times where both series have a sample (and b is not 0)`);
    return lines.verdict({ samples: 0 });
  }
  const out = ratios.filter((x) => x.r < min || x.r > max);
  if (out.length > 0) {
    lines.fail(
      `${label} ratio ${fmtNum(out[0].r)} at ${at(out[0].atMs)} (want ${trimNum(min)} to ${trimNum(max)}; ${out.length} of ${ratios.length} samples outside)`,
    );
  }
  return lines.verdict({ samples: ratios.length, outside: out.length });
}

export const temporal = { nondecreasing, rateWithin, steadyWithin, convergesTo, alwaysTrue, ratioWithin };
