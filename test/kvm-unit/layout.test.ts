// src/kvm's struct layouts, ioctl numbers and constants against the C headers of this
// machine: generates a C program that prints sizeof/offsetof of every layout entry and the
// value of every named macro, compiles it with gcc and compares. Needs no KVM. Skips (with
// the reason printed) only when gcc is missing.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  KVM_API_VERSION,
  KVM_CAP,
  KVM_CLOCK,
  KVM_EXIT,
  KVM_GUESTDBG,
  KVM_EXIT_IO_IN,
  KVM_EXIT_IO_OUT,
  KVM_INTERNAL_ERROR,
  KVM_MAX_XCRS,
  KVM_MEM,
  KVM_MP_STATES,
  KVM_SYSTEM_EVENT,
  KVM_VCPUEVENT,
  KVM_X86_SHADOW_INT,
} from '../../src/kvm/constants.js';
import { io, ior, iow, iowr, KVM_IOCTL } from '../../src/kvm/ioctl.js';
import { ALL_LAYOUTS } from '../../src/kvm/layout.js';

const hasGcc = spawnSync('gcc', ['--version']).status === 0;

/** Every macro whose value we define, by name. */
const MACROS: Record<string, number> = {
  KVM_API_VERSION,
  KVM_EXIT_IO_IN,
  KVM_EXIT_IO_OUT,
  ...KVM_EXIT,
  ...KVM_INTERNAL_ERROR,
  ...KVM_SYSTEM_EVENT,
  ...KVM_MEM,
  ...KVM_GUESTDBG,
  ...KVM_CAP,
  ...KVM_MP_STATES,
  ...KVM_VCPUEVENT,
  ...KVM_X86_SHADOW_INT,
  ...KVM_CLOCK,
  KVM_MAX_XCRS,
  ...KVM_IOCTL,
};

interface CValues {
  sizes: Map<string, number>;
  offsets: Map<string, number>;
  macros: Map<string, number>;
}

let c: CValues | undefined;
let tmp = '';

function cProgram(): string {
  const lines = ['#include <stdio.h>', '#include <stddef.h>', '#include <linux/kvm.h>', '', 'int main(void) {'];
  for (const l of ALL_LAYOUTS) {
    lines.push(`  printf("size %s %zu\\n", "${l.name}", sizeof(struct ${l.name}));`);
    for (const f of Object.keys(l.offsets)) {
      lines.push(`  printf("offset %s %zu\\n", "${l.name}.${f}", offsetof(struct ${l.name}, ${f}));`);
    }
  }
  for (const m of Object.keys(MACROS)) lines.push(`  printf("macro %s %llu\\n", "${m}", (unsigned long long)(${m}));`);
  lines.push('  return 0;', '}', '');
  return lines.join('\n');
}

test.before(() => {
  if (!hasGcc) return;
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-kvm-layout-'));
  writeFileSync(join(tmp, 'layout.c'), cProgram());
  const r = spawnSync('gcc', ['-O0', '-Wall', '-o', join(tmp, 'layout'), join(tmp, 'layout.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc failed on the generated layout program:\n${r.stderr}`);
  const out = execFileSync(join(tmp, 'layout'), { encoding: 'utf8' });
  c = { sizes: new Map(), offsets: new Map(), macros: new Map() };
  for (const line of out.trim().split('\n')) {
    const [kind, name, value] = line.split(' ');
    const map = kind === 'size' ? c.sizes : kind === 'offset' ? c.offsets : c.macros;
    map.set(name, Number(value));
  }
});
test.after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function skipIfNoGcc(): boolean {
  if (!hasGcc) console.log('  skipped: gcc is not installed, so the C headers cannot be compared');
  return !hasGcc;
}

test('struct sizes equal sizeof() in <linux/kvm.h>', () => {
  if (skipIfNoGcc()) return;
  for (const l of ALL_LAYOUTS) assert.is(l.size, c!.sizes.get(l.name), `sizeof(struct ${l.name})`);
});

test('member offsets equal offsetof() in <linux/kvm.h>', () => {
  if (skipIfNoGcc()) return;
  let n = 0;
  for (const l of ALL_LAYOUTS) {
    for (const [f, off] of Object.entries(l.offsets)) {
      assert.is(off, c!.offsets.get(`${l.name}.${f}`), `offsetof(struct ${l.name}, ${f})`);
      n++;
    }
  }
  assert.ok(n > 100, `checked ${n} offsets`);
});

test('ioctl numbers and constants equal the C macros', () => {
  if (skipIfNoGcc()) return;
  for (const [name, value] of Object.entries(MACROS)) assert.is(value, c!.macros.get(name), name);
});

test('_IOC encoding: the well-known KVM requests', () => {
  // Independent of gcc: values as printed by the kernel's own headers on x86-64.
  assert.is(KVM_IOCTL.KVM_RUN, 0xae80);
  assert.is(KVM_IOCTL.KVM_GET_API_VERSION, 0xae00);
  assert.is(KVM_IOCTL.KVM_SET_USER_MEMORY_REGION, 0x4020ae46);
  assert.is(KVM_IOCTL.KVM_GET_REGS, 0x8090ae81);
  assert.is(KVM_IOCTL.KVM_SET_SREGS, 0x4138ae84);
  assert.is(KVM_IOCTL.KVM_GET_SUPPORTED_CPUID, 0xc008ae05);
  assert.is(io(0xae, 1), 0xae01);
  assert.is(ior(0xae, 1, 4), 0x8004ae01);
  assert.is(iow(0xae, 1, 4), 0x4004ae01);
  assert.is(iowr(0xae, 1, 4), 0xc004ae01);
  assert.throws(() => iow(0xae, 1, 1 << 14), /14 bits/);
});

test.run();
