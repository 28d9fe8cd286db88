// Finds the kernels a run can use without building one: KTSTR_KERNEL, then the kernel cache
// (entries of `kernel build`), then the prebuilt kernels directory ($KTSTR_KERNELS_DIR, else
// ../shared/kernels/<label>/ beside the package). The summary doctor prints; resolve.ts does
// the full --kernel resolution.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../paths.js';
import { defaultKernelCacheDir, KernelCache } from './cache.js';

export interface KernelEntry {
  label: string;
  bzImage: string;
  /** Uncompressed ELF with symbols and BTF, when present next to the bzImage. */
  vmlinux?: string;
  source: 'KTSTR_KERNEL' | 'cache' | 'shared';
}

function entryFromDir(label: string, dir: string, source: KernelEntry['source']): KernelEntry | undefined {
  const bzImage = join(dir, 'bzImage');
  if (!existsSync(bzImage)) return undefined;
  const vmlinux = join(dir, 'vmlinux');
  return { label, bzImage, vmlinux: existsSync(vmlinux) ? vmlinux : undefined, source };
}

function fromEnv(value: string): KernelEntry | undefined {
  const path = resolve(value);
  if (!existsSync(path)) return undefined;
  if (statSync(path).isDirectory()) return entryFromDir(path, path, 'KTSTR_KERNEL');
  return { label: path, bzImage: path, source: 'KTSTR_KERNEL' };
}

/**
 * The directory of prebuilt test kernels (see ../shared/kernels/README.md): $KTSTR_KERNELS_DIR,
 * else ../shared/kernels next to the package, when it exists.
 */
export function defaultKernelsDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.KTSTR_KERNELS_DIR;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  const candidate = resolve(packageRoot(), '..', 'shared', 'kernels');
  return existsSync(candidate) && statSync(candidate).isDirectory() ? candidate : undefined;
}

/** Every kernel found, in resolution order. */
export function discoverKernels(env: NodeJS.ProcessEnv = process.env): KernelEntry[] {
  const found: KernelEntry[] = [];
  if (env.KTSTR_KERNEL) {
    const entry = fromEnv(env.KTSTR_KERNEL);
    if (entry) found.push(entry);
  }
  for (const e of new KernelCache(defaultKernelCacheDir(env)).list()) {
    const entry = entryFromDir(e.label, e.dir, 'cache');
    if (entry) found.push(entry);
  }
  const shared = defaultKernelsDir(env);
  if (shared) {
    for (const name of readdirSync(shared).sort()) {
      const entry = entryFromDir(name, join(shared, name), 'shared');
      if (entry) found.push(entry);
    }
  }
  return found;
}
