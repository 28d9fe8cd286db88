// The kernel the VMM's KVM tests boot: KTSTR_KERNEL, else the shared prebuilt sched_ext
// bzImage (../shared/kernels or $KTSTR_KERNELS_DIR); and that build's vmlinux, which the
// introspection tests read. Undefined when missing (the tests then skip with a printed reason).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultKernelsDir } from '../../src/host/paths.js';

/** `file` of the shared prebuilt sched_ext build, if it is there. */
function sharedKernelFile(file: string): string | undefined {
  const dir = defaultKernelsDir();
  const p = dir === undefined ? undefined : join(dir, '6.12.117-sched_ext', file);
  return p !== undefined && existsSync(p) ? p : undefined;
}

export function findTestKernel(): string | undefined {
  if (process.env.KTSTR_KERNEL) return process.env.KTSTR_KERNEL;
  return sharedKernelFile('bzImage');
}

/** The shared sched_ext build's vmlinux (symbols, BTF), if it is there. */
export function sharedVmlinux(): string | undefined {
  return sharedKernelFile('vmlinux');
}
