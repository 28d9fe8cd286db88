// A sweep cell on the prebuilt sched_ext kernel (../shared/kernels or KTSTR_KERNEL): scx_simple
// on tiny-1llc, failure bundles off — the machine the snapshot test and bench:snapshot use.
// Undefined when the kernel or scx_simple is missing.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CellSpec } from '../../src/cell/run-cell.js';
import { findTestKernel } from './test-kernel.js';

/** Cell specs with ids `<prefix>/<name>`, their snapshots kept in `snapshotDir` (null: none). */
export function prebuiltCell(): ((name: string, snapshotDir: string | null) => CellSpec) | undefined {
  const bzImage = findTestKernel();
  if (bzImage === undefined) return undefined;
  const dir = dirname(bzImage);
  const scheduler = join(dir, 'schedulers', 'scx_simple');
  if (!existsSync(scheduler)) return undefined;
  return (name, snapshotDir) => ({
    id: `snapshot/${name}`,
    scheduler: { name: 'scx_simple', binary: scheduler, args: [] },
    kernel: { label: '6.12.117-sched_ext', image: bzImage, vmlinux: join(dir, 'vmlinux') },
    topologyName: 'tiny-1llc',
    topology: '1n1l4c1t',
    memoryMiB: 256,
    setupProblem: null,
    raw: false,
    keepDumps: 'none',
    snapshotDir,
  });
}
