// A test file made runnable anywhere: esbuild bundles it (TypeScript or JavaScript, with its
// own imports) into one CommonJS file, `ktstr-wasm/test` resolved to this package's API, with
// an inline source map whose sources are the host files (a body's stack in the guest points
// at the test file's line). Bundles are written once per content into the cache.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cacheRoot, packageRoot } from '../paths.js';
import { UsageError } from '../errors.js';

export class TestFileError extends UsageError {
  override name = 'TestFileError';
}

/** The API module the bundle's `ktstr-wasm/test` imports resolve to. */
export function apiModule(): string {
  return join(packageRoot(), 'dist', 'src', 'test-api', 'index.js');
}

export interface TestBundle {
  /** The test file (absolute). */
  file: string;
  /** The bundle in the cache. */
  path: string;
}

export async function bundleTestFile(file: string, cacheDir = join(cacheRoot(), 'tests')): Promise<TestBundle> {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new TestFileError(`${file}: no such file`);
  // loaded when a test file is bundled, not when the CLI starts (esbuild is CommonJS)
  const { build } = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  const api = apiModule();
  let out;
  try {
    out = await build({
      entryPoints: [abs],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      write: false,
      outfile: join(cacheDir, 'out.cjs'),
      sourcemap: 'external',
      logLevel: 'silent',
      plugins: [
        {
          name: 'ktstr-wasm-test',
          setup(b) {
            b.onResolve({ filter: /^ktstr-wasm\/test$/ }, () => ({ path: api }));
          },
        },
      ],
    });
  } catch (e) {
    const errors = (
      e as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }
    ).errors;
    const first = errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column + 1}: ` : '';
    throw new TestFileError(`${file}: cannot be compiled: ${where}${first?.text ?? (e as Error).message}`);
  }
  const js = out.outputFiles.find((f) => f.path.endsWith('.cjs'));
  const map = out.outputFiles.find((f) => f.path.endsWith('.map'));
  if (js === undefined || map === undefined) throw new TestFileError(`${file}: esbuild produced no output`);
  // sources as file URLs of the host files, so stacks name them wherever the bundle runs
  const sourceMap = JSON.parse(map.text) as { sources: string[]; sourceRoot?: string };
  sourceMap.sources = sourceMap.sources.map((s) => pathToFileURL(resolve(cacheDir, s)).href);
  delete sourceMap.sourceRoot;
  const code =
    js.text.replace(/\/\/# sourceMappingURL=.*\s*$/, '') +
    `//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(sourceMap)).toString('base64')}\n`;
  const key = createHash('sha256').update(code).digest('hex').slice(0, 24);
  const path = join(cacheDir, `${key}.cjs`);
  if (!existsSync(path)) {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, code);
      renameSync(tmp, path);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  return { file: abs, path };
}
