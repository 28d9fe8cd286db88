// The build-time ES module linker (src/build/esm-link.ts): fixture module graphs written to a
// temporary directory are linked and the bundle is imported next to the unbundled entry — same
// evaluation order, each module once, aliases, namespaces, import.meta.url of each original
// module, no collisions between modules' top-level names, builtin imports hoisted once — and
// every shape the linker does not handle is refused with the file and line. Then the real vCPU
// worker: its built bundle is up to date, holds every module of its graph and fails in a worker
// thread exactly as the unbundled worker does when given a bogus vCPU fd.

import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EsmLinkError, linkEsm, type LinkedBundle } from '../../src/build/esm-link.js';
import { VCPU_WORKER_BUNDLE, VCPU_WORKER_ENTRY, linkVcpuWorker } from '../../src/build/vcpu-worker-bundle.js';
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

test('builtin imports are hoisted once; the same local name from different builtins stays apart', async () => {
  await withFixture({
    'entry.js': "import { sep as s } from 'node:path';\nimport { join } from 'node:path';\nimport { other } from './other.js';\nimport * as path from 'node:path';\nimport 'node:util';\n" +
      'export const got = [s, join("a", "b"), other, path.sep, typeof URL];\n',
    'other.js': "import { EOL as s } from 'node:os';\nimport { join as j, sep } from 'node:path';\nimport { URL as U } from 'node:url';\nexport const other = [s, j('c', 'd'), sep, U === URL];\n",
  }, async (f) => {
    const bundle = f.link('entry.js');
    assert.equal(bundle.builtins, ['node:os', 'node:path', 'node:url', 'node:util']);
    // one named require and one namespace require of node:path, whichever modules asked for it
    assert.is(bundle.code.match(/^const \{[^}]*\} = require\("node:path"\);$/gm)?.length, 1);
    assert.is(bundle.code.match(/^const \w+\$ns = require\("node:path"\);$/gm)?.length, 1);
    assert.match(bundle.code, /^require\("node:util"\);$/m);
    const r = await bothWays(f, bundle, 'entry.js');
    assert.equal(r.bundled.got, ['/', 'a/b', ['\n', 'c/d', '/', true], '/', 'function']);
    assert.equal(r.bundled.got, r.original.got);
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
  ['export *', { 'entry.js': "export * from './m.js';\n", 'm.js': 'export const a = 1;\n' }, /^entry\.js:1: 'export \.\.\. from' and 'export \*'/],
  ['export ... from', { 'entry.js': "\nexport { a } from './m.js';\n", 'm.js': 'export const a = 1;\n' }, /^entry\.js:2: 'export \.\.\. from'/],
  ['dynamic import()', { 'entry.js': "export function later() {\n  return import('./m.js');\n}\n", 'm.js': '' }, /^entry\.js:2: dynamic import\(\)/],
  ['a cycle', { 'entry.js': "import { a } from './a.js';\nexport const e = a;\n", 'a.js': "import { b } from './b.js';\nexport const a = 1;\n", 'b.js': "\nimport { a } from './a.js';\nexport const b = a;\n" },
    /^b\.js:2: import cycle \(a\.js -> b\.js -> a\.js\)/],
  ['a module importing itself', { 'entry.js': "import './entry.js';\n" }, /^entry\.js:1: import cycle \(entry\.js -> entry\.js\)/],
  ['top-level await', { 'entry.js': "import { a } from './m.js';\n", 'm.js': 'export const a = 1;\nconst b = await Promise.resolve(a);\n' }, /^m\.js:2: top-level await/],
  ['top-level for await', { 'entry.js': 'for await (const x of []) {}\n' }, /^entry\.js:1: top-level for await/],
  ['a name the target does not export', { 'entry.js': "import { a, missing } from './m.js';\n", 'm.js': 'export const a = 1;\nconst missing = 2;\n' },
    /^entry\.js:1: '\.\/m\.js' \(m\.js\) does not export 'missing'/],
  ['import.meta other than url', { 'entry.js': 'export const d = import.meta.dirname;\n' }, /^entry\.js:1: only import\.meta\.url/],
  ['a bare package import', { 'entry.js': "import { Command } from 'commander';\n" }, /^entry\.js:1: 'commander' is neither a relative import nor a Node builtin/],
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
