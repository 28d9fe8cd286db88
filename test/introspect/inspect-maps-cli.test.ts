// `ktstr-wasm inspect --maps`: the help shows the maps examples, and --limit is checked before
// anything is read (the real listing is asserted against bpftool in test/kvm/bpf-maps-dump).

import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoPath, repoRoot } from '../helpers/repo.js';

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [repoPath('bin', 'ktstr-wasm'), 'inspect', ...args], {
    cwd: repoRoot(),
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help shows --maps with examples', () => {
  const r = run(['--help']);
  assert.is(r.status, 0);
  assert.match(r.stdout, /--maps\s+also list the guest's BPF maps/);
  assert.match(r.stdout, /inspect --vmlinux vmlinux --core guest\.core --maps\n/);
  assert.match(r.stdout, /--maps --limit 0 --json/);
});

test('--limit must be a count and goes with --maps: usage errors, exit 2', () => {
  let r = run(['--vmlinux', '/nonexistent/vmlinux', '--core', '/x', '--maps', '--limit', 'lots']);
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /--limit lots is not a count/);
  r = run(['--vmlinux', '/nonexistent/vmlinux', '--core', '/x', '--limit', '3']);
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /--limit goes with --maps/);
});

test.run();
