// `ktstr-wasm inspect` as users run it (a child process): usage errors exit 2, unreadable or
// wrong dumps exit 1 with a message naming the problem. The successful run on a real QEMU
// dump is in test/kvm/introspect-dump.test.ts.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoPath, repoRoot } from '../helpers/repo.js';
import { sharedVmlinux } from '../helpers/test-kernel.js';

const BIN = repoPath('bin', 'ktstr-wasm');
const vmlinux = sharedVmlinux();

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.KTSTR_DEBUG;
  const r = spawnSync(process.execPath, [BIN, 'inspect', ...args], { cwd: repoRoot(), env, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let tmp: string;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-inspect-'));
});
test.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

test('usage errors exit 2', () => {
  let r = run([]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /--vmlinux/);
  r = run(['--vmlinux', '/nonexistent/vmlinux', '--core', '/x', '--memory', '/y']);
  assert.is(r.status, 2);
  assert.match(r.stderr, /exactly one of --core FILE and --memory FILE/);
  r = run(['--vmlinux', '/nonexistent/vmlinux', '--core', '/x']);
  assert.is(r.status, 2);
  assert.match(r.stderr, /cannot read vmlinux \/nonexistent\/vmlinux: ENOENT/);
  r = run(['--vmlinux', '/x', '--core', '/y', '--cr3', '12']);
  assert.is(r.status, 2);
  assert.match(r.stderr, /--cr3 goes with --memory/);
});

test('a file that is not a vmlinux, a core that is not ELF, memory without the kernel: exit 1 with the reason', () => {
  const junk = join(tmp, 'junk');
  writeFileSync(junk, 'definitely not an ELF file, just text\n'.repeat(4));
  let r = run(['--vmlinux', junk, '--core', junk]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /not an ELF file/);
  if (vmlinux === undefined) {
    console.log('  (vmlinux cases skipped: the shared sched_ext kernel is missing)');
    return;
  }
  r = run(['--vmlinux', vmlinux, '--core', junk]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /junk: not an ELF file \(bad magic\)/);
  r = run(['--vmlinux', vmlinux, '--core', vmlinux]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /is not a core dump/);
  const zeros = join(tmp, 'zeros.raw');
  writeFileSync(zeros, new Uint8Array(8 << 20));
  r = run(['--vmlinux', vmlinux, '--memory', zeros, '--cr3', '0x1000']);
  assert.is(r.status, 1);
  assert.match(r.stderr, /linux_banner\) was not found in guest memory/);
});

test.run();
