// Where the test host keeps things: the cache ($XDG_CACHE_HOME/ktstr-wasm/host or
// ~/.cache/ktstr-wasm/host), the prebuilt kernels shared into L1, and PATH look-ups
// (findOnPath lives in src/paths.ts, below every layer; re-exported here).

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot, findOnPath, packageRoot } from '../paths.js';
import { defaultKernelsDir } from '../kernel/discover.js';

export { cacheRoot, findOnPath, packageRoot, defaultKernelsDir };

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
