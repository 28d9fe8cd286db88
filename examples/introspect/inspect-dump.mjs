// Runnable example: the offline inspection done with the embeddable API directly (what
// `ktstr-wasm inspect --core` does), for a raw physical memory image.
//   node examples/introspect/inspect-dump.mjs VMLINUX RAW_MEMORY_IMAGE
// The parsing (ElfFile/Btf/kernelOffsets), KASLR derivation and enumeration are all
// browser-safe; only the file reads below use Node.

import { readFileSync } from 'node:fs';
import {
  Introspector,
  bytesSource,
  inspectKernel,
  introspectWasmName,
  loadKernelImage,
  reportJson,
} from 'ktstr-wasm/introspect';

const [vmlinuxPath, rawPath] = process.argv.slice(2);
if (rawPath === undefined) {
  console.error('usage: node examples/introspect/inspect-dump.mjs VMLINUX RAW_MEMORY_IMAGE');
  process.exit(2);
}
const kernel = loadKernelImage(bytesSource(readFileSync(vmlinuxPath)));
const raw = readFileSync(rawPath);
const base = 4 << 20;
const memory = new WebAssembly.Memory({ initial: Math.ceil((base + raw.length) / 65536) });
new Uint8Array(memory.buffer).set(raw, base);
const intro = await Introspector.create(
  readFileSync(new URL(`../../build/${introspectWasmName(memory)}`, import.meta.url)),
  memory,
);
intro.addRegion(0, raw.length, base);
console.log(JSON.stringify(reportJson(inspectKernel(intro, kernel)), null, 2));
