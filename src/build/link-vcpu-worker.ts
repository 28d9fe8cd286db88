// Build step (`npm run build:ts`, after tsc): writes dist/src/vmm/vcpu-worker.bundle.cjs, the vCPU
// worker and its imports linked into one module, atomically (a temporary file, then a rename),
// and prints one line. Exits non-zero with the reason when the worker cannot be linked.

import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { VCPU_WORKER_BUNDLE, VCPU_WORKER_ENTRY, linkVcpuWorker } from './vcpu-worker-bundle.js';

const tmp = `${VCPU_WORKER_BUNDLE}.${process.pid}.tmp`;
try {
  const bundle = linkVcpuWorker();
  writeFileSync(tmp, bundle.code);
  renameSync(tmp, VCPU_WORKER_BUNDLE);
  const bytes = Buffer.byteLength(bundle.code);
  console.log(`link-vcpu-worker: ${relative(process.cwd(), VCPU_WORKER_BUNDLE)}: ${bundle.modules.length} modules linked, ${bytes} bytes`);
} catch (e) {
  rmSync(tmp, { force: true });
  console.error(`link-vcpu-worker: cannot link ${VCPU_WORKER_ENTRY} into ${VCPU_WORKER_BUNDLE}: ${(e as Error).message}`);
  process.exitCode = 1;
}
