// Runnable example of the embeddable introspection API (`ktstr-wasm/introspect`):
// builds a tiny guest physical memory by hand -- 4-level page tables mapping one vmalloc
// page, an IDR with one struct_ops program -- and reads it back with the WASM core.
//   node examples/introspect/synthetic.mjs
// Only the wasm bytes are read with a Node API; in a browser, fetch() them instead.

import { readFileSync } from 'node:fs';
import { Introspector, introspectWasmName } from 'ktstr-wasm/introspect';

const GUEST_BASE = 4 << 20; // guest physical 0 lives at this memory offset
const RAM = 4 << 20;
const memory = new WebAssembly.Memory({ initial: (GUEST_BASE + RAM) / 65536 });
const view = new DataView(memory.buffer);
const w64 = (pa, v) => view.setBigUint64(GUEST_BASE + pa, v, true);
const w32 = (pa, v) => view.setUint32(GUEST_BASE + pa, v, true);

// the kernel's layout and the offsets a real kernel's BTF would give (see kernelOffsets())
const PAGE_OFFSET = 0xffff888000000000n;
const offsets = {
  xaHead: 8,
  xaNodeShift: 0,
  xaNodeSlots: 40,
  idrRt: 0,
  idrBase: 16,
  idrNext: 20,
  progType: 4,
  progAux: 56,
  progStats: 32,
  auxId: 32,
  auxVerifiedInsns: 944,
  auxName: 968,
  auxUsedMaps: 872,
  auxUsedMapCnt: 8,
  statsCnt: 0,
  statsNsecs: 8,
  statsMisses: 16,
  mapName: 88,
  progTypeStructOps: 27,
};

// page tables at 0x1000.. mapping one vmalloc page 0xffffc90000000000 -> physical 0x20000
const vmalloc = 0xffffc90000000000n;
const idx = (va, level) => Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
w64(0x1000 + idx(vmalloc, 4) * 8, 0x2000n | 3n);
w64(0x2000 + idx(vmalloc, 3) * 8, 0x3000n | 3n);
w64(0x3000 + idx(vmalloc, 2) * 8, 0x4000n | 3n);
w64(0x4000 + idx(vmalloc, 1) * 8, 0x20000n | 3n);

// bpf_prog (in vmalloc space) -> bpf_prog_aux (direct map) with name, id, verified_insns
w32(0x20000 + offsets.progType, 27);
w64(0x20000 + offsets.progAux, PAGE_OFFSET + 0x30000n);
w32(0x30000 + offsets.auxId, 5);
w32(0x30000 + offsets.auxVerifiedInsns, 812);
new Uint8Array(memory.buffer).set(new TextEncoder().encode('example_enqueue'), GUEST_BASE + 0x30000 + offsets.auxName);

// prog_idr: a one-entry xarray whose head is the entry itself (index 0)
const idrPa = 0x40000;
w64(idrPa + offsets.idrRt + offsets.xaHead, vmalloc);

const wasm = readFileSync(new URL(`../../build/${introspectWasmName(memory)}`, import.meta.url));
const intro = await Introspector.create(wasm, memory);
intro.addRegion(0, RAM, GUEST_BASE);
intro.setPaging(0x1000n, false);
intro.setKernel({ pageOffsetBase: PAGE_OFFSET, physBase: 0n });
intro.setOffsets(offsets);

console.log(`walk(0x${vmalloc.toString(16)}) = 0x${intro.walk(vmalloc).toString(16)}`);
const result = intro.structOpsPrograms(PAGE_OFFSET + BigInt(idrPa));
for (const p of result.programs)
  console.log(`struct_ops program id ${p.id} ${p.name}: verified_insns ${p.verifiedInsns}`);
