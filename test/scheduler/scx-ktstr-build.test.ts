// Issue 6: scx-ktstr, the fixture scheduler, builds against the prebuilt sched_ext kernel's
// vmlinux (BTF only, Debian packages only: no kernel tree) into build/scx-ktstr/<label>/,
// where test/kvm/sched-scx-ktstr.test.ts picks it up for the guest run. The loader is static,
// its BPF object carries the two sched_ext_ops struct_ops maps (5 s and 30 s watchdog), the
// programs of a weighted-vtime scheduler (with cgroup weights) and the knobs (plus nr_llcs,
// the topology the loader fills in), and its command line rejects bad input with exit 2.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultKernelsDir } from '../../src/kernel/discover.js';
import { resolveKernel } from '../../src/kernel/resolve.js';
import { buildScxKtstr, SCX_KTSTR_BINARY, scxKtstrTestBuildDir } from '../../src/kernel/scx-ktstr.js';

const PREBUILT = '6.12.117-sched_ext';
let binary = '';
let outDir = '';

test("scx-ktstr builds against the prebuilt kernel's vmlinux", async () => {
  // the prebuilt kernel, as in CI (not a cache entry of the same label)
  const shared = defaultKernelsDir();
  const kernel = resolveKernel(shared === undefined ? PREBUILT : join(shared, PREBUILT), { env: {} });
  assert.ok(kernel.vmlinux, `${PREBUILT} has no vmlinux`);
  outDir = scxKtstrTestBuildDir(kernel.label);
  binary = await buildScxKtstr({ vmlinux: kernel.vmlinux!, outDir });
  assert.is(binary, join(outDir, SCX_KTSTR_BINARY));
  assert.ok(existsSync(binary));
});

test('the loader is a static ELF executable', () => {
  const head = readFileSync(binary).subarray(0, 64);
  assert.equal([...head.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'ELF magic');
  const file = readFileSync(binary);
  // a dynamically linked executable has a PT_INTERP program header (type 3)
  const phoff = Number(file.readBigUInt64LE(32));
  const phentsize = file.readUInt16LE(54);
  const phnum = file.readUInt16LE(56);
  const types = Array.from({ length: phnum }, (_, i) => file.readUInt32LE(phoff + i * phentsize));
  assert.not.ok(types.includes(3), 'no PT_INTERP: static');
});

test("the BPF object holds the struct_ops map and the scheduler's programs", () => {
  const r = spawnSync('bpftool', ['btf', 'dump', 'file', join(outDir, 'scx_ktstr.bpf.o')], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /DATASEC '\.struct_ops'/);
  for (const m of ['ktstr_ops', 'ktstr_patient_ops']) assert.match(r.stdout, new RegExp(`VAR '${m}'`), m);
  for (const p of [
    'ktstr_select_cpu',
    'ktstr_enqueue',
    'ktstr_dispatch',
    'ktstr_tick',
    'ktstr_running',
    'ktstr_stopping',
    'ktstr_init_task',
    'ktstr_cgroup_init',
    'ktstr_cgroup_set_weight',
    'ktstr_init',
    'ktstr_exit',
  ]) {
    assert.match(r.stdout, new RegExp(`FUNC '${p}'`), p);
  }
  // nr_llcs: the topology the loader writes before load (ktstr_init's verified_insns follows it)
  for (const v of [
    'fail_verify',
    'verify_loop',
    'stall',
    'degrade',
    'slow',
    'crash_after_ns',
    'ignore_weights',
    'starve_cgroup',
    'long_slice_cgroup',
    'nr_llcs',
  ])
    assert.match(r.stdout, new RegExp(`VAR '${v}'`), v);
});

test("the loader's command line: --help, bad options and bad --crash-after/--panic-after values and cgroup names exit 2", () => {
  const help = spawnSync(binary, ['--help'], { encoding: 'utf8' });
  assert.is(help.status, 0);
  for (const k of [
    '--fail-verify',
    '--verify-loop',
    '--stall',
    '--degrade',
    '--slow',
    '--crash-after',
    '--panic-after',
    '--ignore-weights',
    '--starve-cgroup',
    '--long-slice-cgroup',
  ])
    assert.ok(help.stdout.includes(k), k);
  for (const args of [
    ['--bogus'],
    ['--crash-after', 'x'],
    ['--crash-after', '0'],
    ['--crash-after', '5s'],
    ['--panic-after', '0'],
    ['--panic-after', '-1'],
    ['--panic-after'],
    ['extra'],
    ['--starve-cgroup'],
    ['--starve-cgroup', ''],
    ['--starve-cgroup', 'ktstr/a'],
    ['--long-slice-cgroup', 'x'.repeat(64)],
    ['--long-slice-cgroup', '..'],
    ['--starve-cgroup', 'a', '--long-slice-cgroup', 'a'],
  ]) {
    const r = spawnSync(binary, args, { encoding: 'utf8' });
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
  }
});

test.run();
