// What `ktstr-wasm inspect` does: loads the vmlinux and the memory dump, finds the kernel's
// layout, lists the struct_ops programs (src/monitor) and prints them as a table or JSON.
// Loaded by inspect-command.ts only when the command runs.

import { readFileSync } from 'node:fs';
import { bytesSource } from '../elf/file.js';
import { loadKernelImage, type KernelImage } from '../monitor/kernel-image.js';
import { loadCoreFile, loadRawFile, type LoadedImage } from '../monitor/dump-file.js';
import { inspectGuest, reportJson, type InspectReport } from '../monitor/inspect.js';
import { GuestKernel } from '../monitor/guest-kernel.js';
import { openMaps, type BpfMaps } from '../monitor/bpf-maps.js';
import { mapsJson } from '../monitor/bpf-maps-json.js';
import { formatMaps } from './inspect-maps.js';
import { missRate, nsPerCall } from '../monitor/introspector.js';
import type { LayoutHints } from '../monitor/kaslr.js';
import { errorCode, KtstrError, UsageError } from './errors.js';
import { write } from './output.js';

export interface InspectFlags {
  vmlinux: string;
  core?: string;
  memory?: string;
  cr3?: string;
  la57?: boolean;
  systemMap?: string;
  json?: boolean;
  maps?: boolean;
  /** Elements shown per map with --maps (a string from the command line). */
  limit?: string;
}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${errorCode(err) ?? (err as Error).message}`, { cause: err });
  }
}

function parseCr3(text: string): bigint {
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(text)) throw new UsageError(`--cr3 ${text} is not a hex number`);
  return BigInt(text.startsWith('0x') ? text : '0x' + text);
}

/** An error reading `what`: a file that cannot be read is a usage error, anything else a failure named after the file. */
function fail(err: unknown, what: string): never {
  if (err instanceof KtstrError) throw err;
  const code = errorCode(err);
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR')
    throw new UsageError(`cannot read ${what}: ${code}`, { cause: err });
  throw new KtstrError(`${what}: ${(err as Error).message}`, 'failed', { cause: err });
}

export function formatReport(r: InspectReport): string {
  const hex = (v: bigint): string => '0x' + v.toString(16);
  const lines = [
    `kernel ${r.release ?? '?'}  layout from ${r.layout.source}: kaslr ${hex(r.layout.kaslrOffset)}, phys_base ${hex(r.layout.physBase)}, ` +
      `page_offset_base ${hex(r.layout.pageOffsetBase)}, ${r.layout.la57 ? '5' : '4'}-level paging, cr3 ${hex(r.layout.cr3)}`,
    `prog_idr: ${r.enumeration.idrEntries} programs, ${r.enumeration.structOpsCount} struct_ops; nr_cpu_ids ${r.nrCpuIds}`,
    `active scheduler: ${r.enumeration.activeObj ?? '(none)'}`,
  ];
  if (r.enumeration.programs.length > 0) {
    lines.push(
      '',
      `${'id'.padStart(6)}  ${'name'.padEnd(16)}  ${'verified_insns'.padStart(14)}  ${'cnt'.padStart(12)}  ${'ns/call'.padStart(10)}  ${'miss_rate'.padStart(9)}  obj`,
    );
    for (const p of r.enumeration.programs) {
      const s = p.stats;
      lines.push(
        `${String(p.id).padStart(6)}  ${p.name.padEnd(16)}  ${String(p.verifiedInsns).padStart(14)}  ` +
          `${(s === null ? '-' : s.cnt.toString()).padStart(12)}  ${(s === null || s.cnt === 0n ? '-' : nsPerCall(s).toFixed(1)).padStart(10)}  ` +
          `${(s === null ? '-' : missRate(s).toFixed(4)).padStart(9)}  ${p.obj ?? '-'}`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

export async function runInspect(flags: InspectFlags): Promise<void> {
  if ((flags.core === undefined) === (flags.memory === undefined))
    throw new UsageError('give exactly one of --core FILE and --memory FILE');
  if (flags.cr3 !== undefined && flags.memory === undefined) throw new UsageError('--cr3 goes with --memory');
  const limit = flags.limit === undefined ? 64 : Number(flags.limit);
  if (!/^\d+$/.test(flags.limit ?? '0') || !Number.isSafeInteger(limit))
    throw new UsageError(`--limit ${flags.limit} is not a count`);
  if (flags.limit !== undefined && flags.maps !== true) throw new UsageError('--limit goes with --maps');
  const vmlinuxBytes = readInput(flags.vmlinux, 'vmlinux');
  const systemMap =
    flags.systemMap !== undefined ? readInput(flags.systemMap, 'System.map').toString('latin1') : undefined;
  let kernel: KernelImage;
  try {
    kernel = loadKernelImage(
      bytesSource(new Uint8Array(vmlinuxBytes.buffer, vmlinuxBytes.byteOffset, vmlinuxBytes.length)),
      { systemMap },
      flags.vmlinux,
    );
  } catch (err) {
    fail(err, flags.vmlinux);
  }
  const dumpPath = (flags.core ?? flags.memory)!;
  let image: LoadedImage;
  try {
    image = flags.core !== undefined ? loadCoreFile(flags.core) : loadRawFile(flags.memory!);
  } catch (err) {
    fail(err, dumpPath);
  }
  const hints: LayoutHints = { vmcoreinfo: image.dump?.vmcoreinfo ?? null };
  const cpu0 = image.dump?.cpus[0];
  if (cpu0 !== undefined && (cpu0.cr0 & 0x8000_0000n) !== 0n) {
    hints.cr3 = cpu0.cr3;
    hints.cr4 = cpu0.cr4;
  }
  if (flags.cr3 !== undefined) hints.cr3 = parseCr3(flags.cr3);
  if (flags.la57 === true) hints.cr4 = (hints.cr4 ?? 0n) | (1n << 12n);
  let report: InspectReport;
  let maps: BpfMaps | undefined;
  try {
    const guest = GuestKernel.open(image.intro, kernel, hints);
    report = inspectGuest(guest);
    if (flags.maps === true) maps = openMaps(guest);
  } catch (err) {
    fail(err, dumpPath);
  }
  if (flags.json === true) {
    const json = reportJson(report);
    if (maps !== undefined) {
      const m = mapsJson(maps, { limit });
      json.maps = m.maps;
      if (m.truncated !== undefined) json.maps_truncated = m.truncated;
      if (m.problems !== undefined) json.maps_problems = m.problems;
    }
    await write(process.stdout, JSON.stringify(json, null, 2) + '\n');
  } else {
    await write(process.stdout, formatReport(report) + (maps === undefined ? '' : '\n' + formatMaps(maps, limit)));
  }
}
