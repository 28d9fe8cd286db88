// The calibration guest's image, checked on the plain host (no KVM): the machine code
// disassembles (objdump, when present) to the documented loop, the GDT descriptors encode
// the architectural values, the raw image's page tables identity-map with 2 MiB pages, and
// the long-mode sregs of its entry carry the right control bits and segments.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { guestLoopCode, LOOP_BODY_OFFSET, LOOP_MAGIC, LOOP_MARKER } from '../../src/doctor/loop-code.js';
import { KvmSregs } from '../../src/kvm/structs.js';
import { bootSregs } from '../../src/vmm/boot/entry-state.js';
import { RAW_LAYOUT, RAW_SELECTORS, writeRawImage } from '../../src/vmm/boot/raw-image.js';
import { GuestMemory } from '../../src/vmm/memory.js';
import {
  code64Segment,
  CR0_PE,
  CR0_PG,
  CR4_PAE,
  dataSegment,
  EFER_LMA,
  EFER_LME,
  gdtEntry,
  tssSegment,
} from '../../src/kvm/x86.js';

test('guest code disassembles to mov rcx, N; dec; jnz; store; out; hlt', () => {
  const code = guestLoopCode(200_000n);
  assert.is(code[LOOP_BODY_OFFSET], 0x48); // dec rcx starts right after the 10-byte mov
  if (spawnSync('objdump', ['--version']).status !== 0) {
    console.log('  objdump not installed: disassembly not checked');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-code-'));
  try {
    writeFileSync(join(dir, 'code.bin'), code);
    const r = spawnSync('objdump', ['-D', '-b', 'binary', '-mi386:x86-64', '-Mintel', join(dir, 'code.bin')], {
      encoding: 'utf8',
    });
    assert.is(r.status, 0, r.stderr);
    const insns = r.stdout
      .split('\n')
      .filter((l) => /^\s+[0-9a-f]+:\t/.test(l) && l.split('\t')[2])
      .map((l) => l.split('\t')[2].replace(/\s+/g, ' ').trim());
    assert.equal(insns, [
      'movabs rcx,0x30d40',
      'dec rcx',
      `jne 0x${LOOP_BODY_OFFSET.toString(16)}`,
      `movabs rax,0x${LOOP_MAGIC.toString(16)}`,
      `movabs ds:0x${LOOP_MARKER.toString(16)},rax`,
      'mov dx,0x3f8',
      'mov al,0x4b',
      'out dx,al',
      'hlt',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('iterations must be at least 1', () => {
  assert.throws(() => guestLoopCode(0n), RangeError);
  assert.throws(() => guestLoopCode(1n << 64n), RangeError);
});

test('GDT descriptors: flat 64-bit code, flat data, 64-bit TSS', () => {
  assert.is(gdtEntry(code64Segment(8)), 0x00af9b000000ffffn);
  assert.is(gdtEntry(dataSegment(16)), 0x00cf93000000ffffn);
  assert.is(gdtEntry(tssSegment(0x18, 0x1800n)), 0x00008b0018000067n);
});

test('guest image at a guest base: GDT, identity-mapped 2 MiB pages, code', () => {
  const memory = new GuestMemory(RAW_LAYOUT.ramSize);
  const base = memory.regions[0].offset;
  const buf = memory.buffer;
  new Uint8Array(buf).fill(0xcc);
  writeRawImage(memory, guestLoopCode(5n));
  const ram = new DataView(buf, base);
  assert.is(new Uint8Array(buf)[base - 1], 0xcc, 'nothing written below the guest base');
  assert.is(ram.getBigUint64(RAW_LAYOUT.gdt, true), 0n);
  assert.is(ram.getBigUint64(RAW_LAYOUT.gdt + RAW_SELECTORS.code, true), 0x00af9b000000ffffn);
  assert.is(ram.getBigUint64(RAW_LAYOUT.pml4, true), BigInt(RAW_LAYOUT.pdpt) | 3n);
  assert.is(ram.getBigUint64(RAW_LAYOUT.pdpt, true), BigInt(RAW_LAYOUT.pd) | 3n);
  assert.is(ram.getBigUint64(RAW_LAYOUT.pd, true), 0x83n);
  assert.is(ram.getBigUint64(RAW_LAYOUT.pd + 8 * 511, true), (511n << 21n) | 0x83n);
  assert.equal([...new Uint8Array(buf, base + RAW_LAYOUT.code, 3)], [0x48, 0xb9, 5]);
  assert.is(ram.getBigUint64(LOOP_MARKER, true), 0n);
});

test('long-mode sregs', () => {
  const s = bootSregs(new KvmSregs(), writeRawImage(new GuestMemory(RAW_LAYOUT.ramSize), guestLoopCode(5n)));
  assert.ok((s.get('cr0') & (CR0_PE | CR0_PG)) === (CR0_PE | CR0_PG));
  assert.is(s.get('cr4') & CR4_PAE, CR4_PAE);
  assert.is(s.get('efer'), EFER_LME | EFER_LMA);
  assert.is(s.get('cr3'), BigInt(RAW_LAYOUT.pml4));
  assert.equal(s.segment('cs'), code64Segment(RAW_SELECTORS.code));
  assert.equal(s.segment('ss'), dataSegment(RAW_SELECTORS.data));
  assert.is(s.segment('ldt').unusable, 1);
  assert.equal(s.dtable('gdt'), { base: BigInt(RAW_LAYOUT.gdt), limit: 0x27 });
});

test.run();
