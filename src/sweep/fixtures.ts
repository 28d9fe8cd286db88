// The fixture scheduler on demand: a sweep that names scx-ktstr on a kernel whose directory
// has no scx_ktstr (the prebuilt kernels ship only the kernel tree's examples) builds it once
// against that kernel's vmlinux into build/scx-ktstr/<label>/, where the matrix finds it
// (again when scx-ktstr/ changed since). A
// failed build leaves the cells with their setup problem, and says why.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { findOnPath } from '../paths.js';
import { buildScxKtstr, SCX_KTSTR_BINARY, scxKtstrSourceDir, scxKtstrTestBuildDir } from '../kernel/scx-ktstr.js';
import type { MatrixCell } from './matrix.js';

/** When scx-ktstr's sources last changed (a build older than that is rebuilt). */
function sourcesChangedMs(): number {
  const dir = scxKtstrSourceDir();
  return Math.max(...readdirSync(dir).map((n) => statSync(join(dir, n)).mtimeMs));
}

/** Builds scx-ktstr for every kernel that needs it; resolves to the labels built (empty: none needed). */
/** What the builder reads of a cell (sweep and test cells both have it). */
export type FixtureCell = {
  scheduler: Pick<MatrixCell['scheduler'], 'binary'> | null;
  kernel: MatrixCell['kernel'];
  binary: string | null;
};

export async function buildMissingFixtures(
  cells: FixtureCell[],
  onProgress: (message: string) => void,
): Promise<string[]> {
  const kernels = new Map<string, string>();
  for (const c of cells) {
    if (c.scheduler?.binary !== SCX_KTSTR_BINARY || c.kernel.vmlinux === undefined) continue;
    const ours = join(scxKtstrTestBuildDir(c.kernel.label), SCX_KTSTR_BINARY);
    if (c.binary !== null && c.binary !== ours) continue; // the kernel's own build
    // an older build is rebuilt where it can be (not inside the test host, which has no make)
    if (existsSync(ours) && (statSync(ours).mtimeMs >= sourcesChangedMs() || findOnPath('make') === undefined))
      continue;
    kernels.set(c.kernel.label, c.kernel.vmlinux);
  }
  const built: string[] = [];
  for (const [label, vmlinux] of kernels) {
    onProgress(`building the fixture scheduler scx-ktstr for ${label} (once; clang-16, bpftool, libbpf-dev)`);
    try {
      await buildScxKtstr({ vmlinux, outDir: scxKtstrTestBuildDir(label) });
      built.push(label);
    } catch (e) {
      onProgress(`scx-ktstr could not be built for ${label}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return built;
}
