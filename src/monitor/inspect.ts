// One inspection of a guest kernel: configure the core (offsets, KASLR layout, per-CPU
// offsets) and enumerate its struct_ops programs. Used by the offline `inspect` command and
// by live VMs; the memory image and the Introspector come from the caller. Browser-safe.

import { nsPerCall, missRate, type Enumeration, type Introspector, type StructOpsProgram } from './introspector.js';
import type { KernelLayout, LayoutHints } from './kaslr.js';
import type { KernelImage } from './kernel-image.js';
import { GuestKernel } from './guest-kernel.js';

export interface InspectReport {
  layout: KernelLayout;
  release: string | null;
  nrCpuIds: number;
  enumeration: Enumeration;
  /** Microseconds the enumeration itself took (the core call and decoding). */
  enumerateMicros: number;
}

/** Reads the running kernel's release from its banner in memory. */
function runningRelease(intro: Introspector, kernel: KernelImage, layout: KernelLayout): string | null {
  const banner = kernel.symbols.get('linux_banner');
  if (banner === undefined) return null;
  const text = new TextDecoder('latin1').decode(intro.readKvaBytes(banner + layout.kaslrOffset, 128));
  return /^Linux version (\S+)/.exec(text)?.[1] ?? null;
}

/** Configures `intro` for the kernel and layout, then reads the struct_ops programs. */
export function inspectKernel(intro: Introspector, kernel: KernelImage, hints: LayoutHints = {}): InspectReport {
  return inspectGuest(GuestKernel.open(intro, kernel, hints));
}

/** The struct_ops programs of an opened guest kernel. */
export function inspectGuest(guest: GuestKernel): InspectReport {
  const t0 = performance.now();
  const enumeration = guest.intro.structOpsPrograms(guest.symbolKva('prog_idr'));
  const enumerateMicros = (performance.now() - t0) * 1000;
  return {
    layout: guest.layout,
    release: runningRelease(guest.intro, guest.kernel, guest.layout),
    nrCpuIds: guest.nrCpuIds,
    enumeration,
    enumerateMicros,
  };
}

/** A program as plain JSON (bigints as decimal strings where they can exceed 2^53). */
export function programJson(p: StructOpsProgram): Record<string, unknown> {
  return {
    id: p.id,
    name: p.name,
    verified_insns: p.verifiedInsns,
    obj: p.obj,
    runtime:
      p.stats === null
        ? null
        : {
            cnt: p.stats.cnt.toString(),
            nsecs: p.stats.nsecs.toString(),
            misses: p.stats.misses.toString(),
            ns_per_call: Number(nsPerCall(p.stats).toFixed(3)),
            miss_rate: Number(missRate(p.stats).toFixed(6)),
            cpus: p.stats.cpus,
            saturated: p.stats.saturated,
          },
    prog_kva: '0x' + p.progKva.toString(16),
  };
}

export function reportJson(r: InspectReport): Record<string, unknown> {
  const hex = (v: bigint): string => '0x' + v.toString(16);
  return {
    release: r.release,
    layout: {
      source: r.layout.source,
      kaslr_offset: hex(r.layout.kaslrOffset),
      phys_base: hex(r.layout.physBase),
      page_offset_base: hex(r.layout.pageOffsetBase),
      cr3: hex(r.layout.cr3),
      la57: r.layout.la57,
      text_pa: hex(r.layout.textPa),
      checks: r.layout.checks,
    },
    nr_cpu_ids: r.nrCpuIds,
    idr_entries: r.enumeration.idrEntries,
    struct_ops_count: r.enumeration.structOpsCount,
    active_scheduler: r.enumeration.activeObj,
    programs: r.enumeration.programs.map(programJson),
  };
}
