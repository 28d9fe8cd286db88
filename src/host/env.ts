// The environment a command gets inside L1, and the run spec sent to L1's init.

import { randomBytes } from 'node:crypto';

/** Variables passed into L1 by default (besides every KTSTR_* variable). */
export const DEFAULT_KEPT_ENV: readonly string[] = [
  'CI',
  'NO_COLOR',
  'FORCE_COLOR',
  'NODE_OPTIONS',
  'NODE_ENV',
  'TZ',
  'LANG',
  'LC_ALL',
];

/** PATH inside L1 (directories of node and qemu are added when elsewhere). */
export const L1_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The variables to set inside L1, taken from `source`: every KTSTR_* variable, the names in
 * DEFAULT_KEPT_ENV and the names in `keep`. PATH, HOME and KTSTR_IN_TEST_HOST are L1's own
 * (see specScript).
 */
export function guestEnvironment(source: NodeJS.ProcessEnv, keep: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const wanted = new Set([...DEFAULT_KEPT_ENV, ...keep]);
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (name.startsWith('KTSTR_') || wanted.has(name)) out[name] = value;
  }
  return out;
}

/** Single-quotes `s` for sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function newNonce(): string {
  return 'ktstr' + randomBytes(16).toString('hex');
}

export interface Spec {
  nonce: string;
  cwd: string;
  /** Variables exported for the command (names must be valid sh names). */
  env: Record<string, string>;
  argv: readonly string[];
}

/** The sh fragment init evaluates: nonce, cwd, exported variables, then `set -- argv`. */
export function specScript(spec: Spec): string {
  const lines = [`ktstr_nonce=${shQuote(spec.nonce)}`, `ktstr_cwd=${shQuote(spec.cwd)}`];
  for (const [name, value] of Object.entries(spec.env)) {
    if (!NAME_RE.test(name)) throw new Error(`environment variable name not usable in L1: ${JSON.stringify(name)}`);
    if (value.includes('\0')) throw new Error(`environment variable ${name} contains a NUL byte`);
    lines.push(`export ${name}=${shQuote(value)}`);
  }
  for (const arg of spec.argv) {
    if (arg.includes('\0')) throw new Error('command argument contains a NUL byte');
  }
  lines.push(`set -- ${spec.argv.map(shQuote).join(' ')}`);
  return lines.join('\n') + '\n';
}

/** The one line sent to init on the serial console. */
export function specLine(spec: Spec): string {
  return Buffer.from(specScript(spec), 'utf8').toString('base64') + '\n';
}
