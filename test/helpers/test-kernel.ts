// The kernel the VMM's KVM tests boot: KTSTR_KERNEL, else the shared prebuilt sched_ext
// bzImage (../shared/kernels or $KTSTR_KERNELS_DIR); undefined when neither exists (the
// tests then skip with a printed reason).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultKernelsDir } from '../../src/host/paths.js';

export function findTestKernel(): string | undefined {
  if (process.env.KTSTR_KERNEL) return process.env.KTSTR_KERNEL;
  const dir = defaultKernelsDir();
  const p = dir === undefined ? undefined : join(dir, '6.12.117-sched_ext', 'bzImage');
  return p !== undefined && existsSync(p) ? p : undefined;
}
