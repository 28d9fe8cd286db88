// The build-time ES module linker (src/build/esm-link.ts): fixture module graphs written to a
// temporary directory are linked and the bundle (a CommonJS script) is loaded next to the
// unbundled entry — same evaluation order, each module once, aliases, namespaces, re-exports,
// builtins and packages through require(), dynamic import() evaluated only when it runs,
// import.meta.url of each original module, no collisions between modules' top-level names — and
// every shape the linker does not handle is refused with the file and line. Then the real
// bundles: the vCPU worker's holds its whole graph and fails in a worker thread exactly as the
// unbundled worker does when given a bogus vCPU fd; the CLI's holds every command; both current.

import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EsmLinkError, linkEsm, type LinkedBundle } from '../../src/build/esm-link.js';
import { CLI, VCPU_WORKER, linkBundle } from '../../src/build/bundles.js';
const VCPU_WORKER_BUNDLE = VCPU_WORKER.bundle;
const VCPU_WORKER_ENTRY = VCPU_WORKER.entry;
const linkVcpuWorker = (outFile?: string) => linkBundle(VCPU_WORKER, outFile);
import { repoPath } from '../helpers/repo.js';

interface Fixture {
  dir: string;
  /** Links `entry` (relative to the fixture) into `out` (default bundle.cjs at the top). */
  link(entry: string, out?: string): LinkedBundle & { file: string };
}

/** Writes `files` (relative path -> text) to a fresh ESM directory, runs `body`, then removes it. */
async function withFixture(files: Record<string, string>, body: (f: Fixture) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-esm-link-'));
  try {
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    await body({
      dir,
      link(entry: string, out = 'bundle.cjs') {
        const file = join(dir, out);
        const bundle = linkEsm({ entry: join(dir, entry), outFile: file, displayRoot: dir, readFile: (p) => readFileSync(p, 'utf8') });
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, bundle.code);
        return { ...bundle, file };
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const requireHere = createRequire(import.meta.url);
/** A bundle (CommonJS script) through require, uncached; an original module through import(). */
const importFile = async (file: string): Promise<Record<string, unknown>> => {
  if (!file.endsWith('.cjs')) return import(pathToFileURL(file).href) as Promise<Record<string, unknown>>;
  const exports = requireHere(file) as Record<string, unknown>;
  delete requireHere.cache[file];
  return exports;
};

/** The evaluation log the fixture modules append to (each test resets it). */
const g = globalThis as unknown as { linkLog: string[] };
const logged = (name: string): string => `(globalThis.linkLog ??= []).push(${JSON.stringify(name)});\n`;

/** Imports the bundle and the original entry, each with a fresh log: [bundle exports, bundle log, original exports, original log]. */
async function bothWays(f: Fixture, bundle: { file: string }, entry: string) {
  g.linkLog = [];
  const bundled = await importFile(bundle.file);
  const bundledLog = g.linkLog;
  g.linkLog = [];
  const original = await importFile(join(f.dir, entry));
  const originalLog = g.linkLog;
  return { bundled, bundledLog, original, originalLog };
}

const relativeImport = /^\s*(import|export)\b[^\n]*from\s*["']\.{1,2}\//m;

test('modules evaluate once, dependencies first, in import order', async () => {
  await withFixture({
    'entry.js': "import { a } from './a.js';\nimport './side.js';\nimport { b } from './b.js';\n" + logged('entry') + 'export const result = a + b;\n//# sourceMappingURL=entry.js.map\n',
    'a.js': "import { c } from './lib/c.js';\nimport { d } from './lib/d.js';\n" + logged('a') + 'export const a = c + d;\n',
    'b.js': "import { d } from './lib/d.js';\nimport { c } from './lib/c.js';\n" + logged('b') + 'export const b = d * c;\n',
    'side.js': "import './lib/d.js';\n" + logged('side'),
    'lib/c.js': logged('c') + 'export const c = 2;\n',
    'lib/d.js': "import { c } from './c.js';\n" + logged('d') + 'export const d = c + 1;\n',
  }, async (f) => {
    const bundle = f.link('entry.js');
    assert.equal(bundle.modules.map((m) => m.slice(f.dir.length + 1)), ['lib/c.js', 'lib/d.js', 'a.js', 'side.js', 'b.js', 'entry.js']);
    assert.not.match(bundle.code, relativeImport);
    assert.not.match(bundle.code, /sourceMappingURL/);
    for (const m of ['entry.js', 'a.js', 'b.js', 'side.js', 'lib/c.js', 'lib/d.js']) assert.ok(bundle.code.includes(`// --- ${m} ---`), m);
    const r = await bothWays(f, bundle, 'entry.js');
    assert.equal(r.bundledLog, ['c', 'd', 'a', 'side', 'b', 'entry']);
    assert.equal(r.bundledLog, r.originalLog);
    assert.is(r.bundled.result, 11);
    assert.is(r.bundled.result, r.original.result);
  });
});

test('aliases, export lists, namespaces and top-level names that collide between modules', async () => {
  await withFixture({
    'entry.js': [
      "import { value as first, helper as firstHelper } from './one.js';",
      "import { value as second, renamed } from './two.js';",
      "import * as ns from './two.js';",
      'const value = 100; // a third top-level `value`',
      'function helper() { return "entry"; }',
      'export const seen = [first, second, value, firstHelper(), renamed(), helper(), ns.value, Object.keys(ns).join(","), (() => { try { ns.value = 5; return "assigned"; } catch (e) { return e.name; } })()];',
      'export { value as own };',
      "import { p, r, af, gen, Point } from './forms.js';",
      'export const forms = [p, r, typeof af, [...gen()], new Point(3).x];',
    ].join('\n') + '\n',
    'one.js': 'const value = 1;\nexport function helper() { return "one"; }\nexport { value };\n',
    'two.js': 'const value = 2;\nfunction helper() { return "two"; }\nexport { value, helper as renamed };\nexport class Unused {}\n',
    'forms.js': 'export const { p, q: [r] } = { p: 1, q: [2] };\nexport async function af() { return 3; }\nexport function* gen() { yield 4; }\n' +
      'export class Point {\n    constructor(x) { this.x = x; }\n}\n',
  }, async (f) => {
    const bundle = f.link('entry.js');
    const r = await bothWays(f, bundle, 'entry.js');
    assert.equal(r.bundled.forms, [1, 2, 'function', [4], 3]);
    assert.equal(r.bundled.forms, r.original.forms);
    assert.equal(r.bundled.seen, [1, 2, 100, 'one', 'two', 'entry', 2, 'Unused,renamed,value', 'TypeError']);
    assert.equal(r.bundled.seen, r.original.seen);
    assert.equal(Object.keys(r.bundled).sort(), ['forms', 'own', 'seen']);
    assert.is(r.bundled.own, 100);
  });
});

test('import.meta.url is still the original module\'s URL', async () => {
  await withFixture({
    'src/entry.js': "import { url as deepUrl, sibling } from './deep/mod.js';\nexport const url = import.meta.url;\nexport const urls = [deepUrl, sibling];\n",
    'src/deep/mod.js': "export const url = import.meta.url;\nexport const sibling = new URL('./data.bin', import.meta.url).href;\n",
  }, async (f) => {
    const bundle = f.link('src/entry.js', 'out/elsewhere/bundle.cjs');
    assert.not.match(bundle.code, relativeImport);
    const r = await bothWays(f, bundle, 'src/entry.js');
    assert.is(r.bundled.url, pathToFileURL(join(f.dir, 'src', 'entry.js')).href);
    assert.equal(r.bundled.urls, [pathToFileURL(join(f.dir, 'src', 'deep', 'mod.js')).href, pathToFileURL(join(f.dir, 'src', 'deep', 'data.bin')).href]);
    assert.equal(r.bundled.urls, r.original.urls);
  });
});

test('builtin imports become require() in place; the same local name from different builtins stays apart', async () => {
  await withFixture({
    'entry.js': "import { sep as s } from 'node:path';\nimport { join } from 'node:path';\nimport { other } from './other.js';\nimport * as path from 'node:path';\nimport 'node:util';\n" +
      'export const got = [s, join("a", "b"), other, path.sep, typeof URL];\n',
    'other.js': "import { EOL as s } from 'node:os';\nimport { join as j, sep } from 'node:path';\nimport { URL as U } from 'node:url';\nexport const other = [s, j('c', 'd'), sep, U === URL];\n",
  }, async (f) => {
    const bundle = f.link('entry.js');
    assert.equal(bundle.builtins, ['node:os', 'node:path', 'node:url', 'node:util']);
    assert.equal(bundle.packages, []);
    assert.match(bundle.code, /const \{ EOL: s \} = require\("node:os"\);/);
    assert.match(bundle.code, /const path = require\("node:path"\);/);
    assert.match(bundle.code, /require\("node:util"\);/);
    const r = await bothWays(f, bundle, 'entry.js');
    assert.equal(r.bundled.got, ['/', 'a/b', ['\n', 'c/d', '/', true], '/', 'function']);
    assert.equal(r.bundled.got, r.original.got);
  });
});

test('a CommonJS package: default, named and namespace imports through require()', async () => {
  await withFixture({
    'node_modules/fakepkg/package.json': '{ "name": "fakepkg", "main": "index.js" }\n',
    'node_modules/fakepkg/index.js': '(globalThis.linkLog ??= []).push("fakepkg");\nexports.a = 1;\nexports.b = 2;\n',
    'entry.js': "import { first } from './first.js';\nimport pkg from 'fakepkg';\nimport { a, b as bee } from 'fakepkg';\nimport * as ns from 'fakepkg';\nexport const got = [first, pkg.a + pkg.b, a, bee, ns.a];\n",
    'first.js': logged('first') + 'export const first = 0;\n',
  }, async (f) => {
    const bundle = f.link('entry.js');
    assert.equal(bundle.packages, ['fakepkg']);
    const r = await bothWays(f, bundle, 'entry.js');
    assert.equal(r.bundled.got, [0, 3, 1, 2, 1]);
    assert.equal(r.bundled.got, r.original.got);
    assert.equal(r.bundledLog, ['first', 'fakepkg'], 'evaluated in import order');
  });
});

test("re-exports: 'export { a as b } from' and 'export * from', through an index module, as ESM resolves them", async () => {
  await withFixture({
    'entry.js': "import { one, two, renamed, own, shared } from './index.js';\nimport * as all from './index.js';\nexport const got = [one, two, renamed, own, shared, Object.keys(all).sort()];\n",
    'index.js': logged('index') + "export * from './p.js';\nexport * from './q.js';\nexport { one as renamed } from './p.js';\nexport const own = 'own';\n",
    'p.js': logged('p') + "export const one = 1;\nexport const clash = 'p';\nexport { same as shared } from './s.js';\n",
    'q.js': logged('q') + "export const two = 2;\nexport const clash = 'q';\nexport { same as shared } from './s.js';\n",
    's.js': logged('s') + 'export const same = 3;\n',
  }, async (f) => {
    const bundle = f.link('entry.js');
    const r = await bothWays(f, bundle, 'entry.js');
    // clash comes from two different modules through export *: ambiguous, so not exported; shared is the same binding both ways
    assert.equal(r.bundled.got, [1, 2, 1, 'own', 3, ['one', 'own', 'renamed', 'shared', 'two']]);
    assert.equal(r.bundled.got, r.original.got);
    assert.equal(r.bundledLog, ['s', 'p', 'q', 'index']);
    assert.equal(r.bundledLog, r.originalLog);
  });
});

test('dynamic import(): linked, evaluated only when the import runs, once; a cycle through it is fine', async () => {
  await withFixture({
    'entry.js': logged('entry') + "import { a } from './a.js';\nexport const early = a;\nexport async function later() {\n  const { b, fromEntry } = await import('./b.js');\n  return [b, fromEntry()];\n}\n" +
      "export async function failing() {\n  return import('./bad.js');\n}\n",
    'a.js': logged('a') + 'export const a = 1;\n',
    'b.js': logged('b') + "import { early } from './entry.js';\nexport const b = 2;\nexport function fromEntry() { return early; }\n",
    'bad.js': "throw new Error('bad module');\n",
  }, async (f) => {
    const bundle = f.link('entry.js');
    assert.equal(bundle.modules.map((m) => m.slice(f.dir.length + 1)), ['a.js', 'entry.js', 'b.js', 'bad.js']);
    assert.not.match(bundle.code, /import\(/);
    const r = await bothWays(f, bundle, 'entry.js');
    assert.equal(r.bundledLog, ['a', 'entry'], 'b is not evaluated at load');
    g.linkLog = [];
    const later = r.bundled.later as () => Promise<unknown>;
    assert.equal(await later(), [2, 1]);
    assert.equal(await later(), [2, 1]);
    assert.equal(g.linkLog, ['b'], 'b evaluated once, on the first import()');
    assert.equal(await (r.original.later as () => Promise<unknown>)(), [2, 1]);
    for (const failing of [r.bundled.failing, r.original.failing] as (() => Promise<unknown>)[]) {
      await failing().then(() => assert.unreachable('import() of a throwing module rejects'), (e: Error) => assert.is(e.message, 'bad module'));
    }
  });
});

test("'this' inside functions and classes links; the bundle is strict code as a module is", async () => {
  await withFixture({
    'entry.js': 'export class C { get me() { return this; } }\nexport function f() { return this; }\nexport const strict = (function () { return this === undefined; })();\n',
  }, async (f) => {
    const bundle = f.link('entry.js');
    const r = await bothWays(f, bundle, 'entry.js');
    assert.is(r.bundled.strict, true);
    assert.is(r.bundled.strict, r.original.strict);
    const C = r.bundled.C as new () => { me: unknown };
    const c = new C();
    assert.is(c.me, c);
  });
});

test('the bundle is deterministic and each module line sits at the offset its comment gives', async () => {
  await withFixture({
    'entry.js': "import { f } from './m.js';\nexport const where = f();\n",
    'm.js': "// line 1\n\nexport function f() {\n  return new Error('here').stack.split('\\n')[1];\n}\n",
  }, async (f) => {
    const bundle = f.link('entry.js');
    assert.is(f.link('entry.js').code, bundle.code);
    const offset = Number(/^\/\/ --- m\.js --- \(its line n is line n\+(\d+) here\)$/m.exec(bundle.code)?.[1]);
    const r = await bothWays(f, bundle, 'entry.js');
    assert.match(String(r.bundled.where), `bundle.cjs:${4 + offset}:`);
    assert.match(String(r.original.where), 'm.js:4:');
  });
});

/** Links `files` from entry.js and expects an EsmLinkError whose message matches `why`. */
async function refuses(files: Record<string, string>, why: RegExp): Promise<void> {
  await withFixture(files, (f) => {
    try {
      f.link('entry.js');
    } catch (e) {
      assert.instance(e, EsmLinkError);
      assert.match((e as Error).message, why);
      return;
    }
    assert.unreachable(`linked although it should refuse (${why})`);
  });
}

const refusals: [string, Record<string, string>, RegExp][] = [
  ['export let', { 'entry.js': 'const a = 1;\nexport let b = a;\n' }, /^entry\.js:2: 'export let' is a live binding/],
  ['export var', { 'entry.js': "import './m.js';\n", 'm.js': '\n\nexport var v = 1;\n' }, /^m\.js:3: 'export var' is a live binding/],
  ['an export list naming a let', { 'entry.js': 'let n = 0;\nexport { n };\n' }, /^entry\.js:2: exports the let 'n'/],
  ['export default', { 'entry.js': 'export default 42;\n' }, /^entry\.js:1: 'export default'/],
  ['export default function', { 'entry.js': 'export default function f() {}\n' }, /^entry\.js:1: 'export default'/],
  ['export { x as default }', { 'entry.js': 'const x = 1;\nexport { x as default };\n' }, /^entry\.js:2: 'export default'/],
  ['export * as ns', { 'entry.js': "export * as ns from './m.js';\n", 'm.js': 'export const a = 1;\n' }, /^entry\.js:1: 'export \* as ns from'/],
  ['a re-export from a builtin', { 'entry.js': "\nexport { join } from 'node:path';\n" }, /^entry\.js:2: re-exports only from relative modules/],
  ['a re-export of a name the target lacks', { 'entry.js': "export { nope } from './m.js';\n", 'm.js': 'export const a = 1;\n' }, /^entry\.js:1: '\.\/m\.js' \(m\.js\) does not export 'nope'/],
  ['dynamic import() of a computed name', { 'entry.js': "export function later(name) {\n  return import(name);\n}\n" }, /^entry\.js:2: dynamic import\(\) is supported only of a relative module/],
  ['dynamic import() of a package', { 'entry.js': "export function later() {\n  return import('commander');\n}\n" }, /^entry\.js:2: dynamic import\(\) is supported only of a relative module/],
  ['a static cycle reached through a dynamic import()', { 'entry.js': "export const f = () => import('./a.js');\n", 'a.js': "import { b } from './b.js';\nexport const a = 1;\n", 'b.js': "import { a } from './a.js';\nexport const b = a;\n" },
    /^b\.js:1: import cycle \(a\.js -> b\.js -> a\.js\)/],
  ['a cycle', { 'entry.js': "import { a } from './a.js';\nexport const e = a;\n", 'a.js': "import { b } from './b.js';\nexport const a = 1;\n", 'b.js': "\nimport { a } from './a.js';\nexport const b = a;\n" },
    /^b\.js:2: import cycle \(a\.js -> b\.js -> a\.js\)/],
  ['a module importing itself', { 'entry.js': "import './entry.js';\n" }, /^entry\.js:1: import cycle \(entry\.js -> entry\.js\)/],
  ['top-level await', { 'entry.js': "import { a } from './m.js';\n", 'm.js': 'export const a = 1;\nconst b = await Promise.resolve(a);\n' }, /^m\.js:2: top-level await/],
  ['top-level for await', { 'entry.js': 'for await (const x of []) {}\n' }, /^entry\.js:1: top-level for await/],
  ['a name the target does not export', { 'entry.js': "import { a, missing } from './m.js';\n", 'm.js': 'export const a = 1;\nconst missing = 2;\n' },
    /^entry\.js:1: '\.\/m\.js' \(m\.js\) does not export 'missing'/],
  ['import.meta other than url', { 'entry.js': 'export const d = import.meta.dirname;\n' }, /^entry\.js:1: only import\.meta\.url/],
  ['an import of a missing file', { 'entry.js': "\nimport { a } from './nowhere.js';\n" }, /^entry\.js:2: cannot read '\.\/nowhere\.js' \(nowhere\.js\)/],
  ['an import with attributes', { 'entry.js': "import data from './data.json' with { type: 'json' };\n" }, /^entry\.js:1: import attributes/],
  ['an import of a non-.js file', { 'entry.js': "import { x } from './data.cjs';\n" }, /^entry\.js:1: only \.js modules can be linked/],
  ['a default import of a linked module', { 'entry.js': "import m from './m.js';\n", 'm.js': 'export const a = 1;\n' }, /^entry\.js:1: default imports of linked modules/],
  ['reassigning an exported function', { 'entry.js': 'export function f() {}\nexport function g() {\n  f = null;\n}\n' }, /^entry\.js:3: assigns to the exported binding 'f'/],
  ['a name with the reserved prefix', { 'entry.js': 'const __esmlink_m0 = 1;\n' }, /^entry\.js:1: uses the name prefix __esmlink/],
  ['the same local name imported twice', { 'entry.js': "import { a } from './m.js';\nimport { b as a } from './m.js';\n", 'm.js': 'export const a = 1, b = 2;\n' },
    /^entry\.js:2: 'a' is declared twice/],
  ['a syntax error', { 'entry.js': 'const a = 1;\nconst b = (;\n' }, /^entry\.js:2: syntax error/],
  ['top-level this', { 'entry.js': 'export const t = typeof this;\n' }, /^entry\.js:1: top-level 'this'/],
  ['top-level this inside an arrow', { 'entry.js': '\nexport const t = () => this;\n' }, /^entry\.js:2: top-level 'this'/],
];
for (const [what, files, why] of refusals) test(`refuses ${what}`, () => refuses(files, why));

// ---- the real vCPU worker ----

/** The modules test/vmm-unit/worker-imports.test.ts allows the worker to load ('kvm/kvm', ...). */
function workerGraph(): string[] {
  const src = readFileSync(repoPath('test', 'vmm-unit', 'worker-imports.test.ts'), 'utf8');
  const list = /const ALLOWED = \[([^\]]*)\]/.exec(src)?.[1];
  assert.ok(list, 'ALLOWED list found in worker-imports.test.ts');
  return [...list!.matchAll(/'([^']+)'/g)].map((m) => m[1]).sort();
}

test('the vCPU worker links into one module holding its whole graph, and the built bundle is current', () => {
  const bundle = linkVcpuWorker();
  const prefix = repoPath('dist', 'src') + '/';
  assert.equal(bundle.modules.map((m) => m.slice(prefix.length, -'.js'.length)).sort(), workerGraph());
  assert.is(bundle.modules.at(-1), VCPU_WORKER_ENTRY);
  assert.not.match(bundle.code, relativeImport);
  for (const m of workerGraph()) assert.ok(bundle.code.includes(`// --- src/${m}.js ---`), m);
  assert.ok(existsSync(VCPU_WORKER_BUNDLE), `${VCPU_WORKER_BUNDLE} is missing: run \`npm run build:ts\``);
  assert.ok(readFileSync(VCPU_WORKER_BUNDLE, 'utf8') === bundle.code, `${VCPU_WORKER_BUNDLE} is stale: run \`npm run build:ts\``);
  // vm.ts starts vCPU threads from the bundle while it is at least as new as the module
  assert.ok(statSync(VCPU_WORKER_BUNDLE).mtimeMs >= statSync(VCPU_WORKER_ENTRY).mtimeMs, 'bundle at least as new as vcpu-worker.js');
});

test('the CLI links into one script, the built bundle is current, and bin/ktstr-wasm runs it', () => {
  const bundle = linkBundle(CLI);
  for (const run of ['shell-run', 'collapse-run', 'kernel-run', 'host-run', 'inspect-run', 'doctor-run', 'sweep-run']) {
    assert.ok(bundle.modules.indexOf(repoPath('dist', 'src', 'cli', `${run}.js`)) > bundle.modules.indexOf(CLI.entry), `${run}: linked, after the entry (reached by import())`);
  }
  // commander comes through createRequire in src/cli/commander.ts; piscina is the sweep's cell pool
  assert.equal(bundle.packages, ['kleur', 'piscina'], 'the packages the CLI requires');
  assert.not.match(bundle.code, relativeImport);
  assert.not.match(bundle.code, /\bimport\(/);
  assert.ok(existsSync(CLI.bundle), `${CLI.bundle} is missing: run \`npm run build:ts\``);
  assert.ok(readFileSync(CLI.bundle, 'utf8') === bundle.code, `${CLI.bundle} is stale: run \`npm run build:ts\``);
  // bin/ktstr-wasm picks the bundle while it is at least as new as the modules
  assert.ok(statSync(CLI.bundle).mtimeMs >= statSync(CLI.entry).mtimeMs, 'bundle at least as new as main.js');
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(CLI.bundle)}).main(['node', 'ktstr-wasm', '--version'])`]);
  assert.is(r.status, 0, r.stderr.toString());
  assert.match(r.stdout.toString(), /^\d+\.\d+\.\d+/);
});

interface WorkerOutcome {
  messages: unknown[];
  error?: { name: string; message: string; code?: string };
  exitCode: number;
}

/** Runs a vCPU worker file with a bogus vCPU fd until it exits (terminated after 20 s). */
function runWorker(file: string, vcpuFd: number): Promise<WorkerOutcome> {
  const control = new SharedArrayBuffer(32);
  const workerData = { vcpuId: 0, vcpuFd, vmFd: -1, mmapSize: 4096, control, events: new SharedArrayBuffer(12), serials: [] };
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.KTSTR_NATIVE_ADDON; // the addon must be found from native.js's own import.meta.url
  const outcome: WorkerOutcome = { messages: [], exitCode: -1 };
  return new Promise((resolve) => {
    const w = new Worker(file, { workerData, env });
    const timer = setTimeout(() => { Atomics.store(new Int32Array(control), 0, 1); void w.terminate(); }, 20_000);
    w.on('message', (m) => outcome.messages.push(m));
    w.on('error', (e: Error & { code?: string }) => { outcome.error = { name: e.name, message: e.message, code: e.code }; });
    w.on('exit', (code) => { clearTimeout(timer); outcome.exitCode = code; resolve(outcome); });
  });
}

test('the built bundle (and a copy elsewhere) fails in a worker exactly as the unbundled worker does without a real vCPU fd', async () => {
  assert.ok(existsSync(VCPU_WORKER_BUNDLE), `${VCPU_WORKER_BUNDLE} is missing: run \`npm run build:ts\``);
  // and a copy linked into a directory outside the repository: native.js must still find the
  // addon from its original location, not from the bundle's
  const away = mkdtempSync(join(tmpdir(), 'ktstr-esm-link-worker-'));
  const awayBundle = join(away, 'vcpu-worker.bundle.cjs');
  writeFileSync(awayBundle, linkVcpuWorker(awayBundle).code);
  const devNull = openSync('/dev/null', 'r+');
  try {
    // -1: the Vcpu wrapper refuses it; /dev/null: a real fd whose mmap of kvm_run the kernel refuses (native addon call)
    for (const fd of [-1, devNull]) {
      const original = await runWorker(VCPU_WORKER_ENTRY, fd);
      const bundled = await runWorker(VCPU_WORKER_BUNDLE, fd);
      assert.ok(original.error, `the unbundled worker fails with fd ${fd}`);
      assert.not.ok(['SyntaxError', 'ReferenceError'].includes(original.error!.name), JSON.stringify(original.error));
      assert.equal(original.messages.map((m) => (m as { type: string }).type), ['done'], 'main() ran and reported');
      assert.equal(bundled, original, `fd ${fd}`);
      assert.equal(await runWorker(awayBundle, fd), original, `fd ${fd}, bundle outside the repository`);
    }
  } finally {
    closeSync(devNull);
    rmSync(away, { recursive: true, force: true });
  }
});

test.run();
