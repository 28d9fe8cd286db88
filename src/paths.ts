// Project-wide locations: the package root (holding package.json), the cache root, and
// executables on PATH. Every layer may import this file; it imports nothing of the project.

import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
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

/** The first executable `name` on PATH (then /usr/sbin, /sbin), or undefined. */
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
