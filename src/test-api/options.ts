// The options of `ktstrTest(name, options, body)`: topology, memory, scheduler and its
// arguments, duration and timeout, kernels, a payload, and check thresholds. Typed so a
// misspelt option fails type-checking; checked again at run time (plain JS test files).

import type { Duration } from './duration.js';

import type { DeepPartial, Thresholds } from './thresholds.js';

/**
 * Check thresholds a test or run overrides (docs/checks.md lists every field and default);
 * `true`/`false` for a check is short for `{ enabled: ... }`.
 */
export type CheckOverrides = {
  [K in keyof Thresholds]?: Thresholds[K] extends object ? boolean | DeepPartial<Thresholds[K]> : Thresholds[K];
};

/** A binary run alongside the workers, copied into the guest with its shared libraries. */
export interface PayloadSpec {
  /** The command: argv[0] is a host path or a name looked up on the host's PATH (`rt-app`, `stress-ng`). */
  cmd: string[];
  /** Files copied into the guest first: guest path -> file content (e.g. an rt-app JSON config). */
  files?: Record<string, string>;
  /** The cgroup it runs in (a cgroup of the run); absent: the root. */
  cgroup?: string;
  /** A non-zero exit fails the test (default true). */
  mustSucceed?: boolean;
}

export interface TestOptions {
  /** NUMA nodes (default 1). */
  numa?: number;
  /** LLCs in the machine (default 1). */
  llcs?: number;
  /** Cores per LLC (default 2). */
  cores?: number;
  /** Threads per core (default 1). */
  threads?: number;
  /** A preset name (presets/x86.json) instead of numa/llcs/cores/threads. */
  preset?: string;
  /** A topology spec `{numa}n{llcs}l{cores}c{threads}t` instead of the above. */
  topology?: string;
  /** Guest memory for the workload, MiB (default: the topology's). */
  memory?: number;
  /** A scheduler of the registry (`ktstr-wasm sweep --list`); absent: none, the kernel's EEVDF. */
  scheduler?: string;
  /** Extra arguments for the scheduler (after its registry arguments). */
  args?: string[];
  /** How long each `ctx.run` runs its workers (default 3s). */
  duration?: Duration;
  /** The whole test, VM boot included (default 180s). */
  timeout?: Duration;
  /** Kernels to run on (labels, versions, paths); absent: the default kernel or --kernel. */
  kernels?: string[];
  payload?: PayloadSpec;
  /** Check thresholds over the defaults and the scheduler's registry entry. */
  checks?: CheckOverrides;
}

const KEYS: ReadonlySet<string> = new Set([
  'numa',
  'llcs',
  'cores',
  'threads',
  'preset',
  'topology',
  'memory',
  'scheduler',
  'args',
  'duration',
  'timeout',
  'kernels',
  'payload',
  'checks',
]);

/** Run-time check of options from a plain JS file: unknown keys and wrong types throw, naming the key. */
export function checkOptions(testName: string, o: unknown): TestOptions {
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new TypeError(`ktstrTest("${testName}"): options must be an object`);
  const rec = o as Record<string, unknown>;
  for (const k of Object.keys(rec)) {
    if (!KEYS.has(k))
      throw new TypeError(`ktstrTest("${testName}"): unknown option "${k}" (known: ${[...KEYS].join(', ')})`);
  }
  for (const k of ['numa', 'llcs', 'cores', 'threads', 'memory']) {
    const v = rec[k];
    if (v !== undefined && (!Number.isSafeInteger(v) || (v as number) < 1))
      throw new TypeError(`ktstrTest("${testName}"): ${k} must be a positive integer`);
  }
  for (const k of ['preset', 'topology', 'scheduler']) {
    if (rec[k] !== undefined && typeof rec[k] !== 'string')
      throw new TypeError(`ktstrTest("${testName}"): ${k} must be a string`);
  }
  for (const k of ['args', 'kernels']) {
    const v = rec[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string')))
      throw new TypeError(`ktstrTest("${testName}"): ${k} must be an array of strings`);
  }
  if (
    (rec.preset !== undefined || rec.topology !== undefined) &&
    ['numa', 'llcs', 'cores', 'threads'].some((k) => rec[k] !== undefined)
  ) {
    throw new TypeError(`ktstrTest("${testName}"): give either preset/topology or numa/llcs/cores/threads, not both`);
  }
  const p = rec.payload as PayloadSpec | undefined;
  if (
    p !== undefined &&
    (typeof p !== 'object' ||
      p === null ||
      !Array.isArray(p.cmd) ||
      p.cmd.length === 0 ||
      p.cmd.some((x) => typeof x !== 'string'))
  ) {
    throw new TypeError(`ktstrTest("${testName}"): payload.cmd must be a non-empty array of strings`);
  }
  return rec as TestOptions;
}

/** The topology spec string of a test's options (preset names are resolved by the host). */
export function topologyOf(o: TestOptions): { preset: string } | { spec: string } {
  if (o.preset !== undefined) return { preset: o.preset };
  if (o.topology !== undefined) return { spec: o.topology };
  return { spec: `${o.numa ?? 1}n${o.llcs ?? 1}l${o.cores ?? 2}c${o.threads ?? 1}t` };
}
