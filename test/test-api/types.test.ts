// The test API's types catch mistakes before anything boots: a test file with a misspelt
// option fails `tsc --noEmit`, naming the option; the project's own test file type-checks.
// Runs the real TypeScript compiler on the files, resolving `ktstr-wasm/test` through this
// package's exports (its compiled .d.ts).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { packageRoot } from '../../src/paths.js';

const root = packageRoot();
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function typeCheck(file: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-types-'));
  try {
    // a project of one file, as a user's would be (NodeNext, strict)
    const config = join(dir, 'tsconfig.json');
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
          skipLibCheck: true,
        },
        files: [join(root, file)],
      }),
    );
    const r = spawnSync(process.execPath, [tsc, '-p', config], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a misspelt option fails type-checking, naming it', () => {
  const r = typeCheck('test/fixtures/ktstr/misspelt.ktstr-fixture.ts');
  assert.is.not(r.status, 0, r.output);
  assert.match(r.output, /'lcls' does not exist in type 'TestOptions'/);
});

test("the project's own test files type-check", () => {
  for (const f of ['tests/sched.ktstr.ts', 'tests/scenarios.ktstr.ts']) {
    const r = typeCheck(f);
    assert.is(r.status, 0, `${f}: ${r.output}`);
  }
});

test.run();
