// The layer direction of DESIGN.md, enforced: runs dependency-cruiser with the project's rules
// (.dependency-cruiser.cjs, the same as `npm run lint:deps`) over src/ and assembly/ and fails
// with its report when an import goes upward, two folders import each other, a runtime import
// cycle appears, or the package imports a devDependency or its tests. No violation is
// accepted as known.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packageRoot } from '../src/paths.js';

test('imports follow the layers of DESIGN.md (npm run lint:deps)', () => {
  const root = packageRoot();
  const bin = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  const r = spawnSync(process.execPath, [bin, '--config', '.dependency-cruiser.cjs', 'src', 'assembly'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  assert.is(r.error, undefined, `dependency-cruiser did not run: ${r.error?.message}`);
  const report = `${r.stdout}${r.stderr}`.trim();
  assert.ok(r.status === 0, `dependency-cruiser exit ${r.status}:\n${report}`);
  assert.match(report, /no dependency violations found/);
});

test.run();
