// The shared-library closure walker against ldd as an oracle (ldd is used only here): node,
// qemu-system-x86_64 and scx_simple resolve to exactly the libraries ldd lists; RUNPATH with
// $ORIGIN and RPATH inheritance on binaries built for the test (when gcc is installed).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ElfError, readElf, sharedLibraryClosure } from '../../src/guest/elf-deps.js';
import { defaultKernelsDir, findOnPath } from '../../src/host/paths.js';

/** ldd's resolved paths, normalised (interpreter included, vdso and "not found" left out). */
function lddPaths(path: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const r = spawnSync('ldd', [path], { encoding: 'utf8', env });
  assert.is(r.status, 0, r.stderr);
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const arrow = /=>\s+(\/\S+)\s+\(0x/.exec(line);
    if (arrow) {
      out.push(arrow[1]!);
      continue;
    }
    const bare = /^\s+(\/\S+)\s+\(0x/.exec(line);
    if (bare) out.push(bare[1]!);
  }
  return out.map((p) => normalize(p)).sort();
}

function closurePaths(path: string): string[] {
  const c = sharedLibraryClosure([path]);
  assert.equal(c.missing, [], `nothing missing for ${path}`);
  return c.libraries.map((l) => l.path).sort();
}

const haveLdd = findOnPath('ldd') !== undefined;

test('readElf: node is a dynamic ELF64 x86-64 executable with an interpreter and libc', () => {
  const info = readElf(process.execPath);
  assert.is(info.elfClass, 2);
  assert.is(info.machine, 62);
  assert.is(info.interpreter, '/lib64/ld-linux-x86-64.so.2');
  assert.ok(info.needed.includes('libc.so.6'), info.needed.join(','));
  assert.ok(info.dynamic);
});

test('readElf: a non-ELF file throws ElfError; static busybox has an empty closure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-elf-'));
  try {
    writeFileSync(join(dir, 'script'), '#!/bin/sh\necho hi\n');
    assert.throws(
      () => readElf(join(dir, 'script')),
      (e: unknown) => e instanceof ElfError,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (busybox !== undefined && readElf(busybox).interpreter === undefined) {
    const c = sharedLibraryClosure([busybox]);
    assert.equal(c.libraries, []);
    assert.equal(c.files, [busybox]);
  }
});

test('closure of node equals ldd', () => {
  if (!haveLdd) return;
  assert.equal(closurePaths(process.execPath), lddPaths(process.execPath));
});

test('closure of qemu-system-x86_64 (50 libraries) equals ldd', () => {
  const qemu = findOnPath('qemu-system-x86_64');
  if (!haveLdd || qemu === undefined) {
    console.log('  (qemu or ldd missing: skipped)');
    return;
  }
  const ours = closurePaths(qemu);
  assert.ok(ours.length > 30, `${ours.length} libraries`);
  assert.equal(ours, lddPaths(qemu));
});

test('closure of scx_simple equals ldd: libelf, libz, libc and the interpreter', () => {
  const kernels = defaultKernelsDir();
  const scx = kernels === undefined ? undefined : join(kernels, '6.12.117-sched_ext', 'schedulers', 'scx_simple');
  if (!haveLdd || scx === undefined || !existsSync(scx)) {
    console.log('  (scx_simple or ldd missing: skipped)');
    return;
  }
  const ours = closurePaths(scx);
  assert.equal(ours, lddPaths(scx));
  const names = sharedLibraryClosure([scx]).libraries.map((l) => l.name);
  for (const n of ['libelf.so.1', 'libz.so.1', 'libc.so.6']) assert.ok(names.includes(n), n);
  const c = sharedLibraryClosure([scx]);
  assert.equal(c.files[0], scx, 'the root comes first');
  assert.ok(c.files.includes('/lib64/ld-linux-x86-64.so.2'));
});

test('RUNPATH with $ORIGIN, and RPATH inherited by dependencies (built with gcc)', () => {
  const gcc = findOnPath('gcc');
  if (gcc === undefined || !haveLdd) {
    console.log('  (gcc or ldd missing: skipped)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-elf-'));
  try {
    for (const d of ['lib', 'lib2', 'rlib']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'b.c'), 'int b(void) { return 2; }\n');
    writeFileSync(join(dir, 'a.c'), 'int b(void); int a(void) { return b() + 1; }\n');
    writeFileSync(join(dir, 'main.c'), 'int a(void); int main(void) { return a(); }\n');
    const cc = (args: string[]): void => {
      const r = spawnSync(gcc, args, { cwd: dir, encoding: 'utf8' });
      assert.is(r.status, 0, r.stderr);
    };
    cc(['-shared', '-fPIC', '-o', 'rlib/libb.so', 'b.c']);
    // lib/liba.so has no search path of its own; lib2/liba.so has RUNPATH $ORIGIN/../rlib
    cc(['-shared', '-fPIC', '-o', 'lib/liba.so', 'a.c', '-Lrlib', '-lb']);
    cc([
      '-shared',
      '-fPIC',
      '-o',
      'lib2/liba.so',
      'a.c',
      '-Lrlib',
      '-lb',
      '-Wl,--enable-new-dtags',
      '-Wl,-rpath,$ORIGIN/../rlib',
    ]);
    // RUNPATH: the executable's applies to its own DT_NEEDED only; liba brings its own
    cc([
      '-o',
      'prog-runpath',
      'main.c',
      '-Llib2',
      '-la',
      '-Wl,-rpath-link,rlib',
      '-Wl,--enable-new-dtags',
      '-Wl,-rpath,$ORIGIN/lib2',
    ]);
    // RPATH (no RUNPATH): inherited, so liba finds libb through the executable's RPATH
    cc([
      '-o',
      'prog-rpath',
      'main.c',
      '-Llib',
      '-la',
      '-Wl,-rpath-link,rlib',
      '-Wl,--disable-new-dtags',
      '-Wl,-rpath,$ORIGIN/lib:$ORIGIN/rlib',
    ]);
    // RUNPATH is not inherited: libb, needed by lib/liba.so, is not found (ldd agrees)
    cc([
      '-o',
      'prog-lost',
      'main.c',
      '-Llib',
      '-la',
      '-Wl,-rpath-link,rlib',
      '-Wl,--enable-new-dtags',
      '-Wl,-rpath,$ORIGIN/lib:$ORIGIN/rlib',
    ]);

    assert.equal(readElf(join(dir, 'prog-runpath')).runpath, ['$ORIGIN/lib2']);
    assert.equal(readElf(join(dir, 'lib2', 'liba.so')).runpath, ['$ORIGIN/../rlib']);
    const runpath = closurePaths(join(dir, 'prog-runpath'));
    assert.ok(
      runpath.includes(join(dir, 'lib2', 'liba.so')) && runpath.includes(join(dir, 'rlib', 'libb.so')),
      runpath.join(' '),
    );
    assert.equal(runpath, lddPaths(join(dir, 'prog-runpath')));

    const rpath = readElf(join(dir, 'prog-rpath'));
    assert.equal(rpath.rpath, ['$ORIGIN/lib', '$ORIGIN/rlib']);
    assert.equal(rpath.runpath, []);
    const ours = closurePaths(join(dir, 'prog-rpath'));
    assert.ok(ours.includes(join(dir, 'rlib', 'libb.so')), 'libb found through the inherited RPATH');
    assert.equal(ours, lddPaths(join(dir, 'prog-rpath')));

    const lost = sharedLibraryClosure([join(dir, 'prog-lost')]);
    assert.equal(lost.missing, [{ name: 'libb.so', neededBy: join(dir, 'lib', 'liba.so') }]);
    assert.match(spawnSync('ldd', [join(dir, 'prog-lost')], { encoding: 'utf8' }).stdout, /libb\.so => not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a library that cannot be found is reported as missing', () => {
  const gcc = findOnPath('gcc');
  if (gcc === undefined) return;
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-elf-'));
  try {
    writeFileSync(join(dir, 'c.c'), 'int c(void) { return 3; }\n');
    writeFileSync(join(dir, 'main.c'), 'int c(void); int main(void) { return c(); }\n');
    assert.is(spawnSync(gcc, ['-shared', '-fPIC', '-o', join(dir, 'libgone.so'), join(dir, 'c.c')]).status, 0);
    assert.is(spawnSync(gcc, ['-o', join(dir, 'prog'), join(dir, 'main.c'), `-L${dir}`, '-lgone']).status, 0);
    const c = sharedLibraryClosure([join(dir, 'prog')]);
    assert.equal(c.missing, [{ name: 'libgone.so', neededBy: join(dir, 'prog') }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
