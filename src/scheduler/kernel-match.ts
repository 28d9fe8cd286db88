// Which kernels a scheduler accepts: its `kernels` list holds exact versions ("6.12.117",
// also "6.12" for any 6.12.x), ranges ("6.12..6.14" excludes the upper bound, "6.12..=6.14"
// includes it; bounds are version prefixes, so 6.14.5 is inside ..=6.14 and outside ..6.14),
// or labels/paths (equal after sanitising). An empty list accepts every kernel.

import { compareVersions, parseVersion, sanitizeLabel, versionHasPrefix, type Version } from '../kernel/label.js';

export type KernelSpec =
  | { kind: 'version'; version: Version; text: string }
  | { kind: 'range'; from: Version; to: Version; inclusive: boolean; text: string }
  | { kind: 'label'; label: string; text: string };

export class KernelSpecError extends Error {}

export function parseKernelSpec(text: string): KernelSpec {
  const t = text.trim();
  if (t === '') throw new KernelSpecError('empty kernel spec');
  const range = /^(.+?)\.\.(=?)(.+)$/.exec(t);
  if (range && !t.includes('/')) {
    const from = parseVersion(range[1]);
    const to = parseVersion(range[3]);
    if (from === undefined || to === undefined)
      throw new KernelSpecError(`kernel range '${t}': both ends must be versions (6.14..6.16 or 6.14..=6.16)`);
    if (compareVersions(from, to) > 0)
      throw new KernelSpecError(`kernel range '${t}' is empty: ${range[1]} is above ${range[3]}`);
    return { kind: 'range', from, to, inclusive: range[2] === '=', text: t };
  }
  const version = parseVersion(t);
  if (version !== undefined && /^v?\d+\.\d+(\.\d+)?$/.test(t)) return { kind: 'version', version, text: t };
  try {
    return {
      kind: 'label',
      label: sanitizeLabel(t.includes('/') ? (t.split('/').filter(Boolean).pop() ?? t) : t),
      text: t,
    };
  } catch (e) {
    throw new KernelSpecError(`kernel spec '${t}': ${(e as Error).message}`);
  }
}

/** What a spec is matched against. */
export interface KernelIdentity {
  label: string;
  version?: string;
}

/** Whether `v` lies in the range (bounds compared as prefixes: 6.16.3 is at "6.16"). */
function inRange(v: Version, from: Version, to: Version, inclusive: boolean): boolean {
  const atOrAbove = compareVersions(v, from) >= 0 || versionHasPrefix(v, from);
  if (!atOrAbove) return false;
  if (versionHasPrefix(v, to)) return inclusive;
  return compareVersions(v, to) < 0;
}

export function kernelSpecMatches(spec: KernelSpec, k: KernelIdentity): boolean {
  const v = k.version === undefined ? undefined : parseVersion(k.version);
  switch (spec.kind) {
    case 'version':
      if (k.label === spec.text) return true;
      return v !== undefined && versionHasPrefix(v, spec.version);
    case 'range':
      return v !== undefined && inRange(v, spec.from, spec.to, spec.inclusive);
    case 'label': {
      let label: string;
      try {
        label = sanitizeLabel(k.label);
      } catch {
        return false;
      }
      return label === spec.label;
    }
  }
}

/** True when the list is empty or any spec matches. */
export function kernelAccepted(specs: readonly KernelSpec[], k: KernelIdentity): boolean {
  return specs.length === 0 || specs.some((s) => kernelSpecMatches(s, k));
}
