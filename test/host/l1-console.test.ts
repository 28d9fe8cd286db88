// L1Console and QemuStderr (src/host/l1-console.ts), what supervise reads from QEMU: L1's
// console cut into two and three pieces at every byte offset (inside the ready line, the
// markers, a failure line) gives the same events as in one piece: the ready line once in the
// piece that ends it, the console before the command, the start, the command's output byte
// for byte (a partial end marker held back, never shown), the status once. The QEMU side runs
// in test/host/host-run.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAIL_MARK, READY_MARK } from '../../src/host/init-script.js';
import { L1Console, QemuStderr, type L1Event } from '../../src/host/l1-console.js';

const NONCE = 'ktstr0123456789abcdef0123456789abcdef';
const BOOT = `\r\n[    0.5] kvm_amd: Nested Virtualization enabled\r\n${READY_MARK} 1.25\r\n`;
/** Output with text that looks like the start of the end marker, and no final newline. */
const OUTPUT = `hello\nktstr says ${NONCE.slice(0, 9)} and ${NONCE}:exi\nlast line`;
const RUN = `${BOOT}${NONCE}:start\n${OUTPUT}${NONCE}:exit:3\nreboot: Power down\n`;

/** Feeds `text` cut at `cuts`; returns each piece's events and the console. */
function feedPieces(text: string, cuts: number[]): { events: L1Event[][]; l1: L1Console } {
  const bytes = Buffer.from(text, 'latin1');
  const l1 = new L1Console(NONCE);
  const bounds = [0, ...cuts, bytes.length];
  // each piece its own Buffer, as a stream hands them
  const events = bounds.slice(1).map((end, i) => l1.feed(Buffer.from(bytes.subarray(bounds[i], end))));
  return { events, l1 };
}

const of = <K extends L1Event['kind']>(events: L1Event[], kind: K): Extract<L1Event, { kind: K }>[] =>
  events.filter((e): e is Extract<L1Event, { kind: K }> => e.kind === kind);
const outputOf = (events: L1Event[]): string =>
  of(events, 'output')
    .map((e) => e.bytes.toString('latin1'))
    .join('');
const consoleOf = (events: L1Event[]): string =>
  of(events, 'console')
    .map((e) => e.text)
    .join('');
/** Which piece holds byte `end - 1` when the text is cut at `cuts`. */
const pieceOf = (end: number, cuts: number[]): number => cuts.filter((c) => c < end).length;

function checkRun(cuts: number[]): void {
  const where = `cut at ${cuts.join(',')}`;
  const { events, l1 } = feedPieces(RUN, cuts);
  const flat = events.flat();
  assert.equal(of(flat, 'ready'), [{ kind: 'ready', guestBootSeconds: 1.25 }], where);
  assert.is(
    events.findIndex((es) => es.some((e) => e.kind === 'ready')),
    pieceOf(RUN.indexOf('\n', RUN.indexOf(READY_MARK)) + 1, cuts),
    `ready piece: ${where}`,
  );
  assert.is(consoleOf(flat), BOOT, where);
  assert.is(of(flat, 'start').length, 1, where);
  assert.is(
    events.findIndex((es) => es.some((e) => e.kind === 'start')),
    pieceOf(BOOT.length + NONCE.length + 7, cuts),
    `start piece: ${where}`,
  );
  assert.ok(
    of(flat, 'output').every((e) => e.bytes.length > 0),
    where,
  );
  assert.is(outputOf(flat), OUTPUT, where);
  assert.equal(of(flat, 'exit'), [{ kind: 'exit', code: 3 }], where);
  const exitNl = RUN.indexOf('\n', RUN.indexOf(`${NONCE}:exit:`)) + 1;
  assert.is(
    events.findIndex((es) => es.some((e) => e.kind === 'exit')),
    pieceOf(exitNl, cuts),
    `exit piece: ${where}`,
  );
  assert.equal(
    flat.map((e) => e.kind).filter((k) => k !== 'output' && k !== 'console'),
    ['ready', 'start', 'exit'],
    where,
  );
  assert.is(l1.phase, 'done');
  assert.equal(l1.finish(), []);
}

test('one piece: ready, the console before the command, start, output, exit', () => {
  const { events } = feedPieces(RUN, []);
  assert.equal(
    events[0].map((e) => e.kind),
    ['ready', 'console', 'start', 'output', 'exit'],
  );
  checkRun([]);
});

test('two pieces, cut at every byte offset', () => {
  for (let i = 0; i <= RUN.length; i++) checkRun([i]);
});

test('three pieces, cut at every pair of byte offsets', () => {
  for (let i = 0; i <= RUN.length; i++) {
    for (let j = i; j <= RUN.length; j++) checkRun([i, j]);
  }
});

test('one byte at a time', () => {
  checkRun(Array.from({ length: RUN.length - 1 }, (_, i) => i + 1));
});

test('QEMU ends during the command: finish() gives the output held back, all of it once', () => {
  const text = `${BOOT}${NONCE}:start\n${OUTPUT}${NONCE}:ex`;
  for (let i = 0; i <= text.length; i++) {
    const { events, l1 } = feedPieces(text, [i]);
    assert.is(l1.phase, 'run');
    assert.is(outputOf([...events.flat(), ...l1.finish()]), `${OUTPUT}${NONCE}:ex`, `cut at ${i}`);
  }
});

test('a status that is not an integer is 1', () => {
  const { events } = feedPieces(`${NONCE}:start\nx${NONCE}:exit:killed\n`, []);
  assert.equal(of(events.flat(), 'exit'), [{ kind: 'exit', code: 1 }]);
});

test('init fails: the failure once (without \\r), the whole console by finish(), at every cut', () => {
  const text = `${BOOT.replace(READY_MARK, 'no')}${FAIL_MARK}insmod kvm-amd.ko failed\r\nreboot: Power down\r\n`;
  for (let i = 0; i <= text.length; i++) {
    const { events, l1 } = feedPieces(text, [i]);
    const flat = events.flat();
    assert.equal(of(flat, 'failure'), [{ kind: 'failure', message: 'insmod kvm-amd.ko failed' }], `cut at ${i}`);
    assert.equal(of(flat, 'ready'), []);
    assert.is(l1.phase, 'boot');
    assert.is(consoleOf([...flat, ...l1.finish()]), text);
  }
});

test('a long boot without the start marker: all but the last 256 bytes passed on, nothing lost', () => {
  const l1 = new L1Console(NONCE);
  const line = Buffer.from('x'.repeat(1023) + '\n', 'latin1');
  const events: L1Event[] = [];
  for (let i = 0; i < 300; i++) events.push(...l1.feed(line));
  const passed = consoleOf(events);
  assert.ok(passed.length > 256 * 1024 - 1024 && passed.length <= 300 * 1024 - 256, String(passed.length));
  events.push(...l1.feed(Buffer.from(`${NONCE}:start\nok${NONCE}:exit:0\n`, 'latin1')));
  assert.is(consoleOf(events), line.toString('latin1').repeat(300));
  assert.equal(of(events, 'exit'), [{ kind: 'exit', code: 0 }]);
});

test('QemuStderr: lines kept at every cut, TCG warnings and blank lines dropped, the unfinished last line by finish()', () => {
  const text =
    "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.vmx [bit 5]\n\n" +
    'qemu-system-x86_64: -m 99999: cannot set up guest memory\n  \nqemu-system-x86_64: terminating on signal 15';
  for (let i = 0; i <= text.length; i++) {
    const s = new QemuStderr();
    const lines = [...s.feed(Buffer.from(text.slice(0, i))), ...s.feed(Buffer.from(text.slice(i)))];
    assert.equal(lines, ['qemu-system-x86_64: -m 99999: cannot set up guest memory\n'], `cut at ${i}`);
    assert.is(s.finish(), 'qemu-system-x86_64: terminating on signal 15');
  }
  const warned = new QemuStderr();
  warned.feed(Buffer.from("qemu-system-x86_64: warning: TCG doesn't support requested feature: x"));
  assert.is(warned.finish(), undefined);
});

test.run();
