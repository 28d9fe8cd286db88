// Every vCPU thread loads src/vmm/vcpu-worker.ts and its imports before it can run its vCPU,
// and under emulation each module costs tens of ms per thread: the worker must load only the
// KVM wrapper, the port devices and the small modules they need — not src/kvm's index (the
// guest loop), the ACPI table builder or anything else. A resolve hook records the graph.
// (The build bundles this graph into one file, vcpu-worker.bundle.cjs, which is what vm.ts
// starts; test/build/bundles.test.ts checks the bundle holds exactly these modules.)

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoPath } from '../helpers/repo.js';

const ALLOWED = [
  'kvm/constants',
  'kvm/ioctl',
  'kvm/kick',
  'kvm/kvm',
  'kvm/layout',
  'kvm/native',
  'kvm/run',
  'kvm/structs',
  'vmm/acpi/pm',
  'vmm/devices/ports',
  'vmm/devices/serial',
  'vmm/vcpu-protocol',
  'vmm/vcpu-worker',
];

test('the vCPU worker loads only what a vCPU thread needs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-worker-imports-'));
  try {
    const log = join(dir, 'modules.txt');
    writeFileSync(
      join(dir, 'hook.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }`,
    );
    writeFileSync(
      join(dir, 'register.mjs'),
      `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(join(dir, 'hook.mjs')).href)});`,
    );
    writeFileSync(log, '');
    // Imported outside a worker, main() fails at once (no workerData); the graph is loaded by then.
    const worker = pathToFileURL(repoPath('dist', 'src', 'vmm', 'vcpu-worker.js')).href;
    spawnSync(process.execPath, [
      '--import',
      pathToFileURL(join(dir, 'register.mjs')).href,
      '-e',
      `import(${JSON.stringify(worker)}).catch(() => {})`,
    ]);
    const prefix = pathToFileURL(repoPath('dist', 'src')).href + '/';
    const loaded = [
      ...new Set(
        readFileSync(log, 'utf8')
          .split('\n')
          .filter((u) => u.startsWith(prefix))
          .map((u) => u.slice(prefix.length, -'.js'.length)),
      ),
    ].sort();
    assert.ok(
      loaded.includes('vmm/vcpu-worker') && loaded.includes('kvm/kvm'),
      `the trace saw the worker: ${loaded.join(', ')}`,
    );
    assert.equal(
      loaded.filter((m) => !ALLOWED.includes(m)),
      [],
      `vcpu-worker.js loads more than it needs: ${loaded.join(', ')}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
