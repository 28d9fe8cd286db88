// The sweep matrix: declared scheduler x kernel x topology, one cell per combination that the
// scheduler's declarations accept. Usage problems (an unknown name, a kernel that resolves to
// nothing, a scheduler whose `kernels` match none of the given kernels, filters that leave
// nothing) are MatrixErrors; a cell that exists but cannot run (no sched_ext in the kernel,
// too few NR_CPUS, no scheduler binary) stays in the matrix with its setupProblem.

import { closeSync, existsSync, openSync, readFileSync, readSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KconfigError, parseKconfig, topologyConfigProblems, type KconfigValues } from '../kernel/kconfig.js';
import { formatVersion, LabelError, parseVersion } from '../kernel/label.js';
import {
  KernelNotFoundError,
  resolveKernel,
  resolveKernelSpec,
  type ResolvedKernel,
  type ResolveOptions,
} from '../kernel/resolve.js';
import { kernelAccepted } from '../scheduler/kernel-match.js';
import {
  RegistryError,
  schedulerBinary,
  topologyRejections,
  type Registry,
  type SchedulerDecl,
  type TopologyFacts,
} from '../scheduler/registry.js';
import { SCX_KTSTR_BINARY, scxKtstrTestBuildDir } from '../kernel/scx-ktstr.js';
import {
  defaultMemoryMiB,
  formatTopology,
  loadPresets,
  parseTopology,
  Topology,
  TopologyError,
} from '../vmm/topology/index.js';
import { UsageError } from '../errors.js';

export interface MatrixRequest {
  /** Loaded by the caller (ktstr.config.json or --config). */
  registry: Registry;
  /** --scheduler NAME (repeatable); empty: every declared scheduler. */
  schedulers: string[];
  /** --kernel SPEC (repeatable); empty: one kernel, as resolveKernel() picks it. */
  kernels: string[];
  /** Positional preset names (a spec string is accepted too); empty with `topologies`: every preset. */
  presets: string[];
  /** --topology SPEC (or a preset name); narrows like the positional names. */
  topologies: string[];
  /** For tests: env, cache, prebuilt-kernels directory. */
  resolveOptions?: ResolveOptions;
  /**
   * Without named topologies, a preset a kernel's config cannot run (NR_CPUS, x2APIC) is left
   * out rather than failed, and reported here (the cell id and why). Named ones stay as
   * setup failures.
   */
  onSkip?: (id: string, why: string) => void;
}

export interface MatrixCell {
  /** sweep/<scheduler>/<kernel label>/<preset or spec>. */
  id: string;
  scheduler: SchedulerDecl;
  kernel: ResolvedKernel;
  /** The preset name, or the spec string ("1n3l1c1t") of a topology that is no preset. */
  topologyName: string;
  topology: Topology;
  memoryMiB: number;
  /** The scheduler binary for this kernel; null when it is missing. */
  binary: string | null;
  /** Why the cell cannot run (it then fails with kind 'setup'); null when it can. */
  setupProblem: string | null;
  /** Expected relative cost, for sharding: vCPUs plus a boot's fixed part; 0 for a setup failure. */
  cost: number;
}

/** A matrix that cannot be built as asked (unknown scheduler, kernel or topology, nothing to run): a usage error. */
export class MatrixError extends UsageError {
  override name = 'MatrixError';
}

/** A VM boot's fixed cost, in vCPUs' worth (kernel boot, agent start, scheduler load). */
const BOOT_COST = 4;

interface TopologyChoice {
  name: string;
  topology: Topology;
  memoryMiB: number;
  facts: TopologyFacts;
}

/** A kernel as the matrix uses it: version and config found where resolve.ts knows none. */
export interface KernelInfo {
  kernel: ResolvedKernel;
  config: KconfigValues | undefined;
  /** Why the config cannot be used (unreadable or not Kconfig). */
  configProblem: string | null;
}

function selectSchedulers(registry: Registry, names: string[]): SchedulerDecl[] {
  if (registry.schedulers.length === 0) throw new MatrixError(`${registry.path} declares no schedulers`);
  // fixtures fail on purpose: only when named
  if (names.length === 0) return registry.schedulers.filter((s) => !s.fixture);
  const declared = registry.schedulers.map((s) => s.name);
  for (const n of names) {
    if (!declared.includes(n))
      throw new MatrixError(`unknown scheduler '${n}'; ${registry.path} declares: ${declared.join(', ')}`);
  }
  return registry.schedulers.filter((s) => names.includes(s.name));
}

/**
 * The kernel release a bzImage's setup header names (its kernel_version string, e.g.
 * "6.12.118+deb12-cloud-amd64"); undefined for anything else (an ELF vmlinux, unreadable).
 */
function imageRelease(path: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(0x10000);
    const n = readSync(fd, head, 0, head.length, 0);
    if (n < 0x210 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
    const ptr = head.readUInt16LE(0x20e);
    if (ptr === 0 || ptr + 0x200 >= n) return undefined;
    const text = head.toString('latin1', ptr + 0x200, Math.min(n, ptr + 0x200 + 256)).split('\0')[0];
    return /^\S+/.exec(text)?.[0];
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Fills in what a kernel named by its image path lacks: the version from the bzImage header
 * and a config beside the image (config-<release>, as /boot has it, or config).
 */
function completeKernel(k: ResolvedKernel): ResolvedKernel {
  if (k.version !== undefined && k.config !== undefined) return k;
  if (k.origin !== 'path') return k;
  const release = imageRelease(k.bzImage);
  const v = release === undefined ? undefined : parseVersion(release);
  const dir = dirname(k.bzImage);
  const config =
    k.config ??
    [release === undefined ? undefined : `config-${release}`, 'config']
      .filter((n): n is string => n !== undefined)
      .map((n) => join(dir, n))
      .find((p) => existsSync(p));
  return { ...k, version: k.version ?? (v === undefined ? undefined : formatVersion(v)), config };
}

function kernelInfo(k: ResolvedKernel): KernelInfo {
  const kernel = completeKernel(k);
  if (kernel.config === undefined) return { kernel, config: undefined, configProblem: null };
  let text: string;
  try {
    text = readFileSync(kernel.config, 'latin1');
  } catch (e) {
    return {
      kernel,
      config: undefined,
      configProblem: `kernel ${kernel.label}: cannot read its config: ${(e as Error).message}`,
    };
  }
  try {
    return { kernel, config: parseKconfig(text, kernel.config), configProblem: null };
  } catch (e) {
    if (!(e instanceof KconfigError)) throw e;
    return {
      kernel,
      config: undefined,
      configProblem: `kernel ${kernel.label}: its config is not a kernel .config: ${e.message}`,
    };
  }
}

function samePath(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  return a === b || real(a) === real(b);
}

export function resolveKernels(specs: string[], o: ResolveOptions): KernelInfo[] {
  const resolved: ResolvedKernel[] = [];
  const given = new Map<string, string>(); // label -> the spec that produced it
  const resolveOne = (spec: string | undefined): ResolvedKernel => {
    try {
      return spec === undefined ? resolveKernel(undefined, o) : resolveKernelSpec(spec, 'spec', o);
    } catch (e) {
      if (e instanceof KernelNotFoundError || e instanceof LabelError) throw new MatrixError(e.message);
      throw e;
    }
  };
  for (const spec of specs.length === 0 ? [undefined] : specs) {
    const k = resolveOne(spec);
    const first = resolved.find((r) => r.label === k.label);
    if (first === undefined) {
      resolved.push(k);
      given.set(k.label, spec ?? 'auto-discovery');
    } else if (!samePath(first.bzImage, k.bzImage)) {
      throw new MatrixError(
        `--kernel ${given.get(k.label)} (${first.bzImage}) and --kernel ${spec} (${k.bzImage}) are different kernels with the same label '${k.label}'; their cells would share names: pass one of them, or rename its directory`,
      );
    }
  }
  return resolved.map(kernelInfo);
}

function describeKernel(k: ResolvedKernel): string {
  return `${k.label} (${k.version === undefined ? 'version unknown' : `version ${k.version}`})`;
}

function choice(name: string, topology: Topology, memoryMiB: number): TopologyChoice {
  const s = topology.spec;
  return {
    name,
    topology,
    memoryMiB,
    facts: { numaNodes: s.numaNodes, llcs: s.llcs, cpus: topology.numCpus, threadsPerCore: s.threadsPerCore },
  };
}

/**
 * The topology candidates: every preset, or the named presets (file order) followed by the
 * spec strings that are no preset (given order). A spec equal to a preset's is that preset.
 */
function selectTopologies(positional: string[], flagged: string[]): TopologyChoice[] {
  const presets = loadPresets();
  const wanted = [...positional, ...flagged].map((t) => t.trim());
  if (wanted.length === 0) return presets.map((p) => choice(p.name, new Topology(p.topology), p.memoryMiB));
  const presetNames = new Set<string>();
  const specs: string[] = [];
  for (const w of wanted) {
    if (presets.some((p) => p.name === w)) {
      presetNames.add(w);
      continue;
    }
    if (!/^\d/.test(w))
      throw new MatrixError(
        `unknown topology preset '${w}'; presets: ${presets.map((p) => p.name).join(', ')} (or a spec such as 1n2l2c1t)`,
      );
    let spec: string;
    try {
      spec = formatTopology(parseTopology(w));
    } catch (e) {
      if (e instanceof TopologyError) throw new MatrixError(e.message);
      throw e;
    }
    const preset = presets.find((p) => p.topology === spec);
    if (preset) presetNames.add(preset.name);
    else if (!specs.includes(spec)) specs.push(spec);
  }
  return [
    ...presets.filter((p) => presetNames.has(p.name)).map((p) => choice(p.name, new Topology(p.topology), p.memoryMiB)),
    ...specs.map((s) => {
      const t = new Topology(s);
      return choice(s, t, defaultMemoryMiB(t));
    }),
  ];
}

/** "scheduler X accepts no topology of [a]: why" (per topology when there are several). */
function noTopologyMessage(s: SchedulerDecl, candidates: TopologyChoice[]): string {
  const why = candidates.map((t) => ({ name: t.name, why: topologyRejections(s.topology, t.facts).join(', ') }));
  const detail = why.length === 1 ? why[0].why : why.map((w) => `${w.name}: ${w.why}`).join('; ');
  return `scheduler ${s.name} accepts no topology of [${candidates.map((t) => t.name).join(', ')}]: ${detail}`;
}

/** The binary for a scheduler on a kernel, or why there is none. */
export function findBinary(s: SchedulerDecl, k: ResolvedKernel): { binary: string | null; problem: string | null } {
  try {
    const path = schedulerBinary(s, k.schedulersDir);
    if (existsSync(path)) return { binary: path, problem: null };
    return { binary: null, problem: `${s.name}: ${path} not found` };
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    // the fixture scheduler: a copy the tests built for this kernel (src/kernel/scx-ktstr.ts)
    if (s.binary === SCX_KTSTR_BINARY) {
      const built = join(scxKtstrTestBuildDir(k.label), SCX_KTSTR_BINARY);
      if (existsSync(built)) return { binary: built, problem: null };
    }
    return { binary: null, problem: e.message };
  }
}

export function kernelProblems(info: KernelInfo, t: { topology: Topology }): string[] {
  const problems: string[] = [];
  if (info.configProblem !== null) problems.push(info.configProblem);
  const c = info.config;
  if (c === undefined) return problems;
  const ext = c.get('CONFIG_SCHED_CLASS_EXT');
  if (ext === 'n') problems.push('kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT is not set)');
  else if (ext === undefined) problems.push('kernel has no sched_ext (its config has no CONFIG_SCHED_CLASS_EXT)');
  const topo = topologyProblem(info, t);
  if (topo !== null) problems.push(topo);
  return problems;
}

function topologyProblem(info: KernelInfo, t: { topology: Topology }): string | null {
  if (info.config === undefined) return null;
  const topo = topologyConfigProblems(info.config, t.topology.numCpus, t.topology.needsX2apic);
  return topo.length === 0
    ? null
    : `kernel ${info.kernel.label} cannot run topology ${t.topology} (${t.topology.numCpus} CPUs): ${topo.join('; ')}`;
}

export function buildMatrix(req: MatrixRequest): MatrixCell[] {
  const schedulers = selectSchedulers(req.registry, req.schedulers);
  const explicit = req.schedulers.length > 0;
  const kernels = resolveKernels(req.kernels, req.resolveOptions ?? {});
  const topologies = selectTopologies(req.presets, req.topologies);
  const topologiesNamed = req.presets.length + req.topologies.length > 0;
  const cells: MatrixCell[] = [];
  const noTopology: string[] = [];
  for (const s of schedulers) {
    const accepted = kernels.filter((k) =>
      kernelAccepted(s.kernels, { label: k.kernel.label, version: k.kernel.version }),
    );
    if (accepted.length === 0) {
      throw new MatrixError(
        `scheduler ${s.name} declares kernels [${s.kernels.map((k) => k.text).join(', ')}] and none of the resolved kernels matches: ${kernels.map((k) => describeKernel(k.kernel)).join(', ')}; pass a matching --kernel (or narrow with --scheduler)`,
      );
    }
    const fits = topologies.filter((t) => topologyRejections(s.topology, t.facts).length === 0);
    if (fits.length === 0) {
      if (explicit) throw new MatrixError(noTopologyMessage(s, topologies));
      noTopology.push(noTopologyMessage(s, topologies));
      continue;
    }
    for (const k of accepted) {
      const { binary, problem } = findBinary(s, k.kernel);
      for (const t of fits) {
        const unfit = topologyProblem(k, t);
        if (unfit !== null && !topologiesNamed) {
          req.onSkip?.(`sweep/${s.name}/${k.kernel.label}/${t.name}`, unfit);
          continue;
        }
        const problems = [...kernelProblems(k, t), ...(problem === null ? [] : [problem])];
        const setupProblem = problems.length === 0 ? null : problems.join('; ');
        cells.push({
          id: `sweep/${s.name}/${k.kernel.label}/${t.name}`,
          scheduler: s,
          kernel: k.kernel,
          topologyName: t.name,
          topology: t.topology,
          memoryMiB: t.memoryMiB,
          binary,
          setupProblem,
          cost: setupProblem === null ? t.topology.numCpus + BOOT_COST : 0,
        });
      }
    }
  }
  if (cells.length === 0) {
    // every selected scheduler was skipped for its topology constraints
    throw new MatrixError(
      noTopology.length === 1 ? noTopology[0] : `no scheduler accepts any of the topologies: ${noTopology.join('; ')}`,
    );
  }
  return cells;
}

/** `sweep --list`: one line per cell: id, vCPUs, memory, and the setup problem if any. */
export function listMatrixText(cells: readonly MatrixCell[]): string {
  const idWidth = Math.max(0, ...cells.map((c) => c.id.length));
  const cpuWidth = Math.max(0, ...cells.map((c) => String(c.topology.numCpus).length));
  const memWidth = Math.max(0, ...cells.map((c) => String(c.memoryMiB).length));
  return cells
    .map((c) => {
      const cpus = c.topology.numCpus;
      const line = `${c.id.padEnd(idWidth)}  ${String(cpus).padStart(cpuWidth)} vCPU${cpus === 1 ? ' ' : 's'}  ${String(c.memoryMiB).padStart(memWidth)} MiB`;
      return (c.setupProblem === null ? line.trimEnd() : `${line}  setup: ${c.setupProblem}`) + '\n';
    })
    .join('');
}
