// Kernel labels and versions: the cache-directory label a build gets (sanitised so it is a
// safe single path component), the cell form (kernel_6_12_117), version parsing and
// comparison ("6.12", "6.12.117", "6.14-rc3" -> numeric parts).

/** Characters kept in a label; anything else becomes '-'. */
const LABEL_RE = /[^A-Za-z0-9._+-]+/g;
export const MAX_LABEL_LENGTH = 80;

export class LabelError extends Error {}

/**
 * A label safe as one directory name: runs of other characters become '-', leading dots and
 * dashes go, at most 80 characters. Throws LabelError when nothing usable is left.
 */
export function sanitizeLabel(raw: string): string {
  let s = raw.trim().replace(LABEL_RE, '-').replace(/-{2,}/g, '-');
  s = s.replace(/^[.-]+/, '').replace(/[.-]+$/, '');
  if (s.length > MAX_LABEL_LENGTH) s = s.slice(0, MAX_LABEL_LENGTH).replace(/[.-]+$/, '');
  if (s === '' || s === '.' || s === '..') throw new LabelError(`'${raw}' does not make a usable kernel label`);
  return s;
}

/** True when `s` is already a sanitised label. */
export function isSanitizedLabel(s: string): boolean {
  try {
    return sanitizeLabel(s) === s;
  } catch {
    return false;
  }
}

/** The identifier form used in test-cell names: kernel_6_12_117_sched_ext. */
export function kernelCellName(label: string): string {
  return 'kernel_' + label.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

/** A kernel version: numeric parts ("6.12.117" -> [6, 12, 117]). */
export type Version = number[];

/** Parses "6.12", "6.12.117", "v6.14-rc3" (-> [6, 14]); undefined when it is not a version. */
export function parseVersion(s: string): Version | undefined {
  const m = /^v?(\d{1,4})\.(\d{1,4})(?:\.(\d{1,6}))?(?:[-+~][A-Za-z0-9._+~-]*)?$/.exec(s.trim());
  if (!m) return undefined;
  const v = [Number(m[1]), Number(m[2])];
  if (m[3] !== undefined) v.push(Number(m[3]));
  return v;
}

/** The version a label starts with ("6.12.117-sched_ext" -> [6, 12, 117]). */
export function versionOfLabel(label: string): Version | undefined {
  const m = /^v?(\d{1,4}\.\d{1,4}(?:\.\d{1,6})?)(?=$|[^0-9.])/.exec(label);
  return m ? parseVersion(m[1]) : undefined;
}

export function formatVersion(v: Version): string {
  return v.join('.');
}

/** Compares numerically, missing parts count as 0 (6.12 == 6.12.0). */
export function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** True when `prefix` names `v` or a release of it: 6.12 matches 6.12.117; 6.12.1 does not match 6.12.117. */
export function versionHasPrefix(v: Version, prefix: Version): boolean {
  if (prefix.length > v.length) return false;
  return prefix.every((p, i) => p === v[i]);
}
