// Kconfig text: parsing a .config or fragment into option -> value ('y', 'm', '"text"', '123',
// or 'n' for "# CONFIG_X is not set"), merging a fragment onto a base config, and checking
// that a final .config (after `make olddefconfig`) still holds every value the fragment asked
// for. Kconfig silently drops options whose dependencies are unmet; this is how we notice.

import { KtstrError } from '../errors.js';

export type KconfigValues = Map<string, string>;

const SET_RE = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET_RE = /^# (CONFIG_[A-Za-z0-9_]+) is not set\s*$/;

export class KconfigError extends KtstrError {}

/** Parses .config / fragment text. Later lines win. Bad lines throw KconfigError with the line number. */
export function parseKconfig(text: string, what = 'config'): KconfigValues {
  const values: KconfigValues = new Map();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const unset = UNSET_RE.exec(trimmed);
    if (unset) {
      values.set(unset[1], 'n');
      continue;
    }
    if (trimmed.startsWith('#')) continue;
    const set = SET_RE.exec(trimmed);
    if (!set) throw new KconfigError(`${what}:${i + 1}: not a Kconfig line: ${trimmed.slice(0, 80)}`);
    const value = set[2].trim();
    if (value === '') throw new KconfigError(`${what}:${i + 1}: ${set[1]} has no value`);
    if (value.startsWith('"') && !/^"(?:[^"\\]|\\.)*"$/.test(value))
      throw new KconfigError(`${what}:${i + 1}: ${set[1]}: unterminated string`);
    values.set(set[1], value === 'n' ? 'n' : value);
  }
  return values;
}

/** .config text for `values` (the 'n' ones as "# CONFIG_X is not set"). */
export function formatKconfig(values: KconfigValues): string {
  let out = '';
  for (const [name, value] of values) out += value === 'n' ? `# ${name} is not set\n` : `${name}=${value}\n`;
  return out;
}

/**
 * The base with every fragment line applied (fragment wins), as .config text: base lines keep
 * their order, options only the fragment names are appended. Comments of the base are kept.
 */
export function mergeKconfig(baseText: string, fragment: KconfigValues): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of baseText.split('\n')) {
    const t = line.trim();
    const name = UNSET_RE.exec(t)?.[1] ?? SET_RE.exec(t)?.[1];
    if (name !== undefined && fragment.has(name)) {
      seen.add(name);
      const v = fragment.get(name)!;
      out.push(v === 'n' ? `# ${name} is not set` : `${name}=${v}`);
    } else {
      out.push(line);
    }
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  for (const [name, v] of fragment) {
    if (!seen.has(name)) out.push(v === 'n' ? `# ${name} is not set` : `${name}=${v}`);
  }
  return out.join('\n') + '\n';
}

export interface DroppedOption {
  name: string;
  wanted: string;
  /** What the final config has ('n' when absent or not set). */
  got: string;
}

/**
 * The fragment options the final config does not honour. An option the fragment turns off
 * ('n') is honoured when the final config lacks it or has it unset.
 */
export function droppedOptions(fragment: KconfigValues, final: KconfigValues): DroppedOption[] {
  const dropped: DroppedOption[] = [];
  for (const [name, wanted] of fragment) {
    const got = final.get(name) ?? 'n';
    if (got !== wanted) dropped.push({ name, wanted, got });
  }
  return dropped;
}

export function describeDropped(d: DroppedOption[]): string {
  return d
    .map(
      (o) => `  ${o.name}: wanted ${o.wanted === 'n' ? 'off' : o.wanted}, got ${o.got === 'n' ? 'off/absent' : o.got}`,
    )
    .join('\n');
}

/** The kernel version a .config header names ("# Linux/x86 6.12.117 Kernel Configuration"). */
export function configKernelVersion(text: string): string | undefined {
  return /^# Linux\/\S+ (\S+) Kernel Configuration$/m.exec(text.slice(0, 2000))?.[1];
}

/**
 * Why a kernel with this .config cannot run a topology of `cpus` CPUs (APIC IDs above 254 when
 * `x2apic`): NR_CPUS too small (the extra CPUs would be silently ignored), or no
 * CONFIG_X86_X2APIC (CPUs with APIC IDs above 254 never come up). Empty when it can.
 */
export function topologyConfigProblems(config: KconfigValues, cpus: number, x2apic: boolean): string[] {
  const problems: string[] = [];
  const nrCpus = Number(config.get('CONFIG_NR_CPUS'));
  if (Number.isInteger(nrCpus) && nrCpus < cpus)
    problems.push(`CONFIG_NR_CPUS=${nrCpus} is below the ${cpus} CPUs of the topology`);
  if (x2apic && config.get('CONFIG_X86_X2APIC') !== 'y')
    problems.push('CONFIG_X86_X2APIC is off, and APIC IDs above 254 need x2APIC mode');
  return problems;
}
