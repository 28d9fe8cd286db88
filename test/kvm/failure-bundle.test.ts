// Issue 15's failure bundle, for real (KVM: inside the emulated test host here and in CI):
// `ktstr-wasm sweep` (--keep-dumps failures, the default) over the fixture schedulers on the prebuilt sched_ext
// kernel. ktstr_panic crashes the guest kernel a second after attaching — its programs are
// still loaded when the dump is taken — so `ktstr-wasm inspect --core` of its guest.core must
// list the struct_ops programs the healthy scx-ktstr cell's live run read from guest memory
// (the same scx_ktstr BPF object; the panicking cell itself never reaches the host's read).
// ktstr_crash (scx_bpf_error) gets its exit parsed into exit-info.json. Every bundle has its
// files, a sparse core (disk < apparent size) with the guest's VMCOREINFO.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import { runKtstr, type CliRun } from '../helpers/ktstr-cli.js';
import * as assert from 'uvu/assert';
import { packageRoot } from '../../src/paths.js';
import type { SweepResult } from '../../src/sweep/result.js';

// bundles are hundreds of MiB (sparse): inside the test host /tmp is its initramfs, /dev/shm a tmpfs of its own
const tmp = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ktstr-bundle-kvm-'));
const out = join(tmp, 'out');
const vmlinux = join(
  process.env.KTSTR_KERNELS_DIR ?? join(packageRoot(), '..', 'shared', 'kernels'),
  '6.12.117-sched_ext',
  'vmlinux',
);
const verbose = process.env.KTSTR_TEST_VERBOSE === '1';

type Run = CliRun;

const ktstr = (args: string[]): Promise<Run> => runKtstr([...args], { verbose });

const show = (r: Run): string => `\n--- stdout ---\n${r.stdout.slice(-5000)}\n--- stderr ---\n${r.stderr.slice(-3000)}`;
const json = (p: string): Record<string, any> => JSON.parse(readFileSync(p, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

test("sweep: failure bundles with their files; the panicked guest's core lists the live run's programs", async () => {
  assert.ok(existsSync(vmlinux), `the prebuilt kernel's vmlinux at ${vmlinux}`);
  const resultFile = join(tmp, 'sweep.json');
  const r = await ktstr([
    'sweep',
    '--jobs',
    '1',
    '--scheduler',
    'scx-ktstr',
    '--scheduler',
    'ktstr_panic',
    '--scheduler',
    'ktstr_crash',
    'tiny-1llc',
    '--out',
    out,
    '--json',
    resultFile,
  ]);
  assert.is(r.code, 1, `exit 1: cells failed${show(r)}`);
  const res = JSON.parse(readFileSync(resultFile, 'utf8')) as SweepResult;
  const by = new Map(res.cells.map((c) => [c.scheduler, c]));
  const healthy = by.get('scx-ktstr')!;
  const panic = by.get('ktstr_panic')!;
  const crash = by.get('ktstr_crash')!;
  assert.ok(healthy.passed, `scx-ktstr passes${show(r)}`);
  assert.is(panic.failure?.kind, 'guest', show(r));
  assert.is(crash.failure?.kind, 'crash', show(r));
  assert.ok(healthy.programs.length >= 5, 'the live run read the programs');

  assert.is(healthy.bundle, undefined, 'no bundle for a passing cell (--keep-dumps failures)');
  for (const c of [panic, crash]) {
    assert.ok(c.bundle !== undefined, `${c.id}: a bundle; ${c.bundleError ?? ''}${show(r)}`);
    assert.ok(c.bundle!.startsWith(out + '/'), `${c.id}: under --out`);
    const files = readdirSync(c.bundle!).sort();
    for (const f of [
      'console.log',
      'dump.json',
      'exit-info.json',
      'guest.core',
      'monitor.json',
      'result.json',
      'scheduler.log',
      'workers.json',
    ]) {
      assert.ok(files.includes(f), `${c.id}: ${f} in ${files.join(', ')}`);
    }
    const dump = json(join(c.bundle!, 'dump.json'));
    const st = statSync(join(c.bundle!, 'guest.core'));
    assert.is(st.size, dump.core.apparentBytes);
    assert.ok(st.blocks * 512 < st.size, `${c.id}: the core is sparse (${st.blocks * 512} on disk of ${st.size})`);
    assert.ok(dump.vmcoreinfo === true, `${c.id}: the guest's VMCOREINFO is in the core (${dump.vmcoreinfoProblem})`);
    assert.ok(
      dump.vcpus.length >= 1 && dump.vcpus.some((v: { registers: boolean }) => v.registers),
      `${c.id}: some vCPU's registers: ${JSON.stringify(dump.vcpus)}`,
    );
    assert.is(json(join(c.bundle!, 'result.json')).id, c.id);
    console.log(
      `  ${c.id}: guest.core ${(st.size / 2 ** 20).toFixed(1)} MiB apparent, ${((st.blocks * 512) / 2 ** 20).toFixed(1)} MiB on disk; vCPUs ${JSON.stringify(dump.vcpus)}; end ${JSON.stringify(dump.vmEnd)}`,
    );
  }
  assert.ok(r.stdout.includes(`bundle: ${panic.bundle}`), `the failure block names the bundle${show(r)}`);
  assert.ok(r.stdout.includes(`bundle: ${crash.bundle}`), 'the crash block names its bundle');
  assert.match(
    readFileSync(join(panic.bundle!, 'console.log'), 'utf8'),
    /Kernel panic - not syncing/,
    'the console tail has the panic',
  );
  const exit = json(join(crash.bundle!, 'exit-info.json'));
  assert.is(exit.failure.kind, 'crash');
  assert.match(
    String(exit.exit?.line ?? ''),
    /crash-after|scx_bpf_error/,
    `the scheduler's exit: ${JSON.stringify(exit)}`,
  );

  const inspect = await ktstr(['inspect', '--vmlinux', vmlinux, '--core', join(panic.bundle!, 'guest.core'), '--json']);
  assert.is(inspect.code, 0, show(inspect));
  const report = JSON.parse(inspect.stdout) as { layout: { source: string }; programs: { name: string }[] };
  assert.is(report.layout.source, 'vmcoreinfo', 'inspect located the kernel through the VMCOREINFO note');
  const names = (ps: { name: string }[]): string[] => [...new Set(ps.map((p) => p.name))].sort();
  assert.equal(
    names(report.programs),
    names(healthy.programs),
    'the core of the panicked guest lists the programs the live run read',
  );
  const late = await ktstr(['inspect', '--vmlinux', vmlinux, '--core', join(crash.bundle!, 'guest.core'), '--json']);
  assert.is(late.code, 0, show(late));
  console.log(
    `  ktstr_crash's core (dumped after the scheduler exited and the guest powered off) lists ${(JSON.parse(late.stdout) as { programs: unknown[] }).programs.length} programs`,
  );
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
