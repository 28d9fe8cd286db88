// Durations in test options and operations: a number of milliseconds, or a string with a
// unit (`500ms`, `2s`, `1.5s`, `1m`).

export type Duration = number | string;

export function toMs(d: Duration, what: string): number {
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw new TypeError(`${what}: bad duration ${String(d)}`);
    return d;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$/.exec(d);
  if (!m) throw new TypeError(`${what}: bad duration "${d}" (e.g. 500ms, 2s, 1m, or a number of ms)`);
  const v = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
  if (!Number.isFinite(v) || v > 24 * 3_600_000) throw new TypeError(`${what}: duration "${d}" too long`);
  return v;
}
