// Runnable example: a guest's BPF maps read out of a QEMU `dump-guest-memory` core with the
// embeddable API (what `ktstr-wasm inspect --maps` does): every map's identity, then each
// `.rodata`/`.bss`/`.data` map variable by variable through the map's own BTF.
//   node examples/introspect/maps-dump.mjs VMLINUX CORE
// Everything but the file reads is browser-safe.

import { readFileSync } from 'node:fs';
import {
  GuestKernel,
  Introspector,
  bytesSource,
  introspectWasmName,
  loadKernelImage,
  openMaps,
  readCoreDump,
} from 'ktstr-wasm/introspect';

const [vmlinuxPath, corePath] = process.argv.slice(2);
if (corePath === undefined) {
  console.error('usage: node examples/introspect/maps-dump.mjs VMLINUX CORE');
  process.exit(2);
}
const kernel = loadKernelImage(bytesSource(readFileSync(vmlinuxPath)));
const core = readFileSync(corePath);
const dump = readCoreDump(bytesSource(core));
const base = 4 << 20;
const memory = new WebAssembly.Memory({ initial: Math.ceil((base + dump.totalBytes) / 65536) });
const intro = await Introspector.create(
  readFileSync(new URL(`../../build/${introspectWasmName(memory)}`, import.meta.url)),
  memory,
);
let at = base;
for (const s of dump.segments) {
  new Uint8Array(memory.buffer).set(core.subarray(s.fileOffset, s.fileOffset + s.size), at);
  intro.addRegion(s.pa, s.size, at);
  at += s.size;
}
const cpu0 = dump.cpus[0];
const guest = GuestKernel.open(intro, kernel, { vmcoreinfo: dump.vmcoreinfo, cr3: cpu0?.cr3, cr4: cpu0?.cr4 });
const maps = openMaps(guest);
for (const m of maps.maps()) {
  console.log(
    `${m.id}: ${m.type} ${m.name} key ${m.info.keySize} value ${m.info.valueSize} max_entries ${m.info.maxEntries}`,
  );
  const section = m.section();
  if (section === null) continue;
  const value = m.lookup(0);
  for (const [name, v] of Object.entries(m.render(value)))
    console.log(`  ${section}.${name} = ${typeof v === 'object' ? JSON.stringify(v) : v}`);
}
