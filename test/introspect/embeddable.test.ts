// The embeddable surface: `ktstr-wasm/introspect` resolves through the package exports, none
// of the modules it loads imports a Node API (so it bundles for browsers), and the runnable
// example in examples/introspect/ works.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoPath, repoRoot } from '../helpers/repo.js';

test('the modules behind ktstr-wasm/introspect import no Node APIs', () => {
  const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { exports: Record<string, string> };
  const entry = repoPath(pkg.exports['./introspect']);
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(
      /(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g,
    )) {
      const spec = m[1] ?? m[2];
      assert.ok(spec.startsWith('.'), `${file} imports ${spec}: only relative, browser-safe modules are allowed`);
      queue.push(resolve(dirname(file), spec));
    }
    assert.not.match(text, /\bprocess\.|\bBuffer\b|require\(/, `${file} uses a Node global`);
  }
  assert.ok(seen.size >= 8, `followed ${seen.size} modules`);
});

test('examples/introspect/synthetic.mjs runs and reads its program back', () => {
  const out = execFileSync(process.execPath, [join(repoRoot(), 'examples', 'introspect', 'synthetic.mjs')], {
    encoding: 'utf8',
  });
  assert.match(out, /walk\(0xffffc90000000000\) = 0x20000/);
  assert.match(out, /struct_ops program id 5 example_enqueue: verified_insns 812/);
});

test.run();
