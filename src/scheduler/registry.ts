// The scheduler registry: which schedulers the sweep runs, as data (ktstr.config.json at the
// package root, or a file given by the caller). Each entry: name, binary (a name looked up in
// the kernel's schedulers/ directory, or a path relative to the config file), default args,
// the kernels it accepts (see kernel-match.ts) and topology constraints (min/max LLCs, CPUs,
// NUMA nodes; requires SMT). Loading validates everything and names the offending field.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { packageRoot } from '../paths.js';
import { KernelSpecError, parseKernelSpec, type KernelSpec } from './kernel-match.js';
import { UsageError } from '../errors.js';

export const REGISTRY_FILE = 'ktstr.config.json';

export interface TopologyConstraints {
  minLlcs?: number;
  maxLlcs?: number;
  minCpus?: number;
  maxCpus?: number;
  minNumaNodes?: number;
  maxNumaNodes?: number;
  requiresSmt?: boolean;
}

export interface SchedulerDecl {
  name: string;
  /** A bare name (looked up in the kernel's schedulers/) or an absolute path. */
  binary: string;
  args: string[];
  kernels: KernelSpec[];
  topology: TopologyConstraints;
  description?: string;
  /** A scheduler that fails on purpose (a test fixture): swept only when named with --scheduler. */
  fixture: boolean;
  /** Check thresholds of scheduler tests for this scheduler (docs/checks.md), over the defaults; checked when a test merges them. */
  checks?: Record<string, unknown>;
}

export interface Registry {
  path: string;
  schedulers: SchedulerDecl[];
}

export class RegistryError extends UsageError {}

const CONSTRAINT_KEYS = ['minLlcs', 'maxLlcs', 'minCpus', 'maxCpus', 'minNumaNodes', 'maxNumaNodes'] as const;
const ENTRY_KEYS = new Set(['name', 'binary', 'args', 'kernels', 'topology', 'description', 'fixture', 'checks']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseConstraints(v: unknown, where: string): TopologyConstraints {
  if (v === undefined) return {};
  if (!isObject(v)) throw new RegistryError(`${where}: must be an object`);
  const out: TopologyConstraints = {};
  for (const [key, value] of Object.entries(v)) {
    if (key === 'requiresSmt') {
      if (typeof value !== 'boolean') throw new RegistryError(`${where}.requiresSmt: must be true or false`);
      out.requiresSmt = value;
    } else if ((CONSTRAINT_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 4096)
        throw new RegistryError(`${where}.${key}: must be an integer from 1 to 4096`);
      out[key as (typeof CONSTRAINT_KEYS)[number]] = value;
    } else {
      throw new RegistryError(
        `${where}: unknown key '${key}' (known: ${[...CONSTRAINT_KEYS, 'requiresSmt'].join(', ')})`,
      );
    }
  }
  for (const [lo, hi] of [
    ['minLlcs', 'maxLlcs'],
    ['minCpus', 'maxCpus'],
    ['minNumaNodes', 'maxNumaNodes'],
  ] as const) {
    if (out[lo] !== undefined && out[hi] !== undefined && out[lo]! > out[hi]!)
      throw new RegistryError(`${where}: ${lo} ${out[lo]} is above ${hi} ${out[hi]}`);
  }
  return out;
}

/** Validates the registry document (already parsed JSON). `base` resolves relative binary paths. */
export function parseRegistry(doc: unknown, path: string): Registry {
  const base = dirname(path);
  if (!isObject(doc) || !Array.isArray(doc.schedulers))
    throw new RegistryError(`${path}: expected {"schedulers": [...]}`);
  const seen = new Set<string>();
  const schedulers = doc.schedulers.map((raw, i): SchedulerDecl => {
    const where = `${path}: schedulers[${i}]`;
    if (!isObject(raw)) throw new RegistryError(`${where}: must be an object`);
    for (const k of Object.keys(raw)) if (!ENTRY_KEYS.has(k)) throw new RegistryError(`${where}: unknown key '${k}'`);
    const { name, binary, args, kernels, description } = raw;
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name))
      throw new RegistryError(`${where}.name: 1-64 letters, digits, '_', '.', '-'`);
    if (seen.has(name)) throw new RegistryError(`${where}.name: '${name}' is declared twice`);
    seen.add(name);
    if (typeof binary !== 'string' || binary === '')
      throw new RegistryError(`${where}.binary: must be a non-empty string`);
    if (args !== undefined && (!Array.isArray(args) || !args.every((a) => typeof a === 'string')))
      throw new RegistryError(`${where}.args: must be an array of strings`);
    if (kernels !== undefined && (!Array.isArray(kernels) || !kernels.every((k) => typeof k === 'string')))
      throw new RegistryError(`${where}.kernels: must be an array of strings`);
    if (description !== undefined && typeof description !== 'string')
      throw new RegistryError(`${where}.description: must be a string`);
    if (raw.fixture !== undefined && typeof raw.fixture !== 'boolean')
      throw new RegistryError(`${where}.fixture: must be true or false`);
    if (raw.checks !== undefined && !isObject(raw.checks))
      throw new RegistryError(`${where}.checks: must be an object of check thresholds (docs/checks.md)`);
    let specs: KernelSpec[];
    try {
      specs = ((kernels ?? []) as string[]).map(parseKernelSpec);
    } catch (e) {
      if (e instanceof KernelSpecError) throw new RegistryError(`${where}.kernels: ${e.message}`);
      throw e;
    }
    return {
      name,
      binary: binary.includes('/') ? (isAbsolute(binary) ? binary : resolve(base, binary)) : binary,
      args: (args ?? []) as string[],
      kernels: specs,
      topology: parseConstraints(raw.topology, `${where}.topology`),
      description: description as string | undefined,
      fixture: raw.fixture === true,
      ...(raw.checks === undefined ? {} : { checks: raw.checks as Record<string, unknown> }),
    };
  });
  return { path, schedulers };
}

/** Loads and validates a registry file (default: ktstr.config.json of the package). */
export function loadRegistry(path = join(packageRoot(), REGISTRY_FILE)): Registry {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new RegistryError(`${path}: ${(e as Error).message}`);
  }
  return parseRegistry(doc, path);
}

/** The topology facts the constraints are checked against. */
export interface TopologyFacts {
  numaNodes: number;
  llcs: number;
  cpus: number;
  threadsPerCore: number;
}

/** Why the constraints reject the topology; empty when they accept it. */
export function topologyRejections(c: TopologyConstraints, t: TopologyFacts): string[] {
  const why: string[] = [];
  const check = (value: number, min: number | undefined, max: number | undefined, what: string): void => {
    if (min !== undefined && value < min) why.push(`${value} ${what} < min ${min}`);
    if (max !== undefined && value > max) why.push(`${value} ${what} > max ${max}`);
  };
  check(t.llcs, c.minLlcs, c.maxLlcs, 'LLCs');
  check(t.cpus, c.minCpus, c.maxCpus, 'CPUs');
  check(t.numaNodes, c.minNumaNodes, c.maxNumaNodes, 'NUMA nodes');
  if (c.requiresSmt && t.threadsPerCore < 2) why.push('no SMT (requiresSmt)');
  return why;
}

/** The scheduler binary for a kernel: a path as declared, else <schedulersDir>/<binary>. */
export function schedulerBinary(s: SchedulerDecl, schedulersDir: string | undefined): string {
  if (s.binary.includes('/')) return s.binary;
  if (schedulersDir === undefined)
    throw new RegistryError(`${s.name}: the kernel has no schedulers/ directory to find ${s.binary} in`);
  const p = join(schedulersDir, s.binary);
  if (!existsSync(p)) throw new RegistryError(`${s.name}: ${p} not found (was the kernel built with its schedulers?)`);
  return p;
}
