// The text reporters on realistic cells, compared to the exact text a person reads: the
// verified_insns table (flat, lo..hi, -), the grid and counts (✅ ❌ 🇽 and the plain words),
// failing combinations, the failure block, progress lines; guest text that would drive the
// terminal (ESC, CR, newlines in a one-line message) is made printable; colour only through
// the painter passed in; the plain-glyph decision from the locale and NO_COLOR.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  failingCombinations,
  failureBlock,
  progressLine,
  summaryCounts,
  summaryGrid,
  terminalSafe,
  verifiedInsnsTables,
  wantsPlainGlyphs,
  type Painter,
} from '../../src/sweep/report.js';
import { healthy, passedCell, rejected, stockSetupFailure } from './fake-cells.js';

const sweep = [...healthy, stockSetupFailure, rejected];
const matrix = sweep.map((c) => c.id);

/** Marks what each colour would paint, so a test sees colour without ANSI. */
const tagged: Painter = {
  green: (s) => `<g>${s}</g>`,
  red: (s) => `<r>${s}</r>`,
  yellow: (s) => `<y>${s}</y>`,
  dim: (s) => `<d>${s}</d>`,
  bold: (s) => `<b>${s}</b>`,
};

test('verified_insns table: programs sorted, 2296..2358 across LLC counts, flat values, - on a kernel without them', () => {
  assert.is(
    verifiedInsnsTables(sweep, matrix),
    [
      'verified_insns (per scheduler; rows: kernel, columns: BPF program; a range across topologies):',
      'scx-ktstr:',
      ' kernel                      ktstr_dispatch  ktstr_enqueue  ktstr_init  ktstr_select_cp',
      ' 6.12.117-sched_ext          102             74             2296..2358  39',
      ' 6.12.118+deb12-cloud-amd64  -               -              -           -',
      'ktstr_broken:',
      '  (no program loaded on any kernel)',
      '',
    ].join('\n'),
  );
});

test('verified_insns table: one number when every topology of the kernel agrees', () => {
  const flat = healthy.filter((c) => c.topology === 'tiny-2llc' || c.topology === 'smt-2llc');
  const row = verifiedInsnsTables(flat)
    .split('\n')
    .find((l) => l.startsWith(' 6.12.117'))!;
  assert.is(row, ' 6.12.117-sched_ext  102             74             2327        39');
});

test('verified_insns table: kernels in matrix order, not input order', () => {
  const t = verifiedInsnsTables([stockSetupFailure, ...healthy], matrix);
  assert.ok(t.indexOf(' 6.12.117') < t.indexOf(' 6.12.118'), t);
});

test('grid and counts: ✅ every kernel passed, ❌ every kernel failed, 🇽 mixed across kernels; blank where no cell', () => {
  assert.is(
    summaryGrid(sweep),
    [
      ' topology   scx-ktstr  ktstr_broken',
      ' odd-3llc   ✅',
      ' smt-2llc   ✅',
      ' tiny-1llc  🇽          ❌', // 🇽 alone is one column (East Asian Width N, as wcwidth counts it); ✅ ❌ two
      ' tiny-2llc  ✅',
      '',
    ].join('\n'),
  );
  assert.is(summaryCounts(sweep), 'sweep summary: 3 ✅  1 ❌  1 🇽  (6 cells: 4 passed, 2 failed)\n');
  assert.is(summaryCounts(healthy), 'sweep summary: 4 ✅  0 ❌  0 🇽  (4 cells: 4 passed, 0 failed)\n');
});

test('grid and counts with plain glyphs: PASS, FAIL, MIXED, aligned', () => {
  assert.is(
    summaryGrid(sweep, { plain: true }),
    [
      ' topology   scx-ktstr  ktstr_broken',
      ' odd-3llc   PASS',
      ' smt-2llc   PASS',
      ' tiny-1llc  MIXED      FAIL',
      ' tiny-2llc  PASS',
      '',
    ].join('\n'),
  );
  assert.is(
    summaryCounts(sweep, { plain: true }),
    'sweep summary: 3 PASS  1 FAIL  1 MIXED  (6 cells: 4 passed, 2 failed)\n',
  );
});

test('failing combinations: scheduler / kernel / topology: kind: message, one line each; nothing when all passed', () => {
  assert.is(
    failingCombinations(sweep),
    [
      'failing combinations (scheduler / kernel / topology):',
      '  scx-ktstr / 6.12.118+deb12-cloud-amd64 / tiny-1llc: setup: kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT is not set)',
      "  ktstr_broken / 6.12.117-sched_ext / tiny-1llc: verify: R1 invalid mem access 'scalar'",
      '',
    ].join('\n'),
  );
  const multiLine = {
    ...rejected,
    failure: { kind: 'crash' as const, message: 'scx_bpf_error\n  at ktstr_dispatch\u001b[2J' },
  };
  assert.is(
    failingCombinations([multiLine]).split('\n')[1],
    '  ktstr_broken / 6.12.117-sched_ext / tiny-1llc: crash: scx_bpf_error at ktstr_dispatch^[[2J',
  );
  assert.is(failingCombinations(healthy), '');
});

test('failure block of a verify rejection: header, status, failure, verifier stats, collapsed log', () => {
  assert.is(
    failureBlock(rejected),
    [
      '=== ktstr_broken | kernel 6.12.117-sched_ext | topology tiny-1llc ===',
      '',
      '  scheduler: NOT ATTACHED — scheduler process exited during BPF load/startup',
      "  failed: verify: R1 invalid mem access 'scalar'",
      '',
      '--- verifier stats ---',
      '  processed=186  states=7/7  limit=1000000',
      '',
      '--- scheduler log ---',
      rejected.schedulerLog.replace(/\n$/, ''),
      '',
    ].join('\n'),
  );
});

test('failure block of a dispatch stall: programs, a worker summary naming the stuck CPU, exit message, console tail made printable', () => {
  const stalled = passedCell('tiny-2llc', {
    passed: false,
    failure: { kind: 'dispatch', message: 'no forward progress on CPU 3 in 2000 ms' },
    workers: [0, 1, 2, 3].map((cpu) => ({
      cpu,
      iterations: cpu === 3 ? 0 : 4000 + cpu,
      cpuTimeNs: 1e9,
      policy: cpu === 2 ? 0 : 7,
    })),
    exitMessage: 'EXIT: runnable task stall (kind 1026)',
    schedulerLog: '',
    consoleTail:
      '[    9.1] sched_ext: BPF scheduler "ktstr" disabled\r\n\u001b[2J\u001b[H[    9.2] reboot: Power down\r\n',
  });
  const b = failureBlock(stalled);
  assert.ok(
    b.includes(
      [
        '--- programs (verified_insns) ---',
        '  ktstr_dispatch 102, ktstr_enqueue 74, ktstr_init 2327, ktstr_select_cp 39',
        '',
        '--- dispatch probe ---',
        '  4 workers (one per CPU): 3 made progress (>= 4000 iterations), 1 did not: cpu 3',
        '  not SCHED_EXT: cpu 2 (policy 0)',
        '',
        '  EXIT: runnable task stall (kind 1026)',
        '',
        '--- guest console (tail) ---',
        '[    9.1] sched_ext: BPF scheduler "ktstr" disabled',
        '^[[2J^[[H[    9.2] reboot: Power down',
        '',
      ].join('\n'),
    ),
    b,
  );
  assert.not.ok(b.includes('--- scheduler log ---'), 'an empty log is left out');
  assert.not.ok(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(b), 'no control character reaches the terminal');
});

test('terminalSafe: keeps tab and newline, shows C0, DEL and C1 (8-bit CSI) as text', () => {
  assert.is(terminalSafe('a\tb\nc\r\n\u0000\u0007\u001b[31m\u007f\u009b2J'), 'a\tb\nc\n^@^G^[[31m^?\\x9b2J');
});

test('progress lines: PASS and FAIL in the nextest shape; colour only through the painter', () => {
  const bare = { ...healthy[2], workers: [], programs: [] };
  assert.is(progressLine(bare, 1, 4), 'PASS [  12.4s] (1/4) sweep/scx-ktstr/6.12.117-sched_ext/odd-3llc');
  assert.is(
    progressLine(healthy[2], 3, 4),
    'PASS [  12.4s] (3/4) sweep/scx-ktstr/6.12.117-sched_ext/odd-3llc — 9 CPUs progressed (>= 5767 iterations each); struct_ops programs ran 4191 times, 1.1 us/call',
  );
  assert.is(
    progressLine(rejected, 2, 12),
    "FAIL [   3.9s] ( 2/12) sweep/ktstr_broken/6.12.117-sched_ext/tiny-1llc — verify: R1 invalid mem access 'scalar'",
  );
  assert.is(
    progressLine(bare, 1, 4, tagged),
    '<g>PASS</g> [  12.4s] (1/4) sweep/scx-ktstr/6.12.117-sched_ext/odd-3llc',
  );
  assert.ok(progressLine(rejected, 2, 12, tagged).startsWith('<r>FAIL</r> ['));
  const b = failureBlock(rejected, tagged);
  assert.ok(b.startsWith('<b>=== ktstr_broken | kernel 6.12.117-sched_ext | topology tiny-1llc ===</b>\n'), b);
  assert.ok(b.includes("<r>  failed: verify: R1 invalid mem access 'scalar'</r>"), b);
  const twoLines = {
    ...rejected,
    failure: { kind: 'guest' as const, message: 'Kernel panic - not syncing:\nAttempted to kill init!' },
  };
  assert.is(progressLine(twoLines, 1, 1).split('\n').length, 1, 'one line whatever the message');
});

test('wantsPlainGlyphs: NO_COLOR (non-empty) or TERM=dumb or no UTF-8 locale; LC_ALL over LC_CTYPE over LANG', () => {
  const cases: [NodeJS.ProcessEnv, boolean][] = [
    [{ LANG: 'en_US.UTF-8' }, false],
    [{ LANG: 'C.utf8' }, false],
    [{ LANG: 'en_US.UTF-8', NO_COLOR: '1' }, true],
    [{ LANG: 'en_US.UTF-8', NO_COLOR: '' }, false],
    [{ LANG: 'en_US.UTF-8', TERM: 'dumb' }, true],
    [{ LANG: 'C' }, true],
    [{}, true],
    [{ LANG: 'en_US.UTF-8', LC_ALL: 'C' }, true],
    [{ LANG: 'C', LC_CTYPE: 'C.UTF-8' }, false],
    [{ LANG: 'C', LC_ALL: '', LC_CTYPE: 'de_DE.UTF-8' }, false],
    [{ LANG: 'en_US.ISO-8859-1' }, true],
  ];
  for (const [env, plain] of cases) assert.is(wantsPlainGlyphs(env), plain, JSON.stringify(env));
});

test.run();
