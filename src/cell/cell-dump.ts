// The cell engine's side of failure bundles (run-cell.ts holds one CellDump per cell): keeps a
// tail of the console, takes every vCPU's registers when the run ends (bootVm's beforeStop,
// while the vCPU threads still answer; a stuck or ended one is left out, saying why), and
// after the verdict — before the guest's RAM is released — writes the bundle when the policy
// wants it (failures, all, none), with the guest's own VMCOREINFO read through GuestKernel
// (without it when that fails: inspect still finds the kernel from memory).

import { GuestKernel } from '../monitor/guest-kernel.js';
import { guestVmcoreinfo, type CoreCpu, type CoreInput } from '../monitor/core-writer.js';
import type { KernelImage } from '../monitor/kernel-image.js';
import { nodeIntrospector } from '../monitor/wasm-file.js';
import type { BootReason, LiveVm, VcpuRegisters } from '../vmm/index.js';
import { writeFailureBundle, type CoreNotes } from './failure-bundle.js';
import type { CellResult } from './result.js';

export type KeepDumps = 'failures' | 'all' | 'none';
export const KEEP_DUMPS: readonly KeepDumps[] = ['failures', 'all', 'none'];

/** How long one vCPU may take to answer the register read at the end of a run. */
export const REGISTER_READ_MS = 3000;
const CONSOLE_KEEP = 256 * 1024;
const CR0_PG = 1n << 31n;

export interface CellDumpOptions {
  /** Where bundles go; absent: none are written. */
  bundleDir?: string;
  keepDumps?: KeepDumps;
  vmlinux: string | null;
  /** The cell engine's parsed-vmlinux cache. */
  kernelImage: (vmlinux: string) => KernelImage;
  onConsole?: (chunk: Uint8Array) => void;
  /**
   * The cell's pass/fail is decided after it (a test cell's checks): with 'failures' its
   * bundle is written whenever the run got far enough to be judged, and the caller removes
   * it when the judge passes the test (settleTestBundle).
   */
  judgedLater?: boolean;
}

export class CellDump {
  private console = '';
  private readonly decoder = new TextDecoder();
  private registers: (VcpuRegisters | string)[] = [];
  private vmEnd: { reason: BootReason; detail: string } | undefined;
  /** The monitor's timeline for monitor.json (the cell sets it; null: the monitor was off). */
  timeline: unknown = null;

  constructor(private readonly o: CellDumpOptions) {}

  private get active(): boolean {
    return this.o.bundleDir !== undefined && (this.o.keepDumps ?? 'failures') !== 'none';
  }

  /** bootVm's onConsole: keeps a tail, passes the bytes on. */
  readonly onConsole = (chunk: Uint8Array): void => {
    if (this.active) this.console = (this.console + this.decoder.decode(chunk, { stream: true })).slice(-CONSOLE_KEEP);
    this.o.onConsole?.(chunk);
  };

  /** bootVm's beforeStop: every vCPU's registers, each bounded by REGISTER_READ_MS. */
  async beforeStop(live: LiveVm | undefined, end: { reason: BootReason; detail: string }): Promise<void> {
    this.vmEnd = end;
    if (!this.active || live === undefined) return;
    this.registers = await Promise.all(
      Array.from({ length: live.vcpus }, (_, i) =>
        live.readRegs(i, REGISTER_READ_MS).catch((e: unknown) => (e instanceof Error ? e.message : String(e))),
      ),
    );
  }

  /** After the verdict, before the RAM goes: the bundle when the policy wants one; its path (or why not) in `result`. */
  keep(result: CellResult, live: LiveVm | undefined): void {
    if (!this.active || (this.o.keepDumps !== 'all' && result.passed && this.o.judgedLater !== true)) return;
    if (result.failure?.message.startsWith('interrupted') === true) return; // Ctrl-C: tear down now, keep nothing
    try {
      const { core, notes } = live === undefined ? { core: null, notes: undefined } : this.coreInput(live);
      result.bundle = writeFailureBundle(this.o.bundleDir!, {
        result,
        console: this.console,
        monitor: this.timeline,
        core,
        coreNotes: notes,
      }).path;
    } catch (e) {
      result.bundleError = e instanceof Error ? e.message : String(e);
    }
  }

  private coreInput(live: LiveVm): { core: CoreInput; notes: CoreNotes } {
    const regions = live.memory.regions.map((r) => ({
      pa: r.guestPhysAddr,
      bytes: new Uint8Array(live.memory.buffer, r.offset, r.size),
    }));
    const cpus: (CoreCpu | null)[] = [];
    const registerProblems: (string | null)[] = [];
    for (let i = 0; i < live.vcpus; i++) {
      const r = this.registers[i];
      cpus.push(typeof r === 'object' ? r : null);
      registerProblems.push(
        typeof r === 'object'
          ? (r.cr0 & CR0_PG) === 0n
            ? 'CR0.PG is clear: the vCPU was reset (a triple fault resets it) or never started; its registers are as read'
            : null
          : (r ?? 'registers not read (the run ended before they could be)'),
      );
    }
    let vmcoreinfo: string | null = null;
    let vmcoreinfoProblem: string | null = null;
    try {
      if (this.o.vmlinux === null) throw new Error('no vmlinux for this kernel');
      const intro = nodeIntrospector(live.memory.memory);
      for (const r of live.memory.regions) intro.addRegion(r.guestPhysAddr, r.size, r.offset);
      const paging = cpus.find((c) => c !== null && (c.cr0 & CR0_PG) !== 0n);
      const guest = GuestKernel.open(
        intro,
        this.o.kernelImage(this.o.vmlinux),
        paging == null ? {} : { cr3: paging.cr3, cr4: paging.cr4 },
      );
      vmcoreinfo = guestVmcoreinfo(guest);
    } catch (e) {
      vmcoreinfoProblem = e instanceof Error ? e.message : String(e);
    }
    return { core: { regions, cpus, vmcoreinfo }, notes: { registerProblems, vmcoreinfoProblem, vmEnd: this.vmEnd } };
  }
}
