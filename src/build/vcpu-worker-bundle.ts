// Where the vCPU worker's one-file bundle lives, and how it is made: the compiled worker
// (dist/src/vmm/vcpu-worker.js) and the modules it imports, linked by esm-link.ts into
// dist/src/vmm/vcpu-worker.bundle.cjs, next to the original so import.meta.url-relative paths
// keep working. A worker thread starts faster from one module than from fourteen.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { linkEsm, type LinkedBundle } from './esm-link.js';

/** dist/src of this build (this file is dist/src/build/vcpu-worker-bundle.js). */
const distSrc = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The compiled worker the bundle is linked from. */
export const VCPU_WORKER_ENTRY = join(distSrc, 'vmm', 'vcpu-worker.js');
/** The bundle the build writes. */
export const VCPU_WORKER_BUNDLE = join(distSrc, 'vmm', 'vcpu-worker.bundle.cjs');

/** Links the compiled worker into the text of VCPU_WORKER_BUNDLE (or of `outFile`, for a copy elsewhere). */
export function linkVcpuWorker(outFile = VCPU_WORKER_BUNDLE): LinkedBundle {
  return linkEsm({ entry: VCPU_WORKER_ENTRY, outFile, displayRoot: dirname(distSrc), readFile: (p) => readFileSync(p, 'utf8') });
}
