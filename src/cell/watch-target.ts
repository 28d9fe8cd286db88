// What `ctx.watch(target)` names, found in guest memory: a global of the attached BPF
// scheduler (`nr_weight_sets`, `bss.nr_weight_sets`, `scx_ktstr.bss.nr_weight_sets`,
// dotted paths into structs) located through its .bss/.data map's BTF, or a kernel
// global (`kernel.jiffies_64`) by its vmlinux symbol. Gives the address and size a
// hardware watchpoint covers; errors name what exists.

import type { BpfMap } from '../monitor/bpf-maps.js';
import type { GuestKernel } from '../monitor/guest-kernel.js';
import { sectionMaps } from './scheduler-view.js';

export interface WatchTarget {
  /** As the test wrote it. */
  target: string;
  /** Where it was found: `scx_ktst.bss.nr_weight_sets` (map name, path), `kernel.jiffies_64`. */
  resolved: string;
  kva: bigint;
  size: number;
}

export class WatchTargetError extends Error {}

const SECTIONS = ['bss', 'data', 'rodata'];

export function locateWatchTarget(guest: GuestKernel, target: string): WatchTarget {
  if (!/^[A-Za-z_][A-Za-z0-9_.[\]]*$/.test(target) || target.length > 200)
    throw new WatchTargetError(`watch: "${target.slice(0, 80)}" is not a variable name`);
  const parts = target.split('.');
  if (parts[0] === 'kernel') return kernelTarget(guest, target, parts.slice(1).join('.'));
  const { globals } = sectionMaps(guest);
  // [obj.]section.var or var: which maps to look in, and the path inside them
  let maps: BpfMap[] = globals;
  let path = target;
  const sectionAt =
    parts.length >= 3 && SECTIONS.includes(parts[1]) ? 1 : parts.length >= 2 && SECTIONS.includes(parts[0]) ? 0 : -1;
  if (sectionAt >= 0) {
    const section = `.${parts[sectionAt]}`;
    const obj = sectionAt === 1 ? parts[0] : null;
    maps = globals.filter((m) => m.section() === section && (obj === null || sameObject(m.name, obj, section)));
    path = parts.slice(sectionAt + 1).join('.');
    if (maps.length === 0)
      throw new WatchTargetError(
        `watch ${target}: no ${obj === null ? '' : `${obj} `}${section} map of the attached scheduler (its globals are in ${globals.map((m) => m.name).join(', ') || 'no map'})`,
      );
  }
  const top = path.split(/[.[]/)[0];
  for (const m of maps) {
    const e = m.entries(1).entries[0];
    const rendered = e?.value == null ? null : m.render(e.value);
    if (rendered === null || typeof rendered !== 'object' || Array.isArray(rendered) || !(top in rendered)) continue;
    if (m.section() === '.rodata')
      throw new WatchTargetError(`watch ${target}: it is in ${m.name}, read-only once loaded: nothing writes it`);
    const at = m.fieldAddress(path);
    return { target, resolved: `${m.name}.${at.path}`, kva: at.kva, size: at.size };
  }
  throw new WatchTargetError(
    `watch ${target}: the attached scheduler has no global "${top}" in ${maps.map((m) => m.name).join(', ') || '(no .bss/.data maps)'}`,
  );
}

/** libbpf names an object's section map `<obj prefix>.<section>` within 15 characters. */
function sameObject(mapName: string, obj: string, section: string): boolean {
  const prefix = mapName.slice(0, mapName.length - section.length);
  return prefix !== '' && obj.startsWith(prefix);
}

function kernelTarget(guest: GuestKernel, target: string, symbol: string): WatchTarget {
  if (symbol === '' || !guest.hasSymbol(symbol))
    throw new WatchTargetError(`watch ${target}: the kernel has no symbol "${symbol}"`);
  const size = guest.kernel.symbolSizes.get(symbol) ?? 0;
  if (size <= 0) throw new WatchTargetError(`watch ${target}: the symbol's size is unknown`);
  return { target, resolved: `kernel.${symbol}`, kva: guest.symbolKva(symbol), size };
}
