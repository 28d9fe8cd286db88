// test/kvm/bpf-maps-dump.test.ts's judge: compares what Debian's bpftool printed in the guest
// (`map show -j`, `map dump -j id N`) with what openMaps() reads out of the memory dump taken
// a moment later. Identity (id, name, type, sizes, max_entries, flags, frozen) must match for
// every map. Element bytes must match exactly, except for the maps a running scheduler keeps
// writing (VOLATILE below): for those the keys, the value sizes and the BTF field names must
// match, and counters (`nr_*`) may only have grown. Values rendered through the map BTF must
// equal bpftool's `formatted` output for the frozen/config maps (.rodata) and the test's own.

import { jsonValue, type BpfMap, type BpfMaps, type Json } from '../../../src/monitor/index.js';

/** Maps whose contents move while the scheduler runs (between bpftool's read and the dump):
 * counters in .bss, per-CPU dispatch state, the timer, the exit dump buffer (.data.uei_dump
 * stays zero until an exit), .data (qmap's stats/cpumask scratch). */
export const VOLATILE = /(\.bss|\.data|uei_dump|cpu_ctx_stor|monitor_timer)$/;

interface ToolEntry {
  key: string[];
  value?: string[];
  values?: { cpu: number; value: string[] }[];
  formatted?: { value?: unknown; values?: unknown };
}

const hexOf = (bytes: string[]): string => bytes.map((b) => b.replace(/^0x/, '').padStart(2, '0')).join('');
const hexOfBytes = (b: Uint8Array | null): string | null =>
  b === null ? null : Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export interface Comparison {
  /** Checks that failed, in words (empty: all agree). */
  failures: string[];
  /** What was compared, for the log. */
  notes: string[];
}

/** bpftool's `.rodata: [{a: 1}, {b: 2}]` as `{a: 1, b: 2}`. */
function sectionObject(formatted: unknown): Record<string, unknown> | null {
  if (formatted === null || typeof formatted !== 'object') return null;
  const vals = Object.values(formatted as Record<string, unknown>);
  if (vals.length !== 1 || !Array.isArray(vals[0])) return null;
  return Object.assign({}, ...(vals[0] as Record<string, unknown>[])) as Record<string, unknown>;
}

/** Deep equality of bpftool's JSON and our jsonValue (bigints arrive as decimal strings). */
function sameValue(tool: unknown, ours: Json): boolean {
  if (typeof tool === 'number')
    return typeof ours === 'number'
      ? ours === tool
      : typeof ours === 'string' && /^-?\d+$/.test(ours) && Number(ours) === tool;
  if (Array.isArray(tool))
    return Array.isArray(ours) && ours.length === tool.length && tool.every((t, i) => sameValue(t, ours[i]));
  if (tool !== null && typeof tool === 'object') {
    if (ours === null || typeof ours !== 'object' || Array.isArray(ours)) return false;
    const keys = Object.keys(tool);
    return (
      keys.length === Object.keys(ours).length &&
      keys.every((k) => k in ours && sameValue((tool as Record<string, unknown>)[k], ours[k]))
    );
  }
  return tool === ours;
}

function compareEntries(m: BpfMap, tool: ToolEntry[], out: Comparison): void {
  const volatile = VOLATILE.test(m.name);
  const dump = m.entries();
  if (dump.problems.length > 0) out.failures.push(`${m.name}: problems reading: ${dump.problems.join('; ')}`);
  const ours = new Map(dump.entries.map((e) => [hexOfBytes(e.key)!, e]));
  if (ours.size !== tool.length)
    out.failures.push(`${m.name}: ${ours.size} entries read, bpftool listed ${tool.length}`);
  let exact = 0;
  let moved = 0;
  for (const t of tool) {
    const key = hexOf(t.key);
    const e = ours.get(key);
    if (e === undefined) {
      out.failures.push(`${m.name}: key ${key} missing`);
      continue;
    }
    const toolValues = t.values !== undefined ? t.values.map((v) => hexOf(v.value)) : [hexOf(t.value ?? [])];
    const ourValues = e.perCpu !== undefined ? e.perCpu.map(hexOfBytes) : [hexOfBytes(e.value)];
    if (toolValues.length !== ourValues.length) {
      out.failures.push(`${m.name} key ${key}: ${ourValues.length} values, bpftool ${toolValues.length}`);
      continue;
    }
    if (volatile) {
      if (ourValues.some((v, i) => v === null || v.length !== toolValues[i].length))
        out.failures.push(`${m.name} key ${key}: value sizes differ`);
      if (ourValues.some((v, i) => v !== toolValues[i])) moved++;
    } else if (ourValues.some((v, i) => v !== toolValues[i])) {
      out.failures.push(`${m.name} key ${key}: value ${ourValues.join('|')} != bpftool ${toolValues.join('|')}`);
    } else exact++;
    // rendered through the map BTF
    const formatted = t.formatted?.value;
    if (formatted !== undefined && e.value !== null) {
      const mine = jsonValue(m.render(e.value));
      const section = sectionObject(formatted);
      const toolObj = section ?? formatted;
      if (volatile) {
        const a = Object.keys(toolObj as object)
          .sort()
          .join(',');
        const b = Object.keys(mine as object)
          .sort()
          .join(',');
        if (a !== b) out.failures.push(`${m.name}: fields ${b} != bpftool ${a}`);
        for (const [k, v] of Object.entries(toolObj as Record<string, unknown>)) {
          const x = (mine as Record<string, Json>)[k];
          if (k.startsWith('nr_') && typeof v === 'number' && !(typeof x === 'number' && x >= v))
            out.failures.push(`${m.name}.${k}: counter went from ${v} (bpftool) to ${String(x)}`);
        }
      } else if (!sameValue(toolObj, mine)) {
        out.failures.push(
          `${m.name}: rendered ${JSON.stringify(mine).slice(0, 400)} != bpftool ${JSON.stringify(toolObj).slice(0, 400)}`,
        );
      }
    }
  }
  out.notes.push(
    `${m.name} (${m.type}): ${tool.length} entries, ${volatile ? `keys/sizes/fields (volatile; ${moved} moved)` : `${exact} exact`}`,
  );
}

/** Compares one phase: bpftool's view against the maps read from the dump. */
export function compareWithBpftool(
  maps: BpfMaps,
  show: Record<string, unknown>[],
  dumps: Map<number, { exit: number; json: unknown; text: string }>,
): Comparison {
  const out: Comparison = { failures: [], notes: [] };
  const byId = new Map(show.map((s) => [Number(s.id), s]));
  for (const m of maps.maps()) {
    const s = byId.get(m.id);
    if (s === undefined) {
      out.failures.push(`map ${m.id} ${m.name} is not in bpftool's list`);
      continue;
    }
    const want = [s.name, s.type, s.bytes_key, s.bytes_value, s.max_entries, s.flags ?? 0, Boolean(s.frozen)];
    // bpftool 7.1 prints types newer than itself (cgrp_storage) as their number
    const got = [
      m.name,
      typeof s.type === 'number' ? m.info.typeId : m.type,
      m.info.keySize,
      m.info.valueSize,
      m.info.maxEntries,
      m.info.flags,
      m.info.frozen,
    ];
    if (JSON.stringify(want) !== JSON.stringify(got))
      out.failures.push(`map ${m.id}: ${JSON.stringify(got)} != bpftool ${JSON.stringify(want)}`);
    const d = dumps.get(m.id);
    if (d === undefined || d.exit !== 0 || !Array.isArray(d.json) || !m.readable()) continue;
    compareEntries(m, d.json as ToolEntry[], out);
  }
  return out;
}
