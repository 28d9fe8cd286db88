// The tests a file declares, read on the host: its bundle is evaluated with a fresh registry
// (declarations run, bodies do not) and each test's name and options are taken. An error at
// load (a throw at top level, a bad option) names the file.

import { createRequire } from 'node:module';
import { openRegistry } from '../test-api/registry.js';
import type { TestOptions } from '../test-api/options.js';
import { TestFileError, type TestBundle } from './bundle.js';
import { displayName } from './discover.js';

export interface CollectedTest {
  /** The test file (absolute) and its bundle. */
  file: string;
  bundle: string;
  /** As reports show the file. */
  fileName: string;
  name: string;
  options: TestOptions;
}

const requireHere = createRequire(import.meta.url);

export function collectTests(b: TestBundle): CollectedTest[] {
  const registry = openRegistry();
  try {
    delete requireHere.cache[b.path];
    requireHere(b.path);
  } catch (e) {
    throw new TestFileError(`${displayName(b.file)}: loading it failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    delete requireHere.cache[b.path];
  }
  if (registry.length === 0)
    throw new TestFileError(`${displayName(b.file)} declares no tests (call ktstrTest from 'ktstr-wasm/test')`);
  return registry.map((t) => ({
    file: b.file,
    bundle: b.path,
    fileName: displayName(b.file),
    name: t.name,
    options: t.options,
  }));
}
