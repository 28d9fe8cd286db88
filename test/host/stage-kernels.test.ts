// Staging kernels for the test host: a source tree becomes a small kernel directory with the
// same label, a lone image keeps its label and the config beside it, a kernel directory is
// shared as it is; cleanup leaves nothing.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveKernelSpec } from '../../src/kernel/resolve.js';
import { stageKernels } from '../../src/host/stage-kernels.js';

test('tree, lone file and kernel directory keep their labels; cleanup removes the staging', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ktstr-stage-test-'));
  const env = { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache') };
  try {
    const tree = join(tmp, 'linux');
    for (const d of ['arch/x86/boot', 'kernel', 'tools/sched_ext/build/bin'])
      mkdirSync(join(tree, d), { recursive: true });
    writeFileSync(join(tree, 'Makefile'), 'x');
    writeFileSync(join(tree, 'Kconfig'), 'x');
    writeFileSync(join(tree, 'arch/x86/boot/bzImage'), 'bz');
    writeFileSync(join(tree, 'vmlinux'), 'not really an ELF');
    writeFileSync(join(tree, '.config'), '# Linux/x86 6.12.9 Kernel Configuration\nCONFIG_SCHED_CLASS_EXT=y\n');
    writeFileSync(join(tree, 'tools/sched_ext/build/bin/scx_simple'), 'elf');
    const lone = join(tmp, 'boot-dir');
    mkdirSync(lone);
    writeFileSync(join(lone, 'vmlinuz'), 'bz');
    writeFileSync(join(lone, 'config'), 'CONFIG_SCHED_CLASS_EXT=n\n');
    writeFileSync(join(lone, 'huge-unrelated-file'), 'x');
    const dir = join(tmp, '6.12.1-entry');
    mkdirSync(dir);
    writeFileSync(join(dir, 'bzImage'), 'bz');

    const kernels = [
      resolveKernelSpec(tree, 'spec'),
      resolveKernelSpec(join(lone, 'vmlinuz'), 'spec'),
      resolveKernelSpec(dir, 'spec'),
    ];
    const staged = stageKernels(kernels, env);
    assert.is(staged.specs.length, 3);
    staged.specs.forEach((spec, i) =>
      assert.is(resolveKernelSpec(spec, 'spec').label, kernels[i].label, `${spec} keeps label ${kernels[i].label}`),
    );
    assert.equal(readdirSync(staged.specs[0]).sort(), ['bzImage', 'config', 'schedulers', 'vmlinux']);
    assert.ok(existsSync(join(staged.specs[0], 'schedulers', 'scx_simple')));
    assert.equal(
      readdirSync(join(staged.specs[1], '..')).sort(),
      ['config', 'vmlinuz'],
      'only the image and its config, not the whole directory',
    );
    assert.is(staged.specs[2], dir, 'a kernel directory is shared as it is');
    assert.ok(staged.shareDirs.includes(dir));
    assert.ok(
      staged.shareDirs.every((d) => !d.startsWith('/tmp/') || d.startsWith(tmp)),
      'staging lives under the cache',
    );
    staged.cleanup();
    assert.equal(readdirSync(join(tmp, 'cache', 'ktstr-wasm', 'stage')), [], 'nothing left');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
