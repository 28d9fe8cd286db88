// `ctx.topo`: the test VM's CPUs by place (NUMA node, LLC, core, SMT thread), so tests select
// CPU sets by topology instead of numbers: `ctx.topo.llc(1)`, `.numa(0)`, `.core(3)`, `.smt(0)`.
// Built from the places the host declared for the VM (src/vmm/topology), passed in the plan.

export interface CpuPlaceData {
  cpu: number;
  node: number;
  /** Machine-wide LLC index. */
  llc: number;
  /** Core index within its LLC. */
  core: number;
  thread: number;
}

export class TopologyView {
  constructor(readonly places: readonly CpuPlaceData[]) {}

  get cpus(): number {
    return this.places.length;
  }
  get numaNodes(): number {
    return new Set(this.places.map((p) => p.node)).size;
  }
  get llcs(): number {
    return new Set(this.places.map((p) => p.llc)).size;
  }
  /** Cores in the machine. */
  get cores(): number {
    return new Set(this.places.map((p) => `${p.llc}/${p.core}`)).size;
  }
  get threadsPerCore(): number {
    return this.cores === 0 ? 0 : this.cpus / this.cores;
  }

  private select(what: string, i: number, count: number, keep: (p: CpuPlaceData) => boolean): number[] {
    if (!Number.isSafeInteger(i) || i < 0 || i >= count)
      throw new RangeError(`topo.${what}(${String(i)}): this VM has ${count} (0..${count - 1})`);
    return this.places
      .filter(keep)
      .map((p) => p.cpu)
      .sort((a, b) => a - b);
  }

  /** Every CPU. */
  all(): number[] {
    return this.places.map((p) => p.cpu).sort((a, b) => a - b);
  }
  /** The CPUs of LLC `i` (machine-wide index). */
  llc(i: number): number[] {
    return this.select('llc', i, this.llcs, (p) => p.llc === i);
  }
  /** The CPUs of NUMA node `i`. */
  numa(i: number): number[] {
    return this.select('numa', i, this.numaNodes, (p) => p.node === i);
  }
  /** The hardware threads of core `i` (machine-wide core index, LLC by LLC). */
  core(i: number): number[] {
    const perLlc = this.cores / Math.max(1, this.llcs);
    return this.select('core', i, this.cores, (p) => p.llc * perLlc + p.core === i);
  }
  /** Thread `i` of every core (smt(0): one CPU per core). */
  smt(i: number): number[] {
    return this.select('smt', i, this.threadsPerCore, (p) => p.thread === i);
  }
}
