// ConsoleScan (src/vmm/console-scan.ts), what bootVm reads in the kernel console: the same
// console text cut into two and three pieces at every byte offset (inside UTF-8 sequences,
// markers and the panic message) gives each marker once, in the piece where its last byte
// arrives, the panic once where PANIC_TEXT completes, the whole text as the tail and the
// panic message's whole line. The VM side runs in test/kvm/vmm-boot.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONSOLE_TAIL, ConsoleScan, PANIC_TEXT, SCAN_WINDOW, type ConsoleEvent } from '../../src/vmm/console-scan.js';

const enc = new TextEncoder();
const PANIC_LINE = `${PANIC_TEXT}: Attempted to kill init! exitcode=0x00000100`;
const TEXT = [
  '[    0.000000] Linux version 6.12.117 (gcc) #1 SMP PREEMPT_DYNAMIC',
  '[    0.210000] clocksource: tsc: mask 0xffffffffffffffff – café → 𝔗𝔰𝔱𝔯',
  '[    0.400000] Run /init as init process',
  'KTSTR_INIT ready',
  `[    1.000000] ${PANIC_LINE}`,
  '[    1.000001] Kernel Offset: disabled',
  'KTSTR_LATE after the panic',
  '',
].join('\n');
const BYTES = enc.encode(TEXT);
const MARKERS = ['Run /init', 'KTSTR_INIT', 'KTSTR_LATE', 'never printed'];

/** Byte offset just past the first `s` in BYTES. */
const endOf = (s: string): number => {
  const at = TEXT.indexOf(s);
  assert.ok(at >= 0, s);
  return enc.encode(TEXT.slice(0, at + s.length)).length;
};

/** Feeds BYTES cut at `cuts`; returns each piece's events and the scan. */
function feedPieces(cuts: number[]): { events: ConsoleEvent[][]; scan: ConsoleScan } {
  const scan = new ConsoleScan(MARKERS);
  const bounds = [0, ...cuts, BYTES.length];
  const events = bounds.slice(1).map((end, i) => scan.feed(BYTES.subarray(bounds[i], end)));
  return { events, scan };
}

/** Which piece holds byte `end - 1` when BYTES is cut at `cuts`. */
const pieceOf = (end: number, cuts: number[]): number => cuts.filter((c) => c < end).length;

function check(cuts: number[]): void {
  const where = `cut at ${cuts.join(',')}`;
  const { events, scan } = feedPieces(cuts);
  const flat = events.flat();
  for (const m of MARKERS.slice(0, 3)) {
    const at = events.findIndex((es) => es.some((e) => e.kind === 'marker' && e.marker === m));
    assert.is(at, pieceOf(endOf(m), cuts), `${m}: ${where}`);
    assert.is(flat.filter((e) => e.kind === 'marker' && e.marker === m).length, 1, `${m} once: ${where}`);
  }
  assert.not.ok(
    flat.some((e) => e.kind === 'marker' && e.marker === 'never printed'),
    where,
  );
  const panics = flat.filter((e): e is Extract<ConsoleEvent, { kind: 'panic' }> => e.kind === 'panic');
  assert.is(panics.length, 1, `one panic: ${where}`);
  assert.is(
    events.findIndex((es) => es.includes(panics[0])),
    pieceOf(endOf(PANIC_TEXT), cuts),
    `panic piece: ${where}`,
  );
  assert.ok(
    panics[0].line.startsWith(PANIC_TEXT) && PANIC_LINE.startsWith(panics[0].line),
    `panic line so far: ${where}: ${panics[0].line}`,
  );
  assert.ok(scan.panicSeen);
  assert.is(scan.panicLine(), PANIC_LINE, where);
  assert.is(scan.finish(), TEXT, where);
}

test('one piece: markers in the order asked for, then the panic with its whole line', () => {
  const scan = new ConsoleScan(MARKERS);
  assert.equal(scan.feed(BYTES), [
    { kind: 'marker', marker: 'Run /init' },
    { kind: 'marker', marker: 'KTSTR_INIT' },
    { kind: 'marker', marker: 'KTSTR_LATE' },
    { kind: 'panic', line: PANIC_LINE },
  ]);
  assert.equal(scan.feed(BYTES), [], 'each marker and the panic once');
  assert.is(scan.finish(), TEXT + TEXT);
});

test('two pieces, cut at every byte offset', () => {
  for (let i = 0; i <= BYTES.length; i++) check([i]);
});

test('three pieces, cut at every pair of byte offsets', () => {
  for (let i = 0; i <= BYTES.length; i++) {
    for (let j = i; j <= BYTES.length; j++) check([i, j]);
  }
});

test('one byte at a time', () => {
  check(Array.from({ length: BYTES.length - 1 }, (_, i) => i + 1));
});

test('no panic, no markers asked for: no events; the tail is the text', () => {
  const scan = new ConsoleScan();
  assert.equal(scan.feed(enc.encode('hello\nKTSTR_INIT\n')), []);
  assert.not.ok(scan.panicSeen);
  assert.is(scan.tail, 'hello\nKTSTR_INIT\n');
});

test('the tail keeps the last CONSOLE_TAIL characters; finish() ends a cut UTF-8 sequence as U+FFFD', () => {
  const scan = new ConsoleScan();
  const line = 'x'.repeat(1023) + '\n';
  for (let i = 0; i < 100; i++) scan.feed(enc.encode(line));
  assert.is(scan.tail.length, CONSOLE_TAIL);
  scan.feed(enc.encode('end é').subarray(0, 4));
  scan.feed(Uint8Array.of(0xc3));
  assert.ok(scan.tail.endsWith('\nend '), 'the cut sequence waits for its last byte');
  assert.ok(scan.finish().endsWith('\nend \ufffd'));
});

test('a marker is found across pieces after long output, within the scan window', () => {
  const scan = new ConsoleScan(['KTSTR_INIT']);
  assert.equal(scan.feed(enc.encode('y'.repeat(3 * SCAN_WINDOW) + 'KTSTR_')), []);
  assert.equal(scan.feed(enc.encode('INIT')), [{ kind: 'marker', marker: 'KTSTR_INIT' }]);
});

test.run();
