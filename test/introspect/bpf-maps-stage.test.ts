// Stages the guest tools of the KVM maps test (test/kvm/bpf-maps-dump.test.ts) into
// build/bpf-maps-guest/root: Debian's bpftool and scx_qmap with their shared-library
// closures. The emulated test host copies only the project tree, so the KVM test finds them
// there. Skips where bpftool or the prebuilt scx_qmap is missing.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultKernelsDir } from '../../src/host/paths.js';
import { repoPath } from '../helpers/repo.js';
import { STAGE_DIR, stageTools } from '../kvm/bpf-maps-guest/guest-run.js';

const BPFTOOL = '/usr/sbin/bpftool';

test('bpftool and scx_qmap are staged with their libraries for the KVM maps test', () => {
  const kernels = defaultKernelsDir();
  const qmap = kernels === undefined ? undefined : join(kernels, '6.12.117-sched_ext', 'schedulers', 'scx_qmap');
  if (!existsSync(BPFTOOL) || qmap === undefined || !existsSync(qmap)) {
    console.log('  skipped: bpftool (apt-get install bpftool) or the prebuilt scx_qmap is missing');
    return;
  }
  const staged = stageTools(repoPath(STAGE_DIR), { '/usr/sbin/bpftool': BPFTOOL, '/sched/scx_qmap': qmap });
  assert.ok(
    staged.some((p) => /\/libelf\.so\.1$/.test(p)),
    `libelf staged: ${staged.join(' ')}`,
  );
  for (const p of staged) assert.ok(existsSync(repoPath(STAGE_DIR, p)), `${p} is in the stage`);
});

test.run();
