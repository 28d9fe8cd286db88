// Where the test host keeps things: the cache ($XDG_CACHE_HOME/ktstr-wasm/host or
// ~/.cache/ktstr-wasm/host), the prebuilt kernels shared into L1, and PATH look-ups.

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { cacheRoot, packageRoot } from '../paths.js';
import { defaultKernelsDir } from '../kernel/discover.js';

export { cacheRoot, packageRoot, defaultKernelsDir };

/** The test host's cache directory (kernel, base archive, images). */
export function hostCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'host');
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The first executable `name` on PATH, or undefined. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? resolve(name) : undefined;
  const dirs = (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, '/usr/sbin', '/sbin']) {
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
