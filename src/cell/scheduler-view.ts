// The attached scheduler's state as a capture shows it: its global variables (the .bss,
// .data and .rodata maps of its BPF object, rendered through the map's BTF into named
// fields) and its other maps' elements; and writes of its globals from the host. Built on the
// monitor's map walk (src/monitor/bpf-maps.ts) over guest memory.

import type { CapturedMap, SnapshotData } from '../test-api/capture.js';
import { openMaps, type BpfMap } from '../monitor/bpf-maps.js';
import { jsonValue, mapJson } from '../monitor/bpf-maps-json.js';
import type { GuestKernel } from '../monitor/guest-kernel.js';
import { inspectGuest } from '../monitor/inspect.js';

/** Elements per map in a capture (a capture travels through the 4 MiB mailbox). */
const CAPTURE_ENTRY_LIMIT = 4096;

/** The active scheduler's object-name prefix (libbpf truncates `<obj>.bss` to 15 bytes), or null. */
function activePrefix(guest: GuestKernel): string | null {
  try {
    return inspectGuest(guest).enumeration.activeObj;
  } catch {
    return null;
  }
}

export function sectionMaps(guest: GuestKernel): { globals: BpfMap[]; others: BpfMap[]; prefix: string | null } {
  const all = openMaps(guest).maps();
  const prefix = activePrefix(guest);
  const mine = (m: BpfMap): boolean => prefix === null || m.name.startsWith(prefix);
  return {
    globals: all.filter((m) => m.section() !== null && mine(m)),
    others: all.filter((m) => m.section() === null),
    prefix,
  };
}

export function schedulerView(guest: GuestKernel): Pick<SnapshotData, 'globals' | 'maps' | 'notes'> {
  const notes: string[] = [];
  const { globals: sections, others, prefix } = sectionMaps(guest);
  if (prefix === null) notes.push("no struct_ops scheduler attached: every object's globals are shown");
  const globals: Record<string, unknown> = {};
  for (const m of sections) {
    const e = m.entries(1).entries[0];
    const value = e?.value == null ? null : jsonValue(m.render(e.value));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      notes.push(`${m.name}: not rendered by name (no BTF DATASEC)`);
      continue;
    }
    for (const [k, v] of Object.entries(value)) {
      if (Object.prototype.hasOwnProperty.call(globals, k))
        notes.push(`${m.name}: ${k} is also in another section; the first is kept`);
      else globals[k] = v;
    }
  }
  const maps: CapturedMap[] = others.map((m) => {
    const j = mapJson(m, { limit: CAPTURE_ENTRY_LIMIT }) as {
      entries?: { key: unknown; value?: unknown; values?: unknown }[];
      truncated?: boolean;
      problems?: string[];
    };
    if (j.truncated) notes.push(`${m.name}: only the first ${CAPTURE_ENTRY_LIMIT} elements`);
    for (const p of j.problems ?? []) notes.push(`${m.name}: ${p}`);
    return {
      name: m.name,
      type: m.type,
      entries: (j.entries ?? []).map((e) => ({ key: e.key, value: e.values ?? e.value ?? null })),
    };
  });
  return { globals, maps, notes };
}

/** Writes global `name` (a .bss or .data variable, dotted path into it) of the attached scheduler. */
export function writeSchedulerVar(guest: GuestKernel, name: string, value: number | string): string {
  const { globals: sections } = sectionMaps(guest);
  const v = typeof value === 'string' ? BigInt(value) : value;
  const writable = sections.filter((m) => !m.section()!.startsWith('.rodata'));
  const top = name.split('.')[0];
  for (const m of sections) {
    const e = m.entries(1).entries[0];
    const rendered = e?.value == null ? null : m.render(e.value);
    if (rendered === null || typeof rendered !== 'object' || Array.isArray(rendered) || !(top in rendered)) continue;
    if (!writable.includes(m))
      throw new Error(`${name} is in ${m.name} (read-only once loaded); only .bss and .data globals can be written`);
    m.setField(name, v);
    return `${m.name}.${name} = ${String(value)}`;
  }
  throw new Error(
    `the attached scheduler has no global "${top}" in ${sections.map((m) => m.name).join(', ') || '(no .bss/.data/.rodata maps)'}`,
  );
}
