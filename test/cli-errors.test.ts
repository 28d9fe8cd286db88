// The one error model (src/errors.ts) and the one place it becomes an exit status
// (src/cli/errors.ts: outcomeOf): each kind's status and message, commander's errors, errors
// of no kind, and the domain errors' kinds where they are declared. Then the CLI itself: a
// kernel that names nothing is a usage error (exit 2) in every command that takes one.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommanderError } from '../src/cli/commander.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, outcomeOf } from '../src/cli/errors.js';
import { KtstrError, UsageError } from '../src/errors.js';
import { KernelNotFoundError } from '../src/kernel/resolve.js';
import { KernelBuildError } from '../src/kernel/build.js';
import { CacheError, CacheLockedError } from '../src/kernel/cache.js';
import { KconfigError } from '../src/kernel/kconfig.js';
import { SourceError } from '../src/kernel/source.js';
import { MatrixError } from '../src/sweep/matrix.js';
import { MergeError } from '../src/sweep/merge.js';
import { ShardError } from '../src/sweep/shard.js';
import { RegistryError } from '../src/scheduler/registry.js';
import { TestFileError } from '../src/test/bundle.js';
import { TopologyError } from '../src/vmm/topology/index.js';
import { BootImageError } from '../src/vmm/boot/errors.js';
import { TestHostError } from '../src/host/errors.js';
import { repoPath, repoRoot } from './helpers/repo.js';

test('the exit statuses: 0 ok, 1 failed, 2 usage', () => {
  assert.equal([EXIT_OK, EXIT_FAILED, EXIT_USAGE], [0, 1, 2]);
});

test('a KtstrError exits by its kind, with its message', () => {
  assert.equal(outcomeOf(new KtstrError('it broke')), { status: 1, message: 'it broke' });
  assert.equal(outcomeOf(new KtstrError('it broke', 'failed')), { status: 1, message: 'it broke' });
  assert.equal(outcomeOf(new KtstrError('bad flag', 'usage')), { status: 2, message: 'bad flag' });
  assert.equal(outcomeOf(new UsageError('bad flag')), { status: 2, message: 'bad flag' });
});

test('a status passed on wins over the kind (a command timed out in the test host: 124)', () => {
  assert.equal(outcomeOf(new KtstrError('timed out', 'failed', { status: 124 })), {
    status: 124,
    message: 'timed out',
  });
});

test('the cause is kept, not printed', () => {
  const cause = new Error('ENOENT');
  const err = new UsageError('cannot read x: no such file', { cause });
  assert.is(err.cause, cause);
  assert.equal(outcomeOf(err), { status: 2, message: 'cannot read x: no such file' });
});

test("commander's errors: help and version exit 0, the rest are usage errors; commander printed them", () => {
  assert.equal(outcomeOf(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)')), { status: 0 });
  assert.equal(outcomeOf(new CommanderError(0, 'commander.version', '0.1.0')), { status: 0 });
  assert.equal(outcomeOf(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")), {
    status: 2,
  });
  assert.equal(outcomeOf(new CommanderError(1, 'commander.help', '(outputHelp)')), { status: 2 });
});

test('any other error is a failure, its message printed', () => {
  assert.equal(outcomeOf(new Error('boom')), { status: 1, message: 'boom' });
  assert.equal(outcomeOf(new RangeError('out of range')), { status: 1, message: 'out of range' });
  assert.equal(outcomeOf('a string'), { status: 1, message: 'a string' });
  assert.equal(outcomeOf(new TestHostError('qemu missing', 'missing')), { status: 1, message: 'qemu missing' });
});

test('domain errors carry their kind where they are declared', () => {
  const usage = [
    new KernelNotFoundError('k'),
    new SourceError('s'),
    new MatrixError('m'),
    new MergeError('g'),
    new ShardError('h'),
    new RegistryError('r'),
    new TestFileError('t'),
    new TopologyError('p'),
    new BootImageError('b', '/x'),
  ];
  for (const e of usage) assert.is(outcomeOf(e).status, 2, e.constructor.name);
  const failed = [new KernelBuildError('b'), new CacheError('c'), new CacheLockedError('l', 1), new KconfigError('k')];
  for (const e of failed) assert.is(outcomeOf(e).status, 1, e.constructor.name);
  // messages and names are theirs, unchanged
  assert.is(outcomeOf(new BootImageError('not a bzImage', '/k')).message, '/k: not a bzImage');
  assert.is(new MatrixError('m').name, 'MatrixError');
  assert.is(new KernelNotFoundError('k').name, 'Error');
});

// --- the CLI: an unknown kernel -------------------------------------------------------

let tmp: string;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-cli-errors-'));
});
test.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function cli(args: string[], extra: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CACHE_HOME: join(tmp, 'xdg'),
    KTSTR_KERNELS_DIR: join(tmp, 'no-shared'),
    NO_COLOR: '1',
    ...extra,
  };
  delete env.KTSTR_DEBUG;
  if (!('KTSTR_KERNEL' in extra)) delete env.KTSTR_KERNEL;
  const r = spawnSync(process.execPath, [repoPath('bin', 'ktstr-wasm'), ...args], {
    cwd: repoRoot(),
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TEST_FILE = 'test/fixtures/ktstr/body.ktstr-fixture.ts';

test('an unknown kernel is a usage error (exit 2) in every command that takes one', () => {
  const runs: Array<[string[], RegExp]> = [
    [['shell', '--kernel', 'nope', '--exec', 'true'], /unknown kernel 'nope'/],
    [['kernel', 'resolve', 'nope'], /unknown kernel 'nope'/],
    [['kernel', 'remove', 'nope'], /no cached kernel 'nope'; cached: none/],
    [['sweep', '--kernel', 'nope', '--list'], /unknown kernel 'nope'/],
    [['test', TEST_FILE, '--kernel', 'nope', '--list'], /unknown kernel 'nope'/],
    [['shell', '--kernel', join(tmp, 'missing', 'bzImage'), '--exec', 'true'], /no such file or directory/],
    [['kernel', 'resolve', join(tmp, 'missing', 'bzImage')], /no such file or directory/],
    [
      ['inspect', '--vmlinux', join(tmp, 'missing', 'vmlinux'), '--core', join(tmp, 'core')],
      /cannot read vmlinux .*: ENOENT/,
    ],
  ];
  for (const [args, message] of runs) {
    const r = cli(args);
    assert.is(r.status, EXIT_USAGE, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^ktstr-wasm: error: /, args.join(' '));
    assert.match(r.stderr, message, args.join(' '));
    assert.is(r.stdout, '', args.join(' '));
  }
});

test('no kernel at all, or KTSTR_KERNEL naming nothing: the same usage error everywhere', () => {
  for (const args of [
    ['shell', '--exec', 'true'],
    ['kernel', 'resolve'],
    ['sweep', '--list'],
    ['test', TEST_FILE, '--list'],
  ]) {
    const none = cli(args);
    assert.is(none.status, EXIT_USAGE, `${args.join(' ')}: ${none.stderr}`);
    assert.match(none.stderr, /no kernels are known/, args.join(' '));
    const env = cli(args, { KTSTR_KERNEL: 'nope' });
    assert.is(env.status, EXIT_USAGE, `KTSTR_KERNEL=nope ${args.join(' ')}: ${env.stderr}`);
    assert.match(env.stderr, /KTSTR_KERNEL=nope: unknown kernel 'nope'/, args.join(' '));
  }
});

test.run();
