// Issue 6: the `kernel` command end to end on a stand-in source tree: build (config merged
// and checked, entry written), list (table and --json, with the kernel's machine snapshots),
// resolve, remove (snapshots too); a kernel that names
// nothing exits 2 (a usage error, as --kernel in every command) and the message names what
// exists; a failed build exits 1; bad usage exits 2.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoPath } from '../helpers/repo.js';
import { makeFakeTree } from './fake-tree.js';
import { SnapshotStore, RAM_FILE, STATE_FILE } from '../../src/vmm/snapshot/store.js';
import { encodeState } from '../../src/vmm/snapshot/state-file.js';

const tmp = mkdtempSync(join(tmpdir(), 'ktstr-kernel-cli-'));
const tree = makeFakeTree(join(tmp, 'tree'));
const frag = join(tmp, 'frag.config');
writeFileSync(frag, 'CONFIG_X=y\n');
const env: NodeJS.ProcessEnv = {
  ...process.env,
  XDG_CACHE_HOME: join(tmp, 'xdg'),
  KTSTR_KERNELS_DIR: join(tmp, 'no-shared'),
  NO_COLOR: '1',
};
delete env.KTSTR_KERNEL;

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [repoPath('bin', 'ktstr-wasm'), ...args], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('kernel list with an empty cache says how to build one', () => {
  const r = cli('kernel', 'list');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /no kernels .*kernel build/);
});

test('kernel build --source TREE, then list (with its snapshots), resolve and remove (with them)', async () => {
  const b = cli('kernel', 'build', '--source', tree, '--no-schedulers', '--fragment', frag, '--label', 'fake one');
  assert.is(b.status, 0, b.stderr);
  assert.match(b.stdout, /built fake-one \(6\.12\.999\)/);
  assert.match(b.stdout, /bzImage .* sha256 [0-9a-f]{64}/);
  assert.match(b.stderr, /config: all 1 fragment options present/);
  const table = cli('kernel', 'list');
  assert.match(table.stdout, /^LABEL\s+VERSION\s+ORIGIN/m);
  assert.match(table.stdout, /^fake-one\s+6\.12\.999\s+cache\s/m);
  const json = JSON.parse(cli('kernel', 'list', '--json').stdout) as {
    kernels: Array<{ label: string; origin: string; configHash: string; source: { kind: string } }>;
  };
  assert.equal(
    json.kernels.map((k) => [k.label, k.origin, k.source.kind]),
    [['fake-one', 'cache', 'tree']],
  );
  assert.match(json.kernels[0].configHash, /^[0-9a-f]{64}$/);
  const res = cli('kernel', 'resolve', '6.12', '--json');
  assert.is(res.status, 0, res.stderr);
  assert.is((JSON.parse(res.stdout) as { label: string }).label, 'fake-one');
  // a machine snapshot of this kernel (as a cell saves one): listed with it, removed with it
  const store = new SnapshotStore(join(tmp, 'xdg', 'ktstr-wasm', 'snapshots'));
  await store.save({ kernel: 'fake-one', topology: '1n1l2c1t', memoryMiB: 576 }, (staging) => {
    writeFileSync(join(staging, RAM_FILE), Buffer.alloc(3 * 2 ** 20, 1));
    writeFileSync(join(staging, STATE_FILE), encodeState({}));
  });
  await store.save({ kernel: 'other', topology: '1n1l2c1t', memoryMiB: 576 }, (staging) => {
    writeFileSync(join(staging, RAM_FILE), 'x');
    writeFileSync(join(staging, STATE_FILE), encodeState({}));
  });
  assert.match(cli('kernel', 'list').stdout, /^fake-one\s+6\.12\.999\s+cache\s.*\s1 \(3 MiB\)\s/m);
  const listed = JSON.parse(cli('kernel', 'list', '--json').stdout) as {
    kernels: Array<{ snapshots: Array<{ topology: string; memoryMiB: number; diskBytes: number }> }>;
  };
  assert.equal(
    listed.kernels[0].snapshots.map((e) => [e.topology, e.memoryMiB]),
    [['1n1l2c1t', 576]],
  );
  const again = cli('kernel', 'build', '--source', tree, '--no-schedulers', '--fragment', frag, '--label', 'fake-one');
  assert.is(again.status, 1);
  assert.match(again.stderr, /already has fake-one/, again.stderr);
  const rm = cli('kernel', 'remove', 'fake-one');
  assert.is(rm.status, 0, rm.stderr);
  assert.match(rm.stdout, /removed fake-one and its 1 snapshot\(s\)/);
  assert.equal(
    store.list().map((e) => e.key?.kernel),
    ['other'],
    "another kernel's snapshot stays",
  );
  assert.match(cli('kernel', 'list').stdout, /no kernels/);
});

test('errors: unknown label, unknown spec, bad source, bad --jobs', () => {
  const rm = cli('kernel', 'remove', 'nope');
  assert.is(rm.status, 2);
  assert.match(rm.stderr, /no cached kernel 'nope'; cached: none/, rm.stderr);
  const res = cli('kernel', 'resolve', 'nope');
  assert.is(res.status, 2);
  assert.match(res.stderr, /unknown kernel 'nope'.*no kernels are known/);
  const src = cli('kernel', 'build', '--source', join(tmp, 'missing'));
  assert.is(src.status, 2);
  assert.match(src.stderr, /no such file or directory/);
  const notTree = cli('kernel', 'build', '--source', tmp);
  assert.is(notTree.status, 2);
  assert.match(notTree.stderr, /not a kernel source tree/);
  assert.is(cli('kernel', 'build', '--jobs', '0').status, 2);
  assert.is(cli('kernel', 'build', '--version', 'six').status, 2);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
