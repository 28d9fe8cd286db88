// A test file on its way to the guest, on the host: bundled by esbuild (TypeScript with type
// annotations, a relative import of a helper, `ktstr-wasm/test` resolved to this package),
// its tests collected with their options, the errors a person gets for a syntax error, a
// throw at top level or a file that declares nothing, the inline source map naming the host
// files, the content-addressed cache, and which files a run covers.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { apiModule, bundleTestFile, TestFileError } from '../../src/test/bundle.js';
import { collectTests } from '../../src/test/collect.js';
import { displayName, findTestFiles, selectTestFiles, TEST_FILE_RE } from '../../src/test/discover.js';

let tmp = '';
let cache = '';
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-bundle-'));
  cache = join(tmp, 'cache');
});
test.after(() => {
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

/** Writes `files` (path relative to a fresh directory -> content) and returns the directory. */
let dirs = 0;
function tree(files: Record<string, string>): string {
  const d = join(tmp, `t${++dirs}`);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), text);
  }
  return d;
}

const HELPER = `import { cgroup, type CgroupDef } from 'ktstr-wasm/test';
export function groups(n: number): CgroupDef[] {
  return Array.from({ length: n }, (_, i) => cgroup(\`g\${i}\`).workers(1));
}
export const DURATION: string = '2s';
`;

const GOOD = `import { ktstrTest, scenarios, type TestContext } from 'ktstr-wasm/test';
import { groups, DURATION } from './helper';

interface Local { llcs: number }
const shape: Local = { llcs: 2 };

ktstrTest('two groups', { ...shape, duration: DURATION, checks: { gaps: false } }, async (ctx: TestContext) => {
  await ctx.run(groups(2));
});
ktstrTest('steady', { preset: 'tiny', scheduler: 'scx_ktstr' }, (ctx) => scenarios.steady(ctx));
`;

test('apiModule: the compiled API this package exports as ktstr-wasm/test', () => {
  assert.ok(existsSync(apiModule()), apiModule());
  assert.ok(apiModule().endsWith(join('dist', 'src', 'test-api', 'index.js')));
});

test('a TypeScript file with annotations and a relative helper import bundles, and its tests are collected with their options', async () => {
  const d = tree({ 'good.ktstr.ts': GOOD, 'helper.ts': HELPER });
  const file = join(d, 'good.ktstr.ts');
  const b = await bundleTestFile(file, cache);
  assert.is(b.file, file);
  assert.ok(b.path.startsWith(cache + '/') && b.path.endsWith('.cjs'), b.path);
  assert.ok(existsSync(b.path));
  const code = readFileSync(b.path, 'utf8');
  assert.not.match(
    code,
    /from ['"]ktstr-wasm\/test['"]|require\(['"]ktstr-wasm\/test['"]\)/,
    'the API is inlined, not imported',
  );
  assert.not.match(code, /: TestContext|interface Local/, 'types are stripped');
  const tests = collectTests(b);
  assert.equal(
    tests.map((t) => t.name),
    ['two groups', 'steady'],
  );
  assert.equal(tests[0].options, { llcs: 2, duration: '2s', checks: { gaps: false } });
  assert.equal(tests[1].options, { preset: 'tiny', scheduler: 'scx_ktstr' });
  for (const t of tests) {
    assert.is(t.file, file);
    assert.is(t.bundle, b.path);
    assert.is(t.fileName, displayName(file));
  }
  // collected again (the module cache is not in the way): the same tests
  assert.equal(
    collectTests(b).map((t) => t.name),
    ['two groups', 'steady'],
  );
});

test('the bundle carries an inline source map whose sources are the host files as file:// URLs', async () => {
  const d = tree({ 'map.ktstr.ts': GOOD, 'helper.ts': HELPER });
  const b = await bundleTestFile(join(d, 'map.ktstr.ts'), cache);
  const code = readFileSync(b.path, 'utf8');
  const m = /\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\n$/.exec(code);
  assert.ok(m, 'an inline source map at the end');
  const map = JSON.parse(Buffer.from(m![1], 'base64').toString('utf8')) as {
    sources: string[];
    sourceRoot?: string;
    mappings: string;
  };
  assert.ok(map.sources.includes(pathToFileURL(join(d, 'map.ktstr.ts')).href), JSON.stringify(map.sources));
  assert.ok(map.sources.includes(pathToFileURL(join(d, 'helper.ts')).href), JSON.stringify(map.sources));
  assert.ok(
    map.sources.every((s) => s.startsWith('file:///')),
    JSON.stringify(map.sources),
  );
  assert.is(map.sourceRoot, undefined);
  assert.ok(map.mappings.length > 0);
  assert.is(code.match(/sourceMappingURL=/g)?.length, 1, 'the external map reference is replaced, not kept');
});

test('the same content gives the same cache path; other content another; the file is written once', async () => {
  const d1 = tree({ 'x.ktstr.ts': GOOD, 'helper.ts': HELPER });
  const d2 = tree({ 'x.ktstr.ts': GOOD.replace("'steady'", "'steady 2'"), 'helper.ts': HELPER });
  const own = join(tmp, 'own-cache');
  const a = await bundleTestFile(join(d1, 'x.ktstr.ts'), own);
  const again = await bundleTestFile(join(d1, 'x.ktstr.ts'), own);
  const other = await bundleTestFile(join(d2, 'x.ktstr.ts'), own);
  assert.is(again.path, a.path);
  assert.is.not(other.path, a.path);
  assert.match(a.path, /\/[0-9a-f]{24}\.cjs$/);
  assert.ok(a.path.startsWith(own));
  assert.equal(
    collectTests(other).map((t) => t.name),
    ['two groups', 'steady 2'],
  );
  // the cache holds only finished bundles (no temporary files left)
  const { readdirSync } = await import('node:fs');
  assert.ok(
    readdirSync(own).every((f) => /^[0-9a-f]{24}\.cjs$/.test(f)),
    readdirSync(own).join(' '),
  );
});

test('a syntax error is a TestFileError naming the file, line and column', async () => {
  const d = tree({
    'bad.ktstr.ts': "import { ktstrTest } from 'ktstr-wasm/test';\n\nconst x = ;\nktstrTest('a', {}, () => x);\n",
  });
  const file = join(d, 'bad.ktstr.ts');
  let err: unknown;
  try {
    await bundleTestFile(file, cache);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof TestFileError, String(err));
  const msg = (err as Error).message;
  assert.ok(msg.startsWith(`${file}: cannot be compiled: `), msg);
  assert.match(msg, /bad\.ktstr\.ts:3:11: /);
  assert.match(msg, /Unexpected ";"/);
});

test('an import that does not resolve is a TestFileError naming the file and the import', async () => {
  const d = tree({ 'imp.ktstr.ts': "import { nope } from './missing';\nnope();\n" });
  let err: unknown;
  try {
    await bundleTestFile(join(d, 'imp.ktstr.ts'), cache);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof TestFileError);
  assert.match((err as Error).message, /imp\.ktstr\.ts:1:\d+: .*\.\/missing/);
});

test('a file that does not exist is a TestFileError', async () => {
  const missing = join(tmp, 'nope.ktstr.ts');
  try {
    await bundleTestFile(missing, cache);
    assert.unreachable('bundled a missing file');
  } catch (e) {
    assert.instance(e, TestFileError);
    assert.is((e as Error).message, `${missing}: no such file`);
  }
});

test('a top-level throw when collecting is an error naming the file and the message', async () => {
  const d = tree({
    'throws.ktstr.ts':
      "import { ktstrTest } from 'ktstr-wasm/test';\nktstrTest('a', {}, () => {});\nthrow new Error('setup went wrong');\n",
  });
  const file = join(d, 'throws.ktstr.ts');
  const b = await bundleTestFile(file, cache);
  assert.throws(
    () => collectTests(b),
    (e: Error) =>
      e instanceof TestFileError && e.message === `${displayName(file)}: loading it failed: setup went wrong`,
  );
});

test('a bad option or duplicate name at declaration is an error naming the file and the test', async () => {
  const d = tree({
    'opt.ktstr.js':
      "const { ktstrTest } = require('ktstr-wasm/test');\nktstrTest('x', { sheduler: 'scx_ktstr' }, () => {});\n",
    'dup.ktstr.ts':
      "import { ktstrTest } from 'ktstr-wasm/test';\nktstrTest('x', {}, () => {});\nktstrTest('x', {}, () => {});\n",
  });
  const opt = await bundleTestFile(join(d, 'opt.ktstr.js'), cache);
  assert.throws(
    () => collectTests(opt),
    (e: Error) =>
      e instanceof TestFileError &&
      e.message.startsWith(
        `${displayName(join(d, 'opt.ktstr.js'))}: loading it failed: ktstrTest("x"): unknown option "sheduler"`,
      ),
  );
  const dup = await bundleTestFile(join(d, 'dup.ktstr.ts'), cache);
  assert.throws(
    () => collectTests(dup),
    /dup\.ktstr\.ts: loading it failed: ktstrTest\("x"\): a test of that name is already declared/,
  );
});

test('a file that declares no tests is an error saying so', async () => {
  const d = tree({ 'empty.ktstr.ts': "import { cgroup } from 'ktstr-wasm/test';\nexport const g = cgroup('a');\n" });
  const file = join(d, 'empty.ktstr.ts');
  const b = await bundleTestFile(file, cache);
  assert.throws(
    () => collectTests(b),
    (e: Error) =>
      e instanceof TestFileError &&
      e.message === `${displayName(file)} declares no tests (call ktstrTest from 'ktstr-wasm/test')`,
  );
});

test('findTestFiles: *.ktstr.{ts,js,...} only, sorted, node_modules/dist/build and dot entries skipped', () => {
  const d = tree({
    'a.ktstr.ts': '',
    'b.ktstr.js': '',
    'c.ktstr.mts': '',
    'sub/deep/d.ktstr.ts': '',
    'sub/e.ktstr.cjs': '',
    'plain.ts': '',
    'f.test.ts': '',
    'g.ktstr.tsx': '',
    'ktstr.ts': '',
    'h.ktstr.ts.bak': '',
    'i.ktstr.json': '',
    'node_modules/pkg/n.ktstr.ts': '',
    'dist/x.ktstr.js': '',
    'build/y.ktstr.ts': '',
    '.hidden/z.ktstr.ts': '',
    '.dot.ktstr.ts': '',
    'sub/node_modules/m.ktstr.ts': '',
  });
  const found = findTestFiles(d).map((f) => f.slice(d.length + 1));
  assert.equal(found, ['a.ktstr.ts', 'b.ktstr.js', 'c.ktstr.mts', 'sub/deep/d.ktstr.ts', 'sub/e.ktstr.cjs']);
  for (const f of found) assert.match(f, TEST_FILE_RE);
  assert.equal(findTestFiles(join(d, 'nowhere')), []);
});

test('selectTestFiles: given files must exist and not be directories; none given: found under the directory, or an error', () => {
  const d = tree({ 'one.ktstr.ts': '', 'sub/two.ktstr.js': '', 'empty/readme.md': '' });
  assert.equal(selectTestFiles([join(d, 'one.ktstr.ts')], '/nonexistent'), [join(d, 'one.ktstr.ts')]);
  // a named file need not match the pattern
  const odd = join(d, 'empty', 'readme.md');
  assert.equal(selectTestFiles([odd], d), [odd]);
  const missing = join(d, 'gone.ktstr.ts');
  assert.throws(
    () => selectTestFiles([join(d, 'one.ktstr.ts'), missing], d),
    (e: Error) => e instanceof TestFileError && e.message === `${missing}: no such file`,
  );
  const sub = join(d, 'sub');
  assert.throws(
    () => selectTestFiles([sub], d),
    (e: Error) => e instanceof TestFileError && e.message === `${sub} is a directory: pass it as --dir ${sub}`,
  );
  assert.equal(selectTestFiles([], d), [join(d, 'one.ktstr.ts'), join(d, 'sub', 'two.ktstr.js')]);
  const empty = join(d, 'empty');
  assert.throws(
    () => selectTestFiles([], empty),
    (e: Error) =>
      e instanceof TestFileError && e.message.startsWith(`no test files (*.ktstr.ts, *.ktstr.js) under ${empty}`),
  );
});

test('displayName: relative below the working directory, absolute elsewhere', () => {
  assert.is(displayName('/w/p/tests/a.ktstr.ts', '/w/p'), join('tests', 'a.ktstr.ts'));
  assert.is(displayName('/elsewhere/a.ktstr.ts', '/w/p'), '/elsewhere/a.ktstr.ts');
});

test.run();
