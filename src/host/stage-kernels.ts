// Kernels named on a command line, made ready for the test host: what the inner command needs
// is copied into a staging directory (under the cache, beside the other ktstr-wasm state)
// that is shared into L1, so a source tree is not copied whole (its vmlinux with DWARF alone
// is hundreds of MB) and a lone bzImage does not drag its whole directory along. Labels stay
// the same inside: a tree becomes a kernel directory named by its label; a file keeps its
// parent directory's name. Kernel directories (cache entries, prebuilt ones) are shared as
// they are.

import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ResolvedKernel } from '../kernel/resolve.js';
import { cacheRoot, findOnPath } from './paths.js';

export interface StagedKernels {
  /** The --kernel spec to pass inside, per kernel (same order). */
  specs: string[];
  /** Directories to share into the test host. */
  shareDirs: string[];
  /** Removes the staging directory (call on every path). */
  cleanup(): void;
}

function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/** A vmlinux without DWARF (symbols and BTF kept), as the kernel cache keeps it; a copy when objcopy is missing. */
function strippedVmlinux(from: string, to: string): void {
  const objcopy = findOnPath('objcopy');
  try {
    if (objcopy === undefined) throw new Error('no objcopy');
    execFileSync(objcopy, ['--strip-debug', from, to], { stdio: 'ignore' });
  } catch {
    rmSync(to, { force: true });
    linkOrCopy(from, to);
  }
}

export function stageKernels(kernels: ResolvedKernel[], env: NodeJS.ProcessEnv = process.env): StagedKernels {
  let root: string | undefined;
  const stageRoot = (): string => {
    if (root === undefined) {
      mkdirSync(join(cacheRoot(env), 'stage'), { recursive: true });
      root = mkdtempSync(join(cacheRoot(env), 'stage', 'run-'));
    }
    return root;
  };
  const specs: string[] = [];
  const shareDirs = new Set<string>();
  try {
    for (const k of kernels) {
      if (k.origin === 'tree') {
        const dir = join(stageRoot(), k.label);
        mkdirSync(dir);
        linkOrCopy(k.bzImage, join(dir, 'bzImage'));
        if (k.vmlinux !== undefined) strippedVmlinux(k.vmlinux, join(dir, 'vmlinux'));
        if (k.config !== undefined) linkOrCopy(k.config, join(dir, 'config'));
        if (k.schedulersDir !== undefined) cpSync(k.schedulersDir, join(dir, 'schedulers'), { recursive: true });
        specs.push(dir);
        shareDirs.add(stageRoot());
      } else if (k.origin === 'path' && k.dir === undefined) {
        // a lone image file: its parent's name is part of its label, its config sits beside it
        const parent = join(stageRoot(), basename(dirname(k.bzImage)));
        mkdirSync(parent, { recursive: true });
        linkOrCopy(k.bzImage, join(parent, basename(k.bzImage)));
        for (const n of readdirSync(dirname(k.bzImage))) {
          if (n === 'config' || n.startsWith('config-')) linkOrCopy(join(dirname(k.bzImage), n), join(parent, n));
        }
        specs.push(join(parent, basename(k.bzImage)));
        shareDirs.add(stageRoot());
      } else {
        const dir = k.dir ?? dirname(k.bzImage);
        specs.push(dir);
        if (existsSync(dir)) shareDirs.add(dir);
      }
    }
  } catch (e) {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
    throw e;
  }
  return {
    specs,
    shareDirs: [...shareDirs],
    cleanup: () => {
      if (root !== undefined) rmSync(root, { recursive: true, force: true });
    },
  };
}
