// The house rules, enforced: runs `npm run lint` (ESLint with typescript-eslint's recommended
// rules, eslint.config.js) and `npm run lint:format` (Prettier --check, .prettierrc.json) and
// fails with their report. Each command line is read from package.json's scripts, so this test
// and the scripts cannot drift apart; the tool is started from node_modules by its package's
// `bin`, without npm or a shell. `npm run format` fixes what the Prettier check reports.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packageRoot } from '../src/paths.js';

const root = packageRoot();
const readJson = (path: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

/** A package.json script as argv: words split on spaces, double quotes kept together (no shell). */
function scriptArgv(name: string): string[] {
  const scripts = readJson(join(root, 'package.json')).scripts as Record<string, string>;
  const line = scripts[name];
  assert.type(line, 'string', `package.json has no script ${name}`);
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

/** Runs a script whose first word is a devDependency's command; its exit status and output. */
function runScript(name: string): { status: number | null; report: string } {
  const [tool, ...args] = scriptArgv(name);
  const pkgDir = join(root, 'node_modules', tool);
  const bin = readJson(join(pkgDir, 'package.json')).bin as string | Record<string, string>;
  const entry = typeof bin === 'string' ? bin : bin[tool];
  assert.type(entry, 'string', `${tool}'s package names no ${tool} command`);
  const r = spawnSync(process.execPath, [join(pkgDir, entry), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  assert.is(r.error, undefined, `${tool} did not run: ${r.error?.message}`);
  return { status: r.status, report: `${r.stdout}${r.stderr}`.trim() };
}

test('ESLint finds nothing (npm run lint)', () => {
  const { status, report } = runScript('lint');
  assert.ok(status === 0, `eslint exit ${status}:\n${report}`);
});

test('every source is formatted by Prettier (npm run lint:format; npm run format fixes it)', () => {
  const { status, report } = runScript('lint:format');
  assert.ok(status === 0, `prettier --check exit ${status}:\n${report}`);
});

test.run();
