// writeFailureBundle (src/cell/failure-bundle.ts): the bundle directory with every file, the
// core readable; a second bundle of the same cell replaces the first; a failure part-way
// leaves neither the bundle nor its temporary directory.

import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileSource } from '../../src/elf/file-source.js';
import { readCoreDump } from '../../src/monitor/core-dump.js';
import { CoreWriteError } from '../../src/monitor/core-writer.js';
import { safeCellName, writeFailureBundle } from '../../src/cell/failure-bundle.js';
import type { CellResult } from '../../src/cell/result.js';

const tmp = mkdtempSync(join(tmpdir(), 'ktstr-bundle-'));

function result(over: Partial<CellResult> = {}): CellResult {
  return {
    id: 'sweep/ktstr_crash/6.12.117-sched_ext/tiny-1llc',
    scheduler: 'ktstr_crash',
    kernel: '6.12.117-sched_ext',
    topology: 'tiny-1llc',
    passed: false,
    failure: { kind: 'crash', message: 'scx_bpf_error: scx-ktstr: --crash-after 1 s reached' },
    schedulerStatus: 'attached, then exited',
    programs: [{ id: 7, name: 'ktstr_enqueue', verifiedInsns: 40, runCount: null, runTimeNs: null }],
    guestPrograms: [],
    schedulerLog: 'scx_ktstr: attached\nEXIT: scx_bpf_error: scx-ktstr: --crash-after 1 s reached (kind 1024)\n',
    exitMessage: 'EXIT: scx_bpf_error: scx-ktstr: --crash-after 1 s reached (kind 1024)',
    workers: [{ cpu: 0, iterations: 5, cpuTimeNs: 1000, policy: 7 }],
    consoleTail: 'x',
    phases: {},
    wallMs: 1,
    hostRssBytes: null,
    ...over,
  };
}

const memory = (): Uint8Array => {
  const m = new Uint8Array(1 << 20);
  m.fill(3, 8192, 12288);
  return m;
};

test('safeCellName: one path component, readable', () => {
  assert.is(
    safeCellName('sweep/ktstr_crash/6.12.117-sched_ext/tiny-1llc'),
    'sweep__ktstr_crash__6.12.117-sched_ext__tiny-1llc',
  );
  assert.is(safeCellName('test/a b/../x'), 'test__a_b__..__x');
  assert.not.match(safeCellName('../../etc'), /\//);
  assert.ok(!safeCellName('..').startsWith('.'), 'no hidden or parent name');
});

test('a bundle: every file, exit info parsed, the core readable, nothing temporary left', () => {
  const b = writeFailureBundle(tmp, {
    result: result(),
    console: 'Linux version 6.12\nKernel panic? no\n',
    monitor: [{ t: 1, cpu: 0 }],
    core: { regions: [{ pa: 0, bytes: memory() }], cpus: [null, null], vmcoreinfo: 'OSRELEASE=6.12.117\n' },
    coreNotes: {
      registerProblems: [
        'vCPU 0 stopped before its registers were read',
        'vCPU 1 did not answer a register read within 3000 ms',
      ],
      vmcoreinfoProblem: null,
      vmEnd: { reason: 'poweroff', detail: 'x' },
    },
  });
  assert.is(b.path, join(tmp, 'sweep__ktstr_crash__6.12.117-sched_ext__tiny-1llc'));
  assert.equal(readdirSync(b.path).sort(), [
    'console.log',
    'dump.json',
    'exit-info.json',
    'guest.core',
    'monitor.json',
    'result.json',
    'scheduler.log',
    'workers.json',
  ]);
  assert.equal(readdirSync(tmp), ['sweep__ktstr_crash__6.12.117-sched_ext__tiny-1llc'], 'no temporary directory left');
  const exit = JSON.parse(readFileSync(join(b.path, 'exit-info.json'), 'utf8'));
  assert.equal(exit.exit, {
    kind: 1024,
    reason: 'scx_bpf_error',
    message: 'scx-ktstr: --crash-after 1 s reached',
    line: result().exitMessage,
  });
  assert.is(exit.failure.kind, 'crash');
  assert.is(JSON.parse(readFileSync(join(b.path, 'result.json'), 'utf8')).bundle, b.path);
  assert.equal(JSON.parse(readFileSync(join(b.path, 'monitor.json'), 'utf8')), [{ t: 1, cpu: 0 }]);
  assert.is(JSON.parse(readFileSync(join(b.path, 'workers.json'), 'utf8')).probe[0].iterations, 5);
  const dump = JSON.parse(readFileSync(join(b.path, 'dump.json'), 'utf8'));
  assert.match(dump.vcpus[1].problem, /did not answer/, 'a vCPU without registers is said so');
  assert.is(dump.core.zeroPages, 255);
  const fd = openSync(join(b.path, 'guest.core'), 'r');
  try {
    const core = readCoreDump(fileSource(fd, 'guest.core'));
    assert.is(core.totalBytes, 1 << 20);
    assert.is(core.vmcoreinfo?.osRelease, '6.12.117');
  } finally {
    closeSync(fd);
  }
});

test('a verify failure has verifier.log; a second bundle of the same cell replaces the first', () => {
  const r = result({
    failure: { kind: 'verify', message: 'R1 invalid mem access' },
    verifier: { processedInsns: 12, insnLimit: null, totalStates: 1, peakStates: 1, maxStatesPerInsn: 1, markRead: 0 },
    schedulerLog: 'the log',
  });
  const b = writeFailureBundle(tmp, { result: r, console: 'second', monitor: [], core: null });
  assert.match(
    readFileSync(join(b.path, 'verifier.log'), 'utf8'),
    /R1 invalid mem access[\s\S]*the log[\s\S]*processedInsns/,
  );
  assert.is(readFileSync(join(b.path, 'console.log'), 'utf8'), 'second');
  assert.not.ok(existsSync(join(b.path, 'guest.core')), 'no core without memory');
  assert.is(readdirSync(tmp).length, 1, 'replaced, and the old one removed');
});

test('a failure part-way (the core refused) leaves no bundle and no temporary directory', () => {
  const before = readdirSync(tmp).sort();
  const r = result({ id: 'sweep/other/k/tiny-1llc' });
  assert.throws(
    () =>
      writeFailureBundle(tmp, {
        result: r,
        console: '',
        monitor: [],
        core: { regions: [{ pa: 0, bytes: new Uint8Array(100) }], cpus: [], vmcoreinfo: null },
      }),
    (e: unknown) => e instanceof CoreWriteError,
  );
  assert.equal(readdirSync(tmp).sort(), before);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
