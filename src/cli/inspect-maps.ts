// Text form of `ktstr-wasm inspect --maps`: one header line per BPF map (id, type, name,
// sizes, flags), then its elements -- keys and values rendered through the map BTF, a
// DATASEC map (.rodata/.bss/.data) as one `name = value` line per variable, per-CPU values
// per CPU. Long values are cut at one line.

import { jsonValue, type Json } from '../monitor/bpf-maps-json.js';
import type { BpfMap, BpfMaps } from '../monitor/bpf-maps.js';

const WIDTH = 160;

function short(v: Json): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > WIDTH ? s.slice(0, WIDTH - 1) + '…' : s;
}

function mapLines(m: BpfMap, limit: number): string[] {
  const i = m.info;
  const flags = [i.flags !== 0 ? `flags 0x${i.flags.toString(16)}` : '', i.frozen ? 'frozen' : '']
    .filter((x) => x !== '')
    .join(' ');
  const arena = i.type === 'arena' ? `  (${i.maxEntries * 4096} bytes)` : '';
  const lines = [
    `${String(i.id).padStart(5)}: ${i.type} ${i.name}  key ${i.keySize}B value ${i.valueSize}B max_entries ${i.maxEntries}${flags !== '' ? '  ' + flags : ''}${arena}`,
  ];
  if (limit === 0 || !m.readable()) return lines;
  const dump = m.entries(limit);
  const section = m.section();
  for (const e of dump.entries) {
    if (section !== null && e.value !== null) {
      const vars = m.render(e.value);
      if (vars !== null && typeof vars === 'object' && !Array.isArray(vars)) {
        for (const [name, v] of Object.entries(vars))
          lines.push(`         ${section.replace(/^\./, '')}.${name} = ${short(jsonValue(v))}`);
        continue;
      }
    }
    const key = short(jsonValue(m.renderKey(e.key)));
    if (e.perCpu !== undefined) {
      e.perCpu.forEach((v, cpu) =>
        lines.push(`         [${key}] cpu${cpu}: ${v === null ? '(unreadable)' : short(jsonValue(m.render(v)))}`),
      );
    } else {
      lines.push(`         [${key}] ${e.value === null ? '(unreadable)' : short(jsonValue(m.render(e.value)))}`);
    }
  }
  if (dump.truncated) lines.push(`         … (first ${dump.entries.length}; --limit shows more)`);
  for (const p of dump.problems) lines.push(`         ! ${p}`);
  return lines;
}

export function formatMaps(maps: BpfMaps, limit: number): string {
  const lines = [`BPF maps: ${maps.maps().length}${maps.truncated ? ' (list truncated)' : ''}`];
  for (const m of maps.maps()) lines.push(...mapLines(m, limit));
  for (const p of maps.problems) lines.push(`! ${p}`);
  return lines.join('\n') + '\n';
}
