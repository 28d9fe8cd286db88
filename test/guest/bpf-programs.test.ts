// The agent's bpf(2) program listing, on this host's kernel (root can list programs): it
// agrees with `bpftool prog show`, and the bpf_prog_info offsets it decodes are the ones
// pahole reports for the test kernel's BTF; the struct_ops filter. A socket filter of our own is
// loaded (clang-16 -target bpf, bpftool prog load) so the comparison never runs on an empty list.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../src/kvm/native.js';
import {
  BPF_PROG_TYPE_STRUCT_OPS,
  decodeProgInfo,
  listPrograms,
  listStructOpsPrograms,
  PROG_INFO,
} from '../../src/guest/agent/bpf-programs.js';
import { findOnPath } from '../../src/host/paths.js';
import { sharedVmlinux } from '../helpers/test-kernel.js';

test('decodeProgInfo reads type, id, name, counts and verified_insns at their offsets', () => {
  const info = new Uint8Array(PROG_INFO.size);
  const dv = new DataView(info.buffer);
  dv.setUint32(PROG_INFO.type, 27, true);
  dv.setUint32(PROG_INFO.id, 4242, true);
  info.set(new TextEncoder().encode('ktstr_dispatch'), PROG_INFO.name);
  dv.setBigUint64(PROG_INFO.runCnt, 12345n, true);
  dv.setBigUint64(PROG_INFO.runTimeNs, 987654321n, true);
  dv.setUint32(PROG_INFO.verifiedInsns, 2296, true);
  assert.equal(decodeProgInfo(info), {
    type: 27,
    id: 4242,
    name: 'ktstr_dispatch',
    verifiedInsns: 2296,
    runCount: 12345,
    runTimeNs: 987654321,
  });
  info.fill(0x41, PROG_INFO.name, PROG_INFO.name + 16); // no NUL: 16 bytes
  assert.is(decodeProgInfo(info).name, 'A'.repeat(16));
  // at an offset inside a bigger buffer
  const outer = new Uint8Array(PROG_INFO.size + 8);
  outer.set(info, 8);
  assert.equal(decodeProgInfo(outer.subarray(8)), decodeProgInfo(info));
});

test('the offsets are those of struct bpf_prog_info in the kernel BTF (pahole)', () => {
  const pahole = findOnPath('pahole');
  const btf = sharedVmlinux() ?? '/sys/kernel/btf/vmlinux';
  if (pahole === undefined || !existsSync(btf)) {
    console.log('  skipped: pahole (dwarves) or a BTF file is missing');
    return;
  }
  // (a pahole older than the kernel warns about BTF kinds it does not know on stderr: dropped)
  const text = execFileSync(pahole, ['-C', 'bpf_prog_info', btf], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const off = (field: string): number =>
    Number(new RegExp(`\\b${field}(?:\\[\\d+\\])?;\\s+/\\*\\s+(\\d+)`).exec(text)![1]);
  assert.is(off('type'), PROG_INFO.type);
  assert.is(off('id'), PROG_INFO.id);
  assert.is(off('name'), PROG_INFO.name);
  assert.is(off('run_time_ns'), PROG_INFO.runTimeNs);
  assert.is(off('run_cnt'), PROG_INFO.runCnt);
  assert.is(off('verified_insns'), PROG_INFO.verifiedInsns);
  assert.is(Number(/size: (\d+)/.exec(text)![1]), PROG_INFO.size);
});

test('listPrograms agrees with bpftool prog show on this host', () => {
  const bpftool = findOnPath('bpftool');
  if (process.getuid?.() !== 0 || bpftool === undefined) {
    console.log('  skipped: needs root and bpftool');
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'ktstr-bpf-'));
  const pin = '/sys/fs/bpf/ktstr_test_prog';
  try {
    const clang = findOnPath('clang-16');
    if (clang !== undefined) {
      // one program of our own, so the comparison never runs on an empty list
      writeFileSync(
        join(tmp, 'p.c'),
        '__attribute__((section("socket"), used)) int ktstr_probe(void *ctx) { return 0; }\nchar _license[] __attribute__((section("license"), used)) = "GPL";\n',
      );
      execFileSync(clang, ['-O2', '-target', 'bpf', '-c', join(tmp, 'p.c'), '-o', join(tmp, 'p.o')]);
      spawnSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
      rmSync(pin, { force: true });
      execFileSync(bpftool, ['prog', 'load', join(tmp, 'p.o'), pin]);
    }
    const ours = listPrograms(native());
    const theirs = JSON.parse(execFileSync(bpftool, ['-j', 'prog', 'show'], { encoding: 'utf8' })) as {
      id: number;
      name?: string;
      verified_insns?: number;
    }[];
    if (theirs.length === 0) {
      console.log('  skipped: no BPF program is loaded and none could be');
      return;
    }
    const ourIds = new Set(ours.map((p) => p.id));
    for (const p of theirs) {
      assert.ok(ourIds.has(p.id), `program ${p.id} (${p.name}) is listed`);
      const mine = ours.find((o) => o.id === p.id)!;
      if (p.name !== undefined) assert.is(mine.name, p.name);
      if (p.verified_insns !== undefined) assert.is(mine.verifiedInsns, p.verified_insns);
    }
    if (clang !== undefined)
      assert.ok(
        ours.some((p) => p.name === 'ktstr_probe' && p.verifiedInsns > 0),
        'our own program is there, with verified_insns',
      );
    // the struct_ops filter: exactly the type-27 programs, without their type
    const structOps = listStructOpsPrograms(native());
    assert.equal(
      structOps.map((p) => p.id),
      ours.filter((p) => p.type === BPF_PROG_TYPE_STRUCT_OPS).map((p) => p.id),
    );
    for (const p of structOps)
      assert.equal(Object.keys(p).sort(), ['id', 'name', 'runCount', 'runTimeNs', 'verifiedInsns']);
    if (clang !== undefined)
      assert.not.ok(
        structOps.some((p) => p.name === 'ktstr_probe'),
        'a socket filter is not struct_ops',
      );
  } finally {
    rmSync(pin, { force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
