// The CLI loads a command's implementation only when that command runs: `--version`, help
// and option errors load commander, kleur and the light src/cli definitions, nothing of
// src/vmm, src/host, src/kernel, ... A child node records every module URL it resolves (a
// module.register() resolve hook, installed with --import) while it runs the compiled modules
// (dist/src/cli/main.js, what bin/ktstr-wasm falls back to). bin/ktstr-wasm normally runs the
// CLI's one-file bundle instead, in which the same structure decides which modules are
// evaluated (test/build/bundles.test.ts checks that dynamic imports stay lazy there).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoPath, repoRoot } from './helpers/repo.js';

/** A script that runs the CLI from its compiled modules (written into the temporary directory). */
const RUN_MODULES = `const cli = await import(${JSON.stringify(pathToFileURL(repoPath('dist', 'src', 'cli', 'main.js')).href)});
await cli.main(process.argv);\n`;
const LOG_ENV = 'KTSTR_TEST_MODULE_LOG';

/** Resolve hook (runs on Node's hooks thread): appends each resolved URL to the log file. */
const HOOK = `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(log, r.url + '\\n');
  return r;
}`;
const REGISTER = `import { register } from 'node:module';
register(${JSON.stringify('data:text/javascript,' + encodeURIComponent(HOOK))}, { data: { log: process.env.${LOG_ENV} } });`;

let tmp: string;
let runs = 0;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-cli-lazy-'));
  writeFileSync(join(tmp, 'ktstr-wasm.mjs'), RUN_MODULES);
});
test.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

interface Traced {
  status: number | null;
  stdout: string;
  stderr: string;
  modules: string[];
}

/** Runs `ktstr-wasm ...args` from the modules; `modules`: the project's files it loaded, relative to the repo. */
function traced(args: string[], input = ''): Traced {
  const log = join(tmp, `modules-${runs++}.txt`);
  const env: NodeJS.ProcessEnv = { ...process.env, [LOG_ENV]: log, NO_COLOR: '1' };
  delete env.KTSTR_DEBUG;
  const r = spawnSync(
    process.execPath,
    ['--import', 'data:text/javascript,' + encodeURIComponent(REGISTER), join(tmp, 'ktstr-wasm.mjs'), ...args],
    {
      cwd: repoRoot(),
      env,
      input,
    },
  );
  if (r.error) throw r.error;
  const root = pathToFileURL(repoRoot()).href + '/';
  const urls = readFileSync(log, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith(root));
  return {
    status: r.status,
    stdout: r.stdout.toString(),
    stderr: r.stderr.toString(),
    modules: [...new Set(urls.map((u) => u.slice(root.length)))].sort(),
  };
}

/** What defining the program may load: commander, kleur, the two defaults modules, the error base, src/cli minus the *-run.js implementations. */
function isLight(path: string): boolean {
  if (path.startsWith('node_modules/commander/') || path.startsWith('node_modules/kleur/')) return true;
  if (path === 'dist/src/host/defaults.js' || path === 'dist/src/kernel/defaults.js') return true; // option defaults
  if (path === 'dist/src/errors.js') return true; // KtstrError, which main's exit-status mapping knows (no imports)
  return /^dist\/src\/cli\/[a-z-]+\.js$/.test(path) && !path.endsWith('-run.js');
}

function assertLight(args: string[], r: Traced): void {
  assert.ok(
    r.modules.includes('dist/src/cli/program.js'),
    `${args.join(' ')}: the trace saw program.js (${r.modules.join(', ')})`,
  );
  const heavy = r.modules.filter((m) => !isLight(m));
  assert.equal(heavy, [], `\`ktstr-wasm ${args.join(' ')}\` loaded implementation modules: ${heavy.join(', ')}`);
}

test("--version, --help and every command's help load no implementation module", () => {
  const cases = [
    ['--version'],
    ['--help'],
    ['help', 'shell'],
    ['collapse', '--help'],
    ['doctor', '--help'],
    ['host', 'run', '--help'],
    ['host', 'build', '--help'],
    ['kernel', 'build', '--help'],
    ['kernel', 'list', '--help'],
    ['shell', '--help'],
    ['inspect', '--help'],
  ];
  for (const args of cases) {
    const r = traced(args);
    assert.is(r.status, 0, `${args.join(' ')}: exit 0 (${r.stderr})`);
    assert.ok(r.stdout.length > 0, `${args.join(' ')}: printed something`);
    assertLight(args, r);
  }
});

test('option errors are reported before any implementation module loads', () => {
  const cases: Array<[string[], RegExp]> = [
    [['shell', '--memory', '1'], /--memory must be an integer from 64 to 4092/],
    [['host', 'run', '--cpus', '0', '--', 'true'], /--cpus must be an integer from 1 to 64/],
    [['kernel', 'build', '-j', '0'], /--jobs must be an integer from 1 to 1024/],
    [['collapse', '--raw', '--stats'], /options --raw and --stats cannot be used together/],
    [['inspect'], /required option '--vmlinux <file>' not specified/],
  ];
  for (const [args, message] of cases) {
    const r = traced(args);
    assert.is(r.status, 2, `${args.join(' ')}: exit 2`);
    assert.match(r.stderr, message);
    assertLight(args, r);
  }
});

test('running a command loads its implementation (the trace sees dynamic imports)', () => {
  const collapse = traced(['collapse', '--raw'], 'one line\n');
  assert.is(collapse.status, 0, collapse.stderr);
  assert.is(collapse.stdout, 'one line\n');
  assert.ok(collapse.modules.includes('dist/src/cli/collapse-run.js'), collapse.modules.join(', '));
  assert.ok(
    collapse.modules.some((m) => m.startsWith('dist/src/collapse/')),
    collapse.modules.join(', '),
  );
  assert.not.ok(
    collapse.modules.some((m) => m.startsWith('dist/src/vmm/') || m.endsWith('shell-run.js')),
    collapse.modules.join(', '),
  );

  const inspect = traced(['inspect', '--vmlinux', join(tmp, 'no-such-vmlinux'), '--core', join(tmp, 'no-such-core')]);
  assert.is(inspect.status, 2);
  assert.match(inspect.stderr, /cannot read vmlinux .*no-such-vmlinux: ENOENT/);
  assert.ok(inspect.modules.includes('dist/src/cli/inspect-run.js'), inspect.modules.join(', '));
  assert.ok(
    inspect.modules.some((m) => m.startsWith('dist/src/monitor/')),
    inspect.modules.join(', '),
  );
});

test.run();
