// The test host end to end (boots L1 four times, ~6 s each, plus a 15 s timeout): the CLI
// streams the command's output and exits with its status; --timeout ends a hang with 124;
// SIGTERM kills QEMU; the programmatic API reports timings; a missing QEMU gets the install
// command. After each run no QEMU of ours is left (found by a marker on its kernel command
// line) and no temporary file remains.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostCacheDir, runInTestHost, testHostAvailable } from '../../src/host/index.js';
import { repoPath, repoRoot } from '../helpers/repo.js';

const BIN = repoPath('bin', 'ktstr-wasm');

interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Seconds after start at which each stdout chunk arrived, with its text. */
  chunks: { at: number; text: string }[];
}

const newMarker = (): string => `ktstr_test=${randomBytes(6).toString('hex')}`;

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.FORCE_COLOR;
  return env;
}

/** Runs the CLI; `marker` goes on L1's kernel command line so its QEMU can be found. */
function cli(
  args: string[],
  marker: string,
  options: { env?: Record<string, string>; cwd?: string; onStart?: (pid: number) => void } = {},
): Promise<CliRun> {
  const started = performance.now();
  // a run here takes seconds: bound each one well below the CLI's 900 s default, so an
  // emulator stall fails this test in minutes instead of stalling the suite
  if (args[0] === 'host' && args[1] === 'run' && !args.includes('--timeout'))
    args = ['host', 'run', '--timeout', '300', ...args.slice(2)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? repoRoot(),
      env: cleanEnv({ ...options.env, KTSTR_HOST_CMDLINE_EXTRA: marker }),
    });
    const chunks: { at: number; text: string }[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) =>
      chunks.push({ at: (performance.now() - started) / 1000, text: d.toString('utf8') }),
    );
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.once('error', reject);
    child.once('spawn', () => options.onStart?.(child.pid!));
    child.once('close', (status, signal) =>
      resolve({
        status,
        signal,
        stdout: chunks.map((c) => c.text).join(''),
        stderr,
        chunks,
        seconds: (performance.now() - started) / 1000,
      }),
    );
  });
}

function qemuWith(marker: string): string[] {
  const r = spawnSync('pgrep', ['-af', marker], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes('qemu-system'));
}

function tempLeftovers(): string[] {
  const inTmp = readdirSync(tmpdir()).filter((n) => n.startsWith('ktstr-host'));
  let inCache: string[] = [];
  try {
    inCache = readdirSync(hostCacheDir()).filter((n) => n.startsWith('.tmp-'));
  } catch {
    /* no cache yet */
  }
  return [...inTmp, ...inCache];
}

let available = false;
test.before(() => {
  const a = testHostAvailable();
  available = a.ok;
  if (!a.ok) console.log(`  test host unavailable, end-to-end tests skipped: ${a.reason}`);
});

test('host run: output streams as it comes, stdout+stderr merged, exit status, env and cwd carried in', async () => {
  if (!available) return;
  const marker = newMarker();
  const script = [
    'pwd',
    'echo "env:$FOO|$KTSTR_X|$BAR|$KTSTR_IN_TEST_HOST"',
    'test -c /dev/kvm && echo kvm:yes',
    'echo to-stderr >&2',
    'sleep 3',
    'printf "no newline at the end"',
    'exit 7',
  ].join('; ');
  const r = await cli(['host', 'run', '--keep-env', 'FOO', '--', 'sh', '-c', script], marker, {
    cwd: repoPath('test'),
    env: { FOO: 'foo', KTSTR_X: 'x', BAR: 'bar' },
  });
  assert.is(r.status, 7, r.stderr);
  assert.is(r.stdout, `${repoPath('test')}\nenv:foo|x||1\nkvm:yes\nto-stderr\nno newline at the end`);
  assert.not.match(r.stdout + r.stderr, /ktstr[0-9a-f]{32}/, 'no marker leaks');
  assert.not.match(r.stdout, /KTSTR-HOST|\[\s*\d+\.\d+\]/, 'no boot noise on stdout');
  // the first chunk by which the output so far holds the line (serial output may split it anywhere)
  let soFar = '';
  const first = r.chunks.find((c) => (soFar += c.text).includes('kvm:yes'));
  assert.ok(
    first !== undefined && r.seconds - first.at > 2,
    `early output arrived before the end (${first?.at.toFixed(1)} s of ${r.seconds.toFixed(1)} s)`,
  );
  assert.match(r.stderr, /booting the test host/);
  assert.equal(qemuWith(marker), []);
  assert.equal(tempLeftovers(), []);
});

test('host run --timeout: a hang ends with 124 and a clear message, QEMU gone', async () => {
  if (!available) return;
  const marker = newMarker();
  const r = await cli(['host', 'run', '--timeout', '15', '--', 'sleep', '1000'], marker);
  assert.is(r.status, 124, r.stderr);
  assert.match(r.stderr, /did not finish within 15 s inside the test host; QEMU was killed/);
  assert.ok(r.seconds < 90, `${r.seconds} s`); // 15 s, then QEMU killed: the rest is L1's boot (slow on a loaded machine)
  assert.equal(qemuWith(marker), []);
  assert.equal(tempLeftovers(), []);
});

test('host run: SIGTERM to ktstr-wasm kills QEMU and ends with the signal', async () => {
  if (!available) return;
  const marker = newMarker();
  let pid = 0;
  const done = cli(['host', 'run', '--', 'sleep', '1000'], marker, {
    onStart: (p) => {
      pid = p;
    },
  });
  // wait until L1's QEMU is up, then signal only the CLI process
  const deadline = Date.now() + 60_000;
  while (qemuWith(marker).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.ok(qemuWith(marker).length > 0, 'QEMU started');
  await new Promise((r) => setTimeout(r, 1500));
  try {
    process.kill(pid, 'SIGTERM');
  } catch (e) {
    const early = await done; // it ended by itself before the signal: say how
    assert.unreachable(
      `ktstr-wasm ended before the signal (${(e as Error).message}): status ${early.status} signal ${early.signal}: ${early.stderr}`,
    );
  }
  const r = await done;
  assert.ok(r.signal === 'SIGTERM' || r.status === 143, `status ${r.status} signal ${r.signal}: ${r.stderr}`);
  assert.equal(qemuWith(marker), []);
  assert.equal(tempLeftovers(), []);
});

test('host run: an L1 that resets while booting is booted once more, then the run fails saying so', async () => {
  if (!available) return;
  const marker = newMarker();
  // no init in L1's initramfs: its kernel panics and (panic=-1, -no-reboot) QEMU ends with status 0
  const r = await cli(['host', 'run', '--', 'true'], `${marker} rdinit=/nonexistent init=/nonexistent`);
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /the test host \(L1\) reset while booting; booting it again \(attempt 2 of 2\)/);
  assert.is(r.stderr.match(/booting it again/g)?.length, 1, 'one more boot, not more');
  assert.match(r.stderr, /the test host \(L1\) did not boot \(QEMU exit status 0\)/);
  assert.equal(qemuWith(marker), []);
  assert.equal(tempLeftovers(), []);
});

test('runInTestHost API: node runs inside with /dev/kvm; exit code and timings reported', async () => {
  if (!available) return;
  const out: Buffer[] = [];
  const r = await runInTestHost({
    argv: ['node', '-e', "console.log(require('fs').existsSync('/dev/kvm'), process.cwd()); process.exitCode = 3"],
    cwd: repoRoot(),
    env: { PATH: process.env.PATH },
    timeoutMs: 120_000,
    onOutput: (c) => out.push(c),
  });
  assert.is(Buffer.concat(out).toString(), `true ${repoRoot()}\n`);
  assert.is(r.exitCode, 3);
  assert.is(r.timedOut, false);
  assert.ok(r.bootSeconds > 0.5 && r.bootSeconds < 180, `boot ${r.bootSeconds}`);
  assert.ok(r.guestBootSeconds > 0 && r.guestBootSeconds < r.bootSeconds, `guest ${r.guestBootSeconds}`);
  assert.ok(r.imageBytes > 50 * 1024 ** 2);
  console.log(
    `  L1 boot ${r.bootSeconds.toFixed(2)} s (guest ${r.guestBootSeconds.toFixed(2)} s), image ${(r.imageBytes / 1024 ** 2).toFixed(0)} MiB ` +
      `(${r.imageCached ? 'cached' : 'built'} in ${r.imageSeconds.toFixed(2)} s), node -e ran ${r.commandSeconds.toFixed(2)} s`,
  );
  assert.equal(tempLeftovers(), []);
});

test('host run without qemu-system-x86_64: exit 1 with the install command, nothing booted', async () => {
  const r = await cli(['host', 'run', '--', 'true'], newMarker(), { env: { PATH: '/nonexistent' } });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /qemu-system-x86_64 not found: install it with `apt-get install qemu-system-x86`/);
  assert.is(r.stdout, '');
});

test('host run with no command is a usage error', async () => {
  const r = await cli(['host', 'run'], newMarker());
  assert.is(r.status, 2);
  assert.match(r.stderr, /missing required argument/);
});

test.run();
