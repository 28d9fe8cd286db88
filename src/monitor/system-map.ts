// System.map reader: "ffffffff81000000 T _text" lines -> symbol addresses. An alternative to
// a vmlinux .symtab when only the map file is at hand. Browser-safe.

export class SystemMapError extends Error {}

/** Symbol name -> address (first definition wins). Malformed lines are errors, with their number. */
export function parseSystemMap(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const m = /^([0-9a-fA-F]{1,16})\s+([A-Za-z?-])\s+(\S+)/.exec(line);
    if (m === null)
      throw new SystemMapError(`System.map line ${i + 1} is not "<hex address> <type> <name>": ${line.slice(0, 80)}`);
    if (!out.has(m[3])) out.set(m[3], BigInt('0x' + m[1]));
  }
  if (out.size === 0) throw new SystemMapError('System.map holds no symbols');
  return out;
}
