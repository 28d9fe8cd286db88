// Issue 6: the kernel cache is written atomically and guarded by a lock. Commit/replace/
// remove; a live lock holder blocks a second builder, a dead one's lock is broken and its
// staging directory swept; a real `kernel build` (on a stand-in source tree) that is killed
// midway — SIGKILL or SIGINT — leaves no entry, and one that finishes leaves a whole entry.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildKernel, KernelBuildError } from '../../src/kernel/build.js';
import { CacheLockedError, KernelCache, type KernelMetadata } from '../../src/kernel/cache.js';
import { repoPath } from '../helpers/repo.js';
import { makeFakeTree } from './fake-tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'ktstr-cache-test-'));
const cli = repoPath('bin', 'ktstr-wasm');

function meta(label: string): KernelMetadata {
  return {
    label,
    version: '6.12.1',
    configHash: 'c',
    fragmentHash: 'f',
    source: { kind: 'tree', path: '/x' },
    builtAt: new Date().toISOString(),
    buildSeconds: 1,
    files: {},
    schedulers: [],
    builtBy: 'test',
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    if (cond()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

test('commit is atomic: nothing is listed until the rename; replace needs the flag', () => {
  const cache = new KernelCache(join(tmp, 'c1'));
  const lock = cache.lock();
  try {
    const staging = lock.stage('k1');
    writeFileSync(join(staging, 'bzImage'), 'x');
    assert.equal(cache.list(), [], 'a staging directory is not an entry');
    lock.commit(staging, meta('k1'));
    assert.equal(
      cache.list().map((e) => e.label),
      ['k1'],
    );
    assert.is(cache.get('k1')!.metadata.version, '6.12.1');
    const again = lock.stage('k1');
    writeFileSync(join(again, 'bzImage'), 'y');
    assert.throws(() => lock.commit(again, meta('k1')), /already has k1/);
    lock.commit(again, { ...meta('k1'), version: '6.12.2' }, { replace: true });
    assert.is(cache.get('k1')!.metadata.version, '6.12.2');
    assert.is(readFileSync(join(cache.root, 'k1', 'bzImage'), 'utf8'), 'y');
    assert.ok(lock.remove('k1'));
    assert.not.ok(lock.remove('k1'));
    assert.not.ok(lock.remove('../c1'));
    assert.equal(cache.list(), []);
    assert.equal(
      readdirSync(cache.root).filter((n) => n !== '.lock'),
      [],
      'no staging or trash left',
    );
  } finally {
    lock.release();
  }
});

test('entries without metadata.json or with garbage in it are not listed', () => {
  const cache = new KernelCache(join(tmp, 'c2'));
  mkdirSync(join(cache.root, 'half'), { recursive: true });
  writeFileSync(join(cache.root, 'half', 'bzImage'), 'x');
  mkdirSync(join(cache.root, 'garbage'));
  writeFileSync(join(cache.root, 'garbage', 'bzImage'), 'x');
  writeFileSync(join(cache.root, 'garbage', 'metadata.json'), '{"label": 5');
  assert.equal(cache.list(), []);
});

test("the lock: a live holder blocks, a dead holder's lock is broken and its staging swept", async () => {
  const root = join(tmp, 'c3');
  const cache = new KernelCache(root);
  // a live holder: a child process that takes the lock and waits
  const holder = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { KernelCache } from ${JSON.stringify(repoPath('dist', 'src', 'kernel', 'cache.js'))};
     const l = new KernelCache(${JSON.stringify(root)}).lock(); l.stage('dying'); console.log('locked'); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
    assert.throws(
      () => cache.lock(),
      (e: unknown) => e instanceof CacheLockedError && e.ownerPid === holder.pid,
    );
    holder.kill('SIGKILL');
    await exited(holder);
    assert.ok(
      readdirSync(root).some((n) => n.startsWith('.staging-')),
      'the dead builder left a staging directory',
    );
    const lock = cache.lock(); // stale: broken
    try {
      assert.not.ok(
        readdirSync(root).some((n) => n.startsWith('.staging-')),
        'swept',
      );
    } finally {
      lock.release();
    }
  } finally {
    holder.kill('SIGKILL');
  }
});

function fragment(dir: string, text: string): string {
  const p = join(dir, 'frag.config');
  writeFileSync(p, text);
  return p;
}

test('buildKernel on a stand-in tree: merged config checked, entry complete, work tree gone', async () => {
  const dir = join(tmp, 'b1');
  const tree = makeFakeTree(join(dir, 'tree'));
  const cache = new KernelCache(join(dir, 'cache'));
  let log = '';
  const r = await buildKernel({
    source: { kind: 'tree', path: tree },
    fragment: fragment(dir, 'CONFIG_WANTED=y\n# CONFIG_BASE is not set\n'),
    schedulers: false,
    cache,
    out: {
      write: (s) => {
        log += s;
      },
    },
  });
  assert.ok(r.entry, log);
  const e = cache.get('6.12.999-sched_ext')!;
  assert.ok(e, 'listed');
  for (const f of ['bzImage', 'vmlinux', 'config', 'fragment.config', 'metadata.json'])
    assert.ok(existsSync(join(e.dir, f)), f);
  const config = readFileSync(join(e.dir, 'config'), 'utf8');
  assert.match(config, /^CONFIG_WANTED=y$/m);
  assert.match(config, /^# CONFIG_BASE is not set$/m);
  assert.is(e.metadata.version, '6.12.999');
  assert.is(e.metadata.buildSteps, 5);
  assert.is(e.metadata.files.bzImage.bytes, 'fake-bzImage\n'.length);
  assert.match(e.metadata.configHash, /^[0-9a-f]{64}$/);
  assert.equal(
    readdirSync(cache.root).filter((n) => n.startsWith('.') && n !== '.lock'),
    [],
    'no work or staging directory left',
  );
  assert.not.ok(existsSync(join(cache.root, '.lock')), 'lock released');
  assert.not.ok(existsSync(join(tree, '.config')), 'the source tree stays clean (out-of-tree build)');
  await buildKernel({
    source: { kind: 'tree', path: tree },
    fragment: fragment(dir, 'CONFIG_WANTED=y\n'),
    schedulers: false,
    cache,
    out: { write: () => {} },
  }).then(
    () => assert.unreachable('a second build of the same label needs --force'),
    (err: Error) => assert.match(err.message, /already has 6.12.999-sched_ext/),
  );
});

test('buildKernel fails listing the options Kconfig dropped, and leaves nothing', async () => {
  const dir = join(tmp, 'b2');
  const tree = makeFakeTree(join(dir, 'tree'));
  const cache = new KernelCache(join(dir, 'cache'));
  try {
    await buildKernel({
      source: { kind: 'tree', path: tree },
      fragment: fragment(dir, 'CONFIG_WANTED=y\nCONFIG_DROPME=y\n'),
      schedulers: false,
      cache,
      out: { write: () => {} },
    });
    assert.unreachable('dropped option');
  } catch (e) {
    assert.instance(e, KernelBuildError);
    assert.match((e as Error).message, /dropped 1 option/);
    assert.match((e as Error).message, /CONFIG_DROPME: wanted y, got off\/absent/);
  }
  assert.equal(cache.list(), []);
  assert.equal(readdirSync(cache.root), []);
});

for (const sig of ['SIGKILL', 'SIGINT'] as const) {
  test(`kernel build killed midway with ${sig}: no entry; the next build succeeds`, async () => {
    const dir = join(tmp, `kill-${sig}`);
    const tree = makeFakeTree(join(dir, 'tree'), { slow: true });
    const env = { ...process.env, XDG_CACHE_HOME: join(dir, 'xdg'), NO_COLOR: '1' };
    const root = join(dir, 'xdg', 'ktstr-wasm', 'kernels');
    const child = spawn(
      process.execPath,
      [cli, 'kernel', 'build', '--source', tree, '--no-schedulers', '--fragment', fragment(dir, 'CONFIG_X=y\n')],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (d: Buffer) => {
      output += d;
    });
    child.stderr!.on('data', (d: Buffer) => {
      output += d;
    });
    const marker = join(tree, 'building');
    let makePid = NaN;
    try {
      await waitFor(
        () => existsSync(marker) && readFileSync(marker, 'utf8').trim() !== '',
        'the build to reach make bzImage',
      );
      makePid = Number(readFileSync(marker, 'utf8').trim());
      assert.ok(
        readdirSync(root).some((n) => n.startsWith('.build-')),
        'a work directory exists during the build',
      );
      child.kill(sig);
      const end = await exited(child);
      if (sig === 'SIGINT') {
        assert.is(end.code, 1, output);
        assert.match(output, /interrupted/);
        assert.equal(readdirSync(root), [], 'SIGINT: work dir, staging and lock cleaned up at once');
      } else {
        assert.is(end.signal, 'SIGKILL');
      }
      assert.equal(new KernelCache(root).list(), [], 'no entry');
    } finally {
      child.kill('SIGKILL');
      if (Number.isInteger(makePid) && makePid > 0) {
        try {
          process.kill(-makePid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    // the next build takes the stale lock, sweeps, and succeeds
    rmSync(join(tree, 'slow'));
    rmSync(marker);
    const cache = new KernelCache(root);
    await buildKernel({
      source: { kind: 'tree', path: tree },
      fragment: fragment(dir, 'CONFIG_X=y\n'),
      schedulers: false,
      cache,
      out: { write: () => {} },
    });
    assert.equal(
      cache.list().map((e) => e.label),
      ['6.12.999-sched_ext'],
    );
    assert.equal(
      readdirSync(root).filter((n) => n.startsWith('.')),
      [],
      "the dead build's directories are swept",
    );
  });
}

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
