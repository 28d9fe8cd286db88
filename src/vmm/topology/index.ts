// CPU topology as data: the spec string `{numa}n{llcs}l{cores}c{threads}t`, the presets in
// presets/x86.json, the CPU enumeration with its APIC ID layout, and what the guest's sysfs
// must read for it.
//
// Model (the CPUID rewrite in src/vmm/cpuid/ and the ACPI tables in src/vmm/acpi/ follow it):
// - Each NUMA node is its own package (socket). A package holds `llcs / numaNodes` LLCs, an
//   LLC `coresPerLlc` cores, a core `threadsPerCore` hardware threads. So core_siblings_list
//   (the package) equals the node's cpulist, and an LLC never spans two nodes (Linux warns
//   and drops an LLC sibling on another node).
// - Linux CPU numbers follow MADT order with the boot CPU (APIC ID 0) first; the MADT lists
//   CPUs in this enumeration order: node-major, then LLC, then core, and threads fastest. So
//   cpu N's SMT siblings are consecutive numbers, and an LLC or a node is a contiguous range.
// - APIC ID, x2APIC-style bit fields from the least significant end:
//   thread (smtBits = ceil(log2 threadsPerCore)) | core within LLC (coreBits = ceil(log2
//   coresPerLlc)) | LLC within node (llcBits = ceil(log2 llcsPerNode)) | node = package.
//   The package shift (smt + core + llc bits) is what CPUID leaf 0xB/0x1F reports at the
//   core level, and the LLC shift (smt + core bits) what the L3 sharing count encodes.
// - KVM gives a vCPU the APIC ID equal to its KVM_CREATE_VCPU id: create vCPU N with id
//   `topology.cpus[N].apicId`. IDs above 254 need the guest in x2APIC mode (the MADT then
//   carries x2APIC entries for them; Linux runs x2APIC without interrupt remapping under
//   KVM because KVM advertises KVM_FEATURE_MSI_EXT_DEST_ID). For such topologies enable
//   KVM_CAP_X2APIC_API (USE_32BIT_IDS | DISABLE_BROADCAST_QUIRK) on the VM, as QEMU does.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../paths.js';
import { UsageError } from '../../errors.js';

/** Most vCPUs a topology may declare (the gauntlet's max-cpu preset). */
export const MAX_CPUS = 252;
/** Highest APIC ID accepted: KVM_MAX_VCPU_IDS is 4096 on x86 (KVM_CAP_MAX_VCPU_ID). */
export const MAX_APIC_ID = 4095;

export class TopologyError extends UsageError {
  override name = 'TopologyError';
}

export interface TopologySpec {
  numaNodes: number;
  /** LLCs in the whole machine (split evenly across NUMA nodes). */
  llcs: number;
  coresPerLlc: number;
  threadsPerCore: number;
}

const PARTS: Array<{ key: keyof TopologySpec; suffix: string; name: string }> = [
  { key: 'numaNodes', suffix: 'n', name: 'NUMA nodes' },
  { key: 'llcs', suffix: 'l', name: 'LLCs' },
  { key: 'coresPerLlc', suffix: 'c', name: 'cores per LLC' },
  { key: 'threadsPerCore', suffix: 't', name: 'threads per core' },
];

const FORMAT = 'expected {numa}n{llcs}l{cores}c{threads}t, e.g. 1n2l2c2t';

/** Parses `{numa}n{llcs}l{cores}c{threads}t`; throws a TopologyError naming the bad part. */
export function parseTopology(spec: string): TopologySpec {
  if (typeof spec !== 'string') throw new TopologyError(`invalid topology ${String(spec)}: not a string; ${FORMAT}`);
  const text = spec.trim();
  const bad = (why: string): TopologyError => new TopologyError(`invalid topology "${spec}": ${why}; ${FORMAT}`);
  if (text === '') throw bad('empty');
  let rest = text;
  const out = {} as TopologySpec;
  for (const part of PARTS) {
    const label = `the ${part.name} part ("<N>${part.suffix}")`;
    if (rest === '') throw bad(`missing ${label}`);
    const m = /^(\d*)([^\d]?)/.exec(rest)!;
    const digits = m[1];
    const letter = m[2].toLowerCase();
    if (letter !== part.suffix) {
      if (digits !== '' && letter === '') throw bad(`${label} "${digits}" lacks its "${part.suffix}" suffix`);
      const later = PARTS.slice(PARTS.indexOf(part) + 1).some((p) => p.suffix === letter);
      if (later) throw bad(`missing ${label} before "${rest}"`);
      throw bad(`unexpected "${digits}${m[2]}" where ${label} belongs`);
    }
    if (digits === '') throw bad(`${label} has no number before "${part.suffix}"`);
    const n = Number(digits);
    if (n === 0) throw bad(`${label} is 0; each count must be at least 1`);
    if (!Number.isSafeInteger(n) || n > MAX_CPUS)
      throw bad(`${label} ${digits} is larger than the ${MAX_CPUS}-CPU limit`);
    out[part.key] = n;
    rest = rest.slice(m[0].length);
  }
  if (rest !== '') throw bad(`unexpected "${rest}" after the threads part`);
  if (out.llcs % out.numaNodes !== 0) {
    throw bad(
      `${out.llcs} LLCs cannot split evenly across ${out.numaNodes} NUMA nodes (the LLC count is the machine total)`,
    );
  }
  const cpus = out.llcs * out.coresPerLlc * out.threadsPerCore;
  if (cpus > MAX_CPUS) {
    throw bad(
      `${out.llcs} LLCs x ${out.coresPerLlc} cores x ${out.threadsPerCore} threads = ${cpus} CPUs, more than the ${MAX_CPUS} supported (KVM vCPU / xAPIC-era limit of the gauntlet)`,
    );
  }
  const bits = apicBits(out);
  const maxApic =
    ((out.numaNodes - 1) << bits.packageShift) |
    ((out.llcs / out.numaNodes - 1) << bits.llcShift) |
    ((out.coresPerLlc - 1) << bits.coreShift) |
    (out.threadsPerCore - 1);
  if (maxApic > MAX_APIC_ID) throw bad(`its highest APIC ID ${maxApic} is above the KVM vCPU ID limit ${MAX_APIC_ID}`);
  return out;
}

/** ceil(log2 n) for n >= 1. */
export function countOrder(n: number): number {
  let b = 0;
  while (1 << b < n) b++;
  return b;
}

export interface ApicLayout {
  smtBits: number;
  coreBits: number;
  llcBits: number;
  nodeBits: number;
  /** Shift from APIC ID to the core id (= smtBits). */
  coreShift: number;
  /** Shift from APIC ID to the LLC id (= smtBits + coreBits). */
  llcShift: number;
  /** Shift from APIC ID to the package (= NUMA node) id (= smt + core + llc bits). */
  packageShift: number;
}

function apicBits(s: TopologySpec): ApicLayout {
  const smtBits = countOrder(s.threadsPerCore);
  const coreBits = countOrder(s.coresPerLlc);
  const llcBits = countOrder(s.llcs / s.numaNodes);
  const nodeBits = countOrder(s.numaNodes);
  return {
    smtBits,
    coreBits,
    llcBits,
    nodeBits,
    coreShift: smtBits,
    llcShift: smtBits + coreBits,
    packageShift: smtBits + coreBits + llcBits,
  };
}

/** One vCPU: its Linux CPU number (= MADT order = vCPU index) and where it sits. */
export interface CpuPlace {
  cpu: number;
  node: number;
  /** Package (socket) id: equals the node. */
  package: number;
  /** Machine-wide LLC index. */
  llc: number;
  /** LLC index within its node. */
  llcInNode: number;
  /** Core index within its LLC. */
  core: number;
  thread: number;
  apicId: number;
}

export class Topology {
  readonly spec: TopologySpec;
  readonly layout: ApicLayout;
  readonly cpus: readonly CpuPlace[];
  readonly llcsPerNode: number;

  constructor(spec: TopologySpec | string) {
    this.spec = typeof spec === 'string' ? parseTopology(spec) : parseTopology(formatTopology(spec));
    const s = this.spec;
    this.layout = apicBits(s);
    this.llcsPerNode = s.llcs / s.numaNodes;
    const cpus: CpuPlace[] = [];
    for (let node = 0; node < s.numaNodes; node++) {
      for (let l = 0; l < this.llcsPerNode; l++) {
        for (let core = 0; core < s.coresPerLlc; core++) {
          for (let thread = 0; thread < s.threadsPerCore; thread++) {
            const L = this.layout;
            cpus.push({
              cpu: cpus.length,
              node,
              package: node,
              llc: node * this.llcsPerNode + l,
              llcInNode: l,
              core,
              thread,
              apicId: (node << L.packageShift) | (l << L.llcShift) | (core << L.coreShift) | thread,
            });
          }
        }
      }
    }
    this.cpus = cpus;
  }

  get numCpus(): number {
    return this.cpus.length;
  }
  get numaNodes(): number {
    return this.spec.numaNodes;
  }
  get packages(): number {
    return this.spec.numaNodes;
  }
  get cpusPerLlc(): number {
    return this.spec.coresPerLlc * this.spec.threadsPerCore;
  }
  get cpusPerPackage(): number {
    return this.cpusPerLlc * this.llcsPerNode;
  }
  get coresPerPackage(): number {
    return this.spec.coresPerLlc * this.llcsPerNode;
  }
  get maxApicId(): number {
    return Math.max(...this.cpus.map((c) => c.apicId));
  }
  /** Whether any APIC ID needs x2APIC (above 254: 255 is the xAPIC broadcast ID). */
  get needsX2apic(): boolean {
    return this.maxApicId > 254;
  }

  /** The spec string, e.g. "1n2l2c2t". */
  toString(): string {
    return formatTopology(this.spec);
  }

  cpuByApicId(apicId: number): CpuPlace | undefined {
    return this.cpus.find((c) => c.apicId === apicId);
  }
  threadSiblings(cpu: number): number[] {
    const c = this.cpus[cpu];
    return this.cpus.filter((o) => o.llc === c.llc && o.core === c.core).map((o) => o.cpu);
  }
  llcCpus(llc: number): number[] {
    return this.cpus.filter((o) => o.llc === llc).map((o) => o.cpu);
  }
  nodeCpus(node: number): number[] {
    return this.cpus.filter((o) => o.node === node).map((o) => o.cpu);
  }
  packageCpus(pkg: number): number[] {
    return this.nodeCpus(pkg);
  }
}

export function formatTopology(s: TopologySpec): string {
  return `${s.numaNodes}n${s.llcs}l${s.coresPerLlc}c${s.threadsPerCore}t`;
}

/** Linux's list format for a CPU set: ascending, runs of 2+ as "a-b", e.g. "0-3,8-11". */
export function cpuList(cpus: Iterable<number>): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

export interface ExpectedSysfsOptions {
  /** Also core_siblings_list (the package), physical_package_id and core_cpus_list. */
  extended?: boolean;
}

/**
 * What the guest's sysfs must read for this topology, path -> content (without the trailing
 * newline): /sys/devices/system/cpu/online, cpuN/topology/thread_siblings_list,
 * cpuN/cache/index3/shared_cpu_list (the CPUs of its LLC) and
 * /sys/devices/system/node/nodeK/cpulist.
 */
export function expectedSysfs(t: Topology, opts: ExpectedSysfsOptions = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const cpuDir = '/sys/devices/system/cpu';
  out[`${cpuDir}/online`] = cpuList(t.cpus.map((c) => c.cpu));
  for (const c of t.cpus) {
    out[`${cpuDir}/cpu${c.cpu}/topology/thread_siblings_list`] = cpuList(t.threadSiblings(c.cpu));
    out[`${cpuDir}/cpu${c.cpu}/cache/index3/shared_cpu_list`] = cpuList(t.llcCpus(c.llc));
    if (opts.extended) {
      out[`${cpuDir}/cpu${c.cpu}/topology/core_cpus_list`] = cpuList(t.threadSiblings(c.cpu));
      out[`${cpuDir}/cpu${c.cpu}/topology/core_siblings_list`] = cpuList(t.packageCpus(c.package));
      out[`${cpuDir}/cpu${c.cpu}/topology/physical_package_id`] = String(c.package);
    }
  }
  for (let n = 0; n < t.numaNodes; n++) out[`/sys/devices/system/node/node${n}/cpulist`] = cpuList(t.nodeCpus(n));
  return out;
}

export interface Preset extends TopologySpec {
  name: string;
  topology: string;
  cpus: number;
  memoryMiB: number;
  description: string;
}

let presetCache: Preset[] | undefined;

/** The x86 gauntlet presets from presets/x86.json (package root), validated against their spec strings. */
export function loadPresets(file = join(packageRoot(), 'presets', 'x86.json')): Preset[] {
  if (presetCache !== undefined && arguments.length === 0) return presetCache;
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { presets?: Preset[] };
  if (!Array.isArray(doc.presets)) throw new TopologyError(`${file}: no "presets" array`);
  for (const p of doc.presets) {
    const s = parseTopology(p.topology);
    for (const k of ['numaNodes', 'llcs', 'coresPerLlc', 'threadsPerCore'] as const) {
      if (s[k] !== p[k])
        throw new TopologyError(`${file}: preset ${p.name}: ${k} ${p[k]} disagrees with its topology "${p.topology}"`);
    }
    const cpus = s.llcs * s.coresPerLlc * s.threadsPerCore;
    if (cpus !== p.cpus)
      throw new TopologyError(`${file}: preset ${p.name}: cpus ${p.cpus} but "${p.topology}" has ${cpus}`);
  }
  if (arguments.length === 0) presetCache = doc.presets;
  return doc.presets;
}

/** A preset by name (e.g. "smt-2llc") or a spec string (e.g. "1n2l2c2t"). */
export function resolveTopology(nameOrSpec: string): { topology: Topology; preset?: Preset } {
  const preset = loadPresets().find((p) => p.name === nameOrSpec.trim());
  if (preset) return { topology: new Topology(preset.topology), preset };
  if (/^\d/.test(nameOrSpec.trim())) return { topology: new Topology(nameOrSpec) };
  const names = loadPresets().map((p) => p.name);
  throw new TopologyError(
    `unknown topology "${nameOrSpec}": neither a preset (${names.join(', ')}) nor a spec; ${FORMAT}`,
  );
}

/** Guest memory for a topology without a preset: max(cpus x 64 MiB, 256 MiB), as presets/x86.json does. */
export function defaultMemoryMiB(t: Topology): number {
  return Math.max(t.numCpus * 64, 256);
}
