// CI on a brand-new machine: every external tool the sources spawn must come from a package
// in .ci/debian-packages (which .ci/run installs) or from Debian's base system / Node itself.
// A new spawn of an unlisted tool, a kernel-build requirement missing from the list, or a
// .ci/run that stops reading the list makes this fail.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packageRoot } from '../../src/paths.js';
import { KERNEL_BUILD_REQUIREMENTS, SCHEDULER_BUILD_REQUIREMENTS } from '../../src/kernel/source.js';

const root = packageRoot();

/** Tools every Debian 12 machine of this kind has without installing anything (base system, Node, npm's build tools). */
const BASE_SYSTEM = new Set([
  'sh', 'bash', 'mount', 'setpriv', 'ldd', 'tar', 'apt-get', 'apt-cache', 'dpkg-deb', 'dpkg-query', 'node', 'npm', 'python3', 'g++',
  'ktstr-wasm', // our own CLI
]);

interface Line { pkg: string; provides: string[] }

function readList(): Line[] {
  return readFileSync(join(root, '.ci', 'debian-packages'), 'utf8').split('\n')
    .map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '')
    .map((l) => { const [pkg, provides = ''] = l.split(/\s+/); return { pkg, provides: provides.split(',').filter(Boolean) }; });
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Literal program names passed to spawn/exec/findOnPath/run/tool in src/ and test/. */
function spawnedTools(): Map<string, string> {
  const found = new Map<string, string>();
  const re = /\b(?:spawnSync|spawn|execFileSync|execFile|execFileP|findOnPath|run|tool)\(\s*'([A-Za-z0-9_.+-]+)'/g;
  for (const file of [...sources(join(root, 'src')), ...sources(join(root, 'test'))]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(re)) if (!found.has(m[1])) found.set(m[1], file.slice(root.length + 1));
  }
  return found;
}

test('the list parses: a package per line, each with what it provides', () => {
  const list = readList();
  assert.ok(list.length >= 10);
  for (const l of list) {
    assert.match(l.pkg, /^[a-z0-9][a-z0-9.+-]+$/, `package name ${l.pkg}`);
    assert.ok(l.provides.length > 0, `${l.pkg} says what the tests use from it`);
  }
  assert.is(new Set(list.map((l) => l.pkg)).size, list.length, 'no package twice');
});

test('every tool the sources spawn is provided by a listed package or the base system', () => {
  const provided = new Set(readList().flatMap((l) => l.provides.map((p) => p.split('/').pop()!)));
  const tools = spawnedTools();
  assert.ok(tools.size >= 10, `the scan finds the spawns (${[...tools.keys()].join(', ')})`);
  for (const [tool, file] of tools) {
    assert.ok(provided.has(tool) || BASE_SYSTEM.has(tool), `${tool} (spawned in ${file}) is in no line of .ci/debian-packages`);
  }
});

test('every package the kernel and scheduler builds require is listed', () => {
  const pkgs = new Set(readList().map((l) => l.pkg));
  for (const r of [...KERNEL_BUILD_REQUIREMENTS, ...SCHEDULER_BUILD_REQUIREMENTS]) {
    assert.ok(pkgs.has(r.package), `${r.package} (for ${r.what}) is in .ci/debian-packages`);
  }
});

test('.ci/run installs from the list, then runs npm ci and npm test', () => {
  const run = readFileSync(join(root, '.ci', 'run'), 'utf8');
  assert.match(run, /\.ci\/debian-packages/);
  assert.match(run, /apt-get install/);
  const lines = run.trim().split('\n');
  assert.equal(lines.slice(-2), ['npm ci', 'npm test']);
});

test.run();
