// Which test files a `ktstr-wasm test` run means: the files named, or every *.ktstr.ts /
// *.ktstr.js (.mts/.mjs/.cts/.cjs too) under a directory, node_modules, dist and dot
// directories left out, in a stable order. Bounded: at most MAX_FILES, MAX_DEPTH deep.

import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { TestFileError } from './bundle.js';

export const TEST_FILE_RE = /\.ktstr\.(ts|js|mts|mjs|cts|cjs)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build']);
const MAX_FILES = 10_000;
const MAX_DEPTH = 24;

export function findTestFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > MAX_DEPTH || out.length >= MAX_FILES) return;
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) walk(p, depth + 1);
      } else if (e.isFile() && TEST_FILE_RE.test(e.name)) out.push(p);
    }
  };
  walk(dir, 0);
  return out;
}

/** The files a run covers: those given (each must exist), else every test file under `dir`. */
export function selectTestFiles(given: string[], dir: string): string[] {
  if (given.length === 0) {
    const found = findTestFiles(dir);
    if (found.length === 0)
      throw new TestFileError(`no test files (*.ktstr.ts, *.ktstr.js) under ${dir}; name files or pass --dir`);
    return found;
  }
  for (const f of given) {
    let st;
    try {
      st = statSync(f);
    } catch {
      throw new TestFileError(`${f}: no such file`);
    }
    if (st.isDirectory()) throw new TestFileError(`${f} is a directory: pass it as --dir ${f}`);
  }
  return given;
}

/** A test file as reports name it: relative to the working directory when below it. */
export function displayName(file: string, cwd = process.cwd()): string {
  const rel = relative(cwd, file);
  return rel.startsWith('..') ? file : rel;
}
