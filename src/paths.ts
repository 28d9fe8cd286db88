// Project-wide locations: the package root (holding package.json) and the cache root.

import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The ktstr-wasm package root, from this file's place in src/ or dist/src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir;
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** The ktstr-wasm cache root: $XDG_CACHE_HOME/ktstr-wasm or ~/.cache/ktstr-wasm. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg !== undefined && xdg !== '' && xdg.startsWith('/') ? xdg : join(homedir(), '.cache');
  return join(base, 'ktstr-wasm');
}
