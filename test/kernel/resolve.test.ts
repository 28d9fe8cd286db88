// Issue 6: --kernel resolution order: an explicit spec (bzImage path, kernel dir, source
// tree, cache label, version), then KTSTR_KERNEL, then auto-discovery (cache newest first,
// then the prebuilt kernels); unknown specs are errors naming what exists.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelCache, type KernelMetadata } from '../../src/kernel/cache.js';
import { discoverKernels } from '../../src/kernel/discover.js';
import { bootImage, knownKernels, KernelNotFoundError, resolveKernel } from '../../src/kernel/resolve.js';

const tmp = mkdtempSync(join(tmpdir(), 'ktstr-resolve-'));
const cacheRoot = join(tmp, 'cache');
const shared = join(tmp, 'shared');
const cache = new KernelCache(cacheRoot);

function kernelDir(dir: string, o: { config?: string; schedulers?: boolean } = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bzImage'), 'bz');
  writeFileSync(join(dir, 'vmlinux'), 'elf');
  if (o.config) writeFileSync(join(dir, 'config'), `#\n# Linux/x86 ${o.config} Kernel Configuration\n#\n`);
  if (o.schedulers) mkdirSync(join(dir, 'schedulers'));
  return dir;
}

function addCached(label: string, version: string, builtAt: string): void {
  const lock = cache.lock();
  try {
    const s = lock.stage(label);
    kernelDir(s, { schedulers: true });
    const m: KernelMetadata = {
      label,
      version,
      configHash: 'h',
      fragmentHash: 'f',
      source: { kind: 'tarball', path: '/t' },
      builtAt,
      buildSeconds: 1,
      files: {},
      schedulers: [],
      builtBy: 't',
    };
    lock.commit(s, m);
  } finally {
    lock.release();
  }
}

addCached('6.12.50-sched_ext', '6.12.50', '2026-01-01T00:00:00.000Z');
addCached('6.13.2-mine', '6.13.2', '2026-02-01T00:00:00.000Z');
kernelDir(join(shared, '6.12.117-sched_ext'), { config: '6.12.117', schedulers: true });
mkdirSync(join(shared, 'empty'));
writeFileSync(join(shared, 'README.md'), 'not a kernel');
const tree = join(tmp, 'linux');
mkdirSync(join(tree, 'kernel'), { recursive: true });
writeFileSync(join(tree, 'Makefile'), '');
writeFileSync(join(tree, 'Kconfig'), '');
const o = { cache, sharedDir: shared, env: {} as NodeJS.ProcessEnv };

test('auto-discovery order: cache newest build first, then prebuilt; junk skipped', () => {
  assert.equal(
    knownKernels(o).map((k) => `${k.label}:${k.origin}`),
    ['6.13.2-mine:cache', '6.12.50-sched_ext:cache', '6.12.117-sched_ext:shared'],
  );
  const auto = resolveKernel(undefined, o);
  assert.is(auto.label, '6.13.2-mine');
  assert.is(auto.via, 'auto');
  assert.is(auto.schedulersDir, join(cacheRoot, '6.13.2-mine', 'schedulers'));
});

test('a spec wins over KTSTR_KERNEL, which wins over auto-discovery', () => {
  const env = { KTSTR_KERNEL: '6.12.50-sched_ext' };
  assert.is(resolveKernel(undefined, { ...o, env }).label, '6.12.50-sched_ext');
  assert.is(resolveKernel(undefined, { ...o, env }).via, 'KTSTR_KERNEL');
  assert.is(resolveKernel('6.12.117-sched_ext', { ...o, env }).label, '6.12.117-sched_ext');
  assert.is(resolveKernel('6.12.117-sched_ext', { ...o, env }).via, 'spec');
  assert.throws(
    () => resolveKernel(undefined, { ...o, env: { KTSTR_KERNEL: 'nope' } }),
    /KTSTR_KERNEL=nope: unknown kernel/,
  );
});

test('spec forms: bzImage path, kernel dir, label, version (newest match), source tree', () => {
  const bz = join(shared, '6.12.117-sched_ext', 'bzImage');
  const byPath = resolveKernel(bz, o);
  assert.is(byPath.origin, 'path');
  assert.is(byPath.bzImage, bz);
  const byDir = resolveKernel(join(shared, '6.12.117-sched_ext'), o);
  assert.is(byDir.version, '6.12.117', 'version from the config header');
  assert.ok(byDir.vmlinux?.endsWith('vmlinux'));
  assert.is(resolveKernel('6.13.2-mine', o).origin, 'cache');
  assert.is(resolveKernel('6.12', o).label, '6.12.117-sched_ext', 'the newest 6.12.x');
  assert.is(resolveKernel('6.12.50', o).label, '6.12.50-sched_ext');
  assert.is(resolveKernel('6.13', o).label, '6.13.2-mine');
  assert.throws(() => resolveKernel(tree, o), /without arch\/x86\/boot\/bzImage: build it first/);
  mkdirSync(join(tree, 'arch', 'x86', 'boot'), { recursive: true });
  writeFileSync(join(tree, 'arch', 'x86', 'boot', 'bzImage'), 'bz');
  const t = resolveKernel(tree, o);
  assert.is(t.origin, 'tree');
  assert.is(t.bzImage, join(tree, 'arch', 'x86', 'boot', 'bzImage'));
});

test('bootImage: the vmlinux of a kernel directory or label, exactly the file of a path', () => {
  const dir = join(shared, '6.12.117-sched_ext');
  assert.is(bootImage(resolveKernel(dir, o)), join(dir, 'vmlinux'));
  assert.is(bootImage(resolveKernel('6.13.2-mine', o)), join(cacheRoot, '6.13.2-mine', 'vmlinux'));
  assert.is(bootImage(resolveKernel(join(dir, 'bzImage'), o)), join(dir, 'bzImage'), 'a named bzImage is booted as is');
  const noElf = kernelDir(join(tmp, 'no-vmlinux'));
  rmSync(join(noElf, 'vmlinux'));
  assert.is(bootImage(resolveKernel(noElf, o)), join(noElf, 'bzImage'));
});

test('unknown specs: errors that list the known kernels', () => {
  const check = (spec: string, re: RegExp): void =>
    assert.throws(
      () => resolveKernel(spec, o),
      (e: unknown) =>
        e instanceof KernelNotFoundError &&
        re.test((e as Error).message) &&
        /6\.12\.117-sched_ext \(shared, 6\.12\.117\)/.test((e as Error).message),
      spec,
    );
  check('6.14', /no kernel with version 6.14/);
  check('nonesuch', /unknown kernel 'nonesuch'/);
  check('./missing/bzImage', /no such file or directory/);
  assert.throws(
    () => resolveKernel(undefined, { cache: new KernelCache(join(tmp, 'none')), sharedDir: null, env: {} }),
    /no kernels are known: build one/,
  );
});

test('discoverKernels (doctor) includes cache entries', () => {
  const found = discoverKernels({ XDG_CACHE_HOME: join(tmp, 'xdg'), KTSTR_KERNELS_DIR: shared });
  assert.equal(
    found.map((k) => k.source),
    ['shared'],
  );
  const xdgCache = new KernelCache(join(tmp, 'xdg', 'ktstr-wasm', 'kernels'));
  const lock = xdgCache.lock();
  const s = lock.stage('c1');
  kernelDir(s);
  lock.commit(s, {
    label: 'c1',
    version: '6.12.1',
    configHash: 'h',
    fragmentHash: 'f',
    source: { kind: 'tree', path: '/t' },
    builtAt: 'x',
    buildSeconds: 1,
    files: {},
    schedulers: [],
    builtBy: 't',
  });
  lock.release();
  assert.equal(
    discoverKernels({ XDG_CACHE_HOME: join(tmp, 'xdg'), KTSTR_KERNELS_DIR: shared }).map(
      (k) => `${k.label}:${k.source}`,
    ),
    ['c1:cache', '6.12.117-sched_ext:shared'],
  );
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
