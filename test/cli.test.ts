// The ktstr-wasm command line, run as users run it: `node bin/ktstr-wasm ...` in a child
// process, checking stdout bytes, stderr messages and exit codes.

import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { normaliseLog } from '../src/collapse/index.js';
import { expectedCollapsed, fixture } from './helpers/fixtures.js';
import { repoPath, repoRoot } from './helpers/repo.js';

const BIN = repoPath('bin', 'ktstr-wasm');
const ANSI = /\x1b\[/;

/** Environment without colour forcing, so the child sees a plain non-TTY pipe. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.FORCE_COLOR;
  delete env.NO_COLOR;
  delete env.KTSTR_DEBUG;
  return { ...env, ...extra };
}

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(args: string[], options: { input?: Buffer | string; env?: Record<string, string> } = {}): Run {
  const r: SpawnSyncReturns<Buffer> = spawnSync(process.execPath, [BIN, ...args], {
    cwd: repoRoot(),
    input: options.input,
    env: baseEnv(options.env),
    maxBuffer: 256 << 20,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

const LOG = 'test/fixtures/logs/bounded_loop_40.log';

let tmp: string;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-cli-'));
});
test.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

test('--help: exit 0, lists collapse, examples, nothing on stderr', () => {
  const r = run(['--help']);
  assert.is(r.status, 0);
  const out = r.stdout.toString();
  assert.match(out, /Usage: ktstr-wasm/);
  assert.match(out, /collapse \[options\] \[FILE\|-\]/);
  assert.match(out, /Examples:/);
  assert.is(r.stderr, '');
});

test('collapse --help and help collapse: options, examples, exit codes', () => {
  for (const args of [
    ['collapse', '--help'],
    ['help', 'collapse'],
  ]) {
    const r = run(args);
    assert.is(r.status, 0, args.join(' '));
    const out = r.stdout.toString();
    for (const word of ['--raw', '--stats', '--json', '--expand', '--engine <name>', 'Examples:', 'Exit status']) {
      assert.ok(out.includes(word), `${args.join(' ')}: help mentions ${word}`);
    }
  }
});

test('--version prints the package.json version', () => {
  const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = run([flag]);
    assert.is(r.status, 0);
    assert.is(r.stdout.toString(), `${pkg.version}\n`);
  }
});

test('no command: help on stderr, exit 2', () => {
  const r = run([]);
  assert.is(r.status, 2);
  assert.is(r.stdout.length, 0);
  assert.match(r.stderr, /Usage: ktstr-wasm/);
});

test('usage errors exit 2 with "ktstr-wasm: error:" on stderr and nothing on stdout', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /^ktstr-wasm: error: unknown option '--bogus'/],
    [['collapse', '--bogus', LOG], /^ktstr-wasm: error: unknown option '--bogus'/],
    [['frobnicate'], /^ktstr-wasm: error: unknown command 'frobnicate'/],
    [['collapse', '--engine'], /^ktstr-wasm: error: option '--engine <name>' argument missing/],
    [['collapse', '--engine', 'rust', LOG], /^ktstr-wasm: error: option '--engine <name>' argument 'rust' is invalid/],
    [['collapse', LOG, LOG], /^ktstr-wasm: error: too many arguments/],
    [['collapse', '--raw', '--stats', LOG], /^ktstr-wasm: error: options --raw and --stats cannot be used together/],
    [['collapse', '--json', '--expand', LOG], /^ktstr-wasm: error: option --json cannot be used with --expand/],
  ];
  for (const [args, message] of cases) {
    const r = run(args);
    assert.is(r.status, 2, args.join(' '));
    assert.is(r.stdout.length, 0, args.join(' '));
    assert.match(r.stderr, message);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('missing or unreadable input file: clear message, exit 2, no stack trace', () => {
  const missing = run(['collapse', 'no/such/file.log']);
  assert.is(missing.status, 2);
  assert.is(missing.stderr, 'ktstr-wasm: error: cannot read no/such/file.log: no such file\n');
  assert.is(missing.stdout.length, 0);
  const dir = run(['collapse', 'test']);
  assert.is(dir.status, 2);
  assert.is(dir.stderr, 'ktstr-wasm: error: cannot read test: is a directory\n');
});

test('KTSTR_DEBUG=1 adds the stack trace', () => {
  const r = run(['collapse', 'no/such/file.log'], { env: { KTSTR_DEBUG: '1' } });
  assert.is(r.status, 2);
  assert.match(r.stderr, /^ktstr-wasm: error: cannot read/);
  assert.match(r.stderr, /\n\s+at /);
});

test('collapse FILE: stdout is the expected collapsed log (wasm and ts engines)', () => {
  const expected = expectedCollapsed('bounded_loop_40');
  for (const args of [
    ['collapse', LOG],
    ['collapse', '--engine', 'wasm', LOG],
    ['collapse', '--engine', 'ts', LOG],
  ]) {
    const r = run(args);
    assert.is(r.status, 0, args.join(' '));
    assert.ok(r.stdout.equals(expected), `${args.join(' ')}: output differs from expected`);
    assert.is(r.stderr, '');
  }
});

test('collapse of a .gz file decompresses it', () => {
  const r = run(['collapse', 'test/fixtures/logs/bounded_loop_400.log.gz']);
  assert.is(r.status, 0);
  assert.ok(r.stdout.equals(expectedCollapsed('bounded_loop_400')));
  const raw = run(['collapse', '--raw', 'test/fixtures/logs/bounded_loop_400.log.gz']);
  assert.ok(raw.stdout.equals(fixture('bounded_loop_400').bytes));
});

test('a corrupt .gz file: exit 1 with a message', () => {
  const bad = join(tmp, 'bad.log.gz');
  writeFileSync(bad, 'this is not gzip\n');
  const r = run(['collapse', bad]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /^ktstr-wasm: error: .*bad\.log\.gz: not valid gzip data/);
});

test('collapse from stdin (no argument and "-")', () => {
  const input = fixture('nested_loops').bytes;
  const expected = expectedCollapsed('nested_loops');
  for (const args of [['collapse'], ['collapse', '-']]) {
    const r = run(args, { input });
    assert.is(r.status, 0);
    assert.ok(r.stdout.equals(expected), `${args.join(' ')}: stdin output differs`);
  }
  const empty = run(['collapse'], { input: '' });
  assert.is(empty.status, 0);
  assert.is(empty.stdout.length, 0);
});

test('--raw prints the input unchanged', () => {
  const input = fixture('verify_loop').bytes;
  const file = run(['collapse', '--raw', 'test/fixtures/logs/verify_loop.log']);
  assert.is(file.status, 0);
  assert.ok(file.stdout.equals(input));
  const junk = Buffer.from([0, 1, 2, 0xff, 13, 10, 0xfe, 10, 65]);
  assert.ok(run(['collapse', '--raw'], { input: junk }).stdout.equals(junk));
});

test('--stats: the summary of each program', () => {
  const r = run(['collapse', '--stats', 'test/fixtures/logs/subprog_calls.log']);
  assert.is(r.status, 0);
  const out = r.stdout.toString();
  assert.match(out, /^program 1 \(summary at line 808\)\n/);
  assert.match(out, /processed insns +165\n/);
  assert.match(out, /insn limit +1000000\n/);
  assert.match(out, /total_states +8\n/);
  assert.match(out, /peak_states +8\n/);
  assert.match(out, /max_states_per_insn +3\n/);
  assert.match(out, /mark_read +0\n/);
  assert.match(out, /stack depth +8\+0\n/);
  assert.match(out, /verification time +676 usec\n/);
  assert.not.match(out, /mark_precise/); // the log itself is not printed
  const two = run(['collapse', '--stats'], {
    input: Buffer.concat([fixture('verify_loop').bytes, fixture('bounded_loop_40').bytes]),
  });
  assert.match(two.stdout.toString(), /program 2 \(summary at line 2914\)/);
});

test('--stats --json: valid JSON with the numbers', () => {
  const r = run(['collapse', '--stats', '--json', 'test/fixtures/logs/bounded_loop_400.log.gz']);
  assert.is(r.status, 0);
  const doc = JSON.parse(r.stdout.toString()) as { programs: Array<Record<string, unknown>> };
  assert.is(doc.programs.length, 1);
  assert.is(doc.programs[0].processedInsns, 4804);
  assert.is(doc.programs[0].totalStates, 60);
  assert.is(doc.programs[0].peakStates, 60);
  assert.equal(doc.programs[0].stackDepth, [8]);
  assert.is(doc.programs[0].verificationTimeUsec, 20096);
});

test('--stats on a log without a summary: exit 1', () => {
  const r = run(['collapse', '--stats'], { input: 'R1 invalid mem access\n' });
  assert.is(r.status, 1);
  assert.is(r.stdout.length, 0);
  assert.match(r.stderr, /^ktstr-wasm: error: <stdin>: no verifier summary/);
});

test('--json: the collapsed structure as valid JSON', () => {
  const r = run(['collapse', '--json', LOG]);
  assert.is(r.status, 0);
  const doc = JSON.parse(r.stdout.toString()) as {
    blocks: Array<{ iterations: number; linesPerIteration: number; startLine: number; endLine: number }>;
    inputLines: number;
    outputLines: number;
  };
  assert.is(doc.inputLines, 2820);
  assert.is(doc.outputLines, 156);
  assert.is(doc.blocks.length, 1);
  assert.is(doc.blocks[0].iterations, 39);
  assert.is(doc.blocks[0].linesPerIteration, 14);
  assert.ok(doc.blocks[0].startLine < doc.blocks[0].endLine);
});

test('--expand: collapse then expand gives back the normalised log', () => {
  for (const name of ['bounded_loop_40', 'nested_loops', 'verify_loop']) {
    const input = fixture(name).bytes;
    const collapsed = run(['collapse'], { input });
    const expanded = run(['collapse', '--expand'], { input: collapsed.stdout });
    assert.is(expanded.status, 0);
    assert.equal(normaliseLog(expanded.stdout.toString('latin1')), normaliseLog(input.toString('latin1')), name);
    assert.ok(expanded.stdout.length > collapsed.stdout.length, `${name}: expanding makes it longer`);
  }
});

test('--expand on unbalanced markers: exit 1 with a clear message', () => {
  const r = run(['collapse', '--expand'], { input: '--- 3x of the following 5 lines ---\na\nb\n' });
  assert.is(r.status, 1);
  assert.is(r.stdout.length, 0);
  assert.is(r.stderr, 'ktstr-wasm: error: <stdin>: unbalanced repeat markers: unterminated repeat\n');
  const stray = run(['collapse', '--expand'], { input: 'a\n--- end repeat ---\n' });
  assert.is(stray.status, 1);
  assert.match(stray.stderr, /unbalanced repeat markers: end marker without a repeat/);
});

test('no ANSI escapes when stdout is not a TTY, or with NO_COLOR', () => {
  for (const env of [{}, { NO_COLOR: '1' }, { NO_COLOR: '1', FORCE_COLOR: '1' }] as Array<Record<string, string>>) {
    for (const args of [
      ['--help'],
      ['collapse', '--stats', LOG],
      ['collapse', LOG],
      ['collapse', 'missing.log'],
      ['--bogus'],
    ]) {
      const r = run(args, { env });
      assert.not.match(r.stdout.toString('latin1'), ANSI, `stdout of ${args.join(' ')} ${JSON.stringify(env)}`);
      assert.not.match(r.stderr, ANSI, `stderr of ${args.join(' ')} ${JSON.stringify(env)}`);
    }
  }
});

// On a terminal colour is on (so the test above is not vacuous); util-linux `script`
// gives the child a pseudo-terminal. Registered only where `script` exists.
if (existsSync('/usr/bin/script')) {
  test('on a terminal: bold stats labels and a red error; NO_COLOR turns them off', () => {
    const tty = (cmd: string, env: Record<string, string> = {}): string => {
      const r = spawnSync('/usr/bin/script', ['-qec', cmd, '/dev/null'], {
        cwd: repoRoot(),
        env: baseEnv({ TERM: 'xterm', ...env }),
      });
      return r.stdout.toString('latin1');
    };
    const node = JSON.stringify(process.execPath);
    assert.ok(tty(`${node} bin/ktstr-wasm collapse --stats ${LOG}`).includes('\x1b[1mprocessed insns'));
    assert.ok(
      tty(`${node} bin/ktstr-wasm collapse missing.log`).includes('\x1b[31mktstr-wasm: error: cannot read missing.log'),
    );
    assert.not.match(tty(`${node} bin/ktstr-wasm collapse --stats ${LOG}`, { NO_COLOR: '1' }), ANSI);
    assert.not.match(tty(`${node} bin/ktstr-wasm collapse missing.log`, { NO_COLOR: '1' }), ANSI);
  });

  test('on a terminal, collapse without FILE does not wait for typed input: exit 2', () => {
    const r = spawnSync(
      '/usr/bin/script',
      ['-qec', `${JSON.stringify(process.execPath)} bin/ktstr-wasm collapse; echo "rc=$?"`, '/dev/null'],
      { cwd: repoRoot(), env: baseEnv({ NO_COLOR: '1' }), timeout: 20_000 },
    );
    const out = r.stdout.toString();
    assert.match(out, /ktstr-wasm: error: no input: name a FILE/);
    assert.match(out, /rc=2/);
  });
}

/** Runs the CLI writing to a pipe we close after the first chunk; resolves with status and stderr. */
function runAndCloseEarly(args: string[]): Promise<{ status: number | null; stderr: string; got: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: repoRoot(),
      env: baseEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let got = 0;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.once('data', (d: Buffer) => {
      got = d.length;
      child.stdout.destroy();
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr, got }));
  });
}

test('reader closes the pipe early (| head): exit 0, no message', async () => {
  const big = join(tmp, 'big.log');
  const lines: string[] = [];
  for (let i = 0; i < 400_000; i++) lines.push(`${i}: (b7) r1 = ${i}`.padEnd(38) + `; R1=${i}`);
  writeFileSync(big, lines.join('\n') + '\n'); // ~20 MB of unique lines: all of it is output
  for (const args of [
    ['collapse', big],
    ['collapse', '--raw', big],
    ['collapse', '--engine', 'ts', big],
  ]) {
    const r = await runAndCloseEarly(args);
    assert.ok(r.got > 0, 'read something first');
    assert.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stderr, '', args.join(' '));
  }
});

test.run();
