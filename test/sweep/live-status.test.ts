// The live status on a terminal, with no timers: the text (done/running/queued, elapsed, each
// job's cell and phase), redraws in place at most N times a second, clear() and stop(), and a
// small virtual terminal (autowrap, cursor-up-to-line-start, erase-down) proving that what the
// sweep writes leaves only the progress lines on screen — also when a line is wider than the
// terminal, once the status knows the width.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LiveStatus } from '../../src/sweep/report.js';
import { healthy, rejected } from './fake-cells.js';

/** Just enough of a VT100 for the status: printable text, \n, ESC[nF, ESC[0J, autowrap at `columns`. */
class VirtualTerminal {
  lines: string[] = [''];
  private row = 0;
  private col = 0;

  constructor(private readonly columns: number) {}

  write(s: string): void {
    const re = /\u001b\[(\d*)([FJ])|\n|[^\u001b\n]/gu;
    let m: RegExpExecArray | null;
    let consumed = 0;
    while ((m = re.exec(s)) !== null) {
      assert.is(m.index, consumed, `unexpected escape in ${JSON.stringify(s)}`);
      consumed = re.lastIndex;
      if (m[2] === 'F') {
        this.row = Math.max(0, this.row - Number(m[1] || '1'));
        this.col = 0;
      } else if (m[2] === 'J') {
        assert.is(m[1], '0', 'only erase-down is used');
        this.lines[this.row] = this.lines[this.row].slice(0, this.col);
        this.lines.length = this.row + 1;
      } else if (m[0] === '\n') {
        this.newRow();
      } else {
        if (this.col === this.columns) this.newRow(); // autowrap: the next character goes to the next row
        const line = this.lines[this.row].padEnd(this.col);
        this.lines[this.row] = line.slice(0, this.col) + m[0] + line.slice(this.col + 1);
        this.col++;
      }
    }
    assert.is(consumed, s.length, 'every byte understood');
  }

  /** The screen's lines with text, trailing empty ones dropped. */
  screen(): string[] {
    const out = [...this.lines];
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    return out;
  }

  private newRow(): void {
    this.row++;
    this.col = 0;
    if (this.lines.length <= this.row) this.lines.push('');
  }
}

const ids = healthy.map((c) => c.id);

test('text: counts, elapsed, running jobs in job order with their phases; failures counted', () => {
  const s = new LiveStatus(ids);
  s.cellStarted(ids[1], 2);
  s.cellStarted(ids[0], 1);
  s.cellPhase(ids[0], 'probe');
  s.cellPhase(ids[1], 'verify');
  assert.is(
    s.text(3200),
    [
      'sweep: 0/4 done, 2 running, 2 queued — 3.2s',
      '  [1] sweep/scx-ktstr/6.12.117-sched_ext/tiny-1llc: probe',
      '  [2] sweep/scx-ktstr/6.12.117-sched_ext/tiny-2llc: verify',
      '',
    ].join('\n'),
  );
  s.cellFinished({ ...rejected, id: ids[0] });
  s.cellFinished({ ...rejected, id: ids[0] }); // reported twice: counted once
  assert.is(s.text(4000).split('\n')[0], 'sweep: 1/4 done (1 failed), 1 running, 2 queued — 4.0s');
  s.cellPhase(ids[0], 'teardown'); // a late phase of a finished cell does not bring it back
  assert.is(s.text(4000).split('\n').length, 3);
});

test('text: startMs makes render(now) take a clock reading; plain uses ASCII', () => {
  const s = new LiveStatus(ids, { startMs: 10_000, plain: true });
  assert.is(s.text(12_500), 'sweep: 0/4 done, 0 running, 4 queued - 2.5s\n');
});

test('render: redraws in place, at most maxPerSecond times a second', () => {
  const s = new LiveStatus(ids, { maxPerSecond: 4 });
  s.cellStarted(ids[0], 1);
  const first = s.render(0);
  assert.is(
    first,
    'sweep: 0/4 done, 1 running, 3 queued — 0.0s\n  [1] sweep/scx-ktstr/6.12.117-sched_ext/tiny-1llc: boot\n',
  );
  assert.is(s.render(100), '', 'within 250 ms of the last draw: nothing');
  assert.is(s.render(249), '');
  const second = s.render(250);
  assert.ok(second.startsWith('\u001b[2F\u001b[0J'), 'erases the two lines drawn before');
  assert.ok(second.endsWith('0.3s\n  [1] sweep/scx-ktstr/6.12.117-sched_ext/tiny-1llc: boot\n'), second);
  const counted = [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600, 650, 700, 750, 800, 850, 900, 950]
    .map((t) => 1000 + t)
    .filter((t) => s.render(t) !== '').length;
  assert.is(counted, 4, 'four draws in one second at 4 per second');
});

test('clear and stop: nothing left on the terminal; after stop, render draws nothing', () => {
  const term = new VirtualTerminal(200);
  term.write('ktstr-wasm sweep: 4 cells, 2 at a time\n');
  const s = new LiveStatus(ids);
  s.cellStarted(ids[0], 1);
  s.cellStarted(ids[1], 2);
  term.write(s.render(0));
  assert.is(term.screen().length, 4);
  s.cellPhase(ids[0], 'probe');
  term.write(s.render(500));
  assert.is(term.screen()[2], '  [1] sweep/scx-ktstr/6.12.117-sched_ext/tiny-1llc: probe');
  s.cellFinished(healthy[0]);
  term.write(s.clear());
  term.write('PASS [  12.4s] (1/4) sweep/scx-ktstr/6.12.117-sched_ext/tiny-1llc\n');
  term.write(s.render(1000));
  assert.is(term.screen().length, 4, 'first line, one progress line, a 2-line status');
  const erase = s.clear();
  assert.is(erase, '\u001b[2F\u001b[0J');
  term.write(erase);
  assert.is(s.clear(), '', 'nothing drawn: nothing to erase');
  term.write(s.render(1500));
  term.write(s.stop());
  assert.equal(term.screen(), [
    'ktstr-wasm sweep: 4 cells, 2 at a time',
    'PASS [  12.4s] (1/4) sweep/scx-ktstr/6.12.117-sched_ext/tiny-1llc',
  ]);
  assert.is(s.render(5000), '', 'stopped');
  assert.is(s.stop(), '');
});

test('a line wider than the terminal: cut to fit with columns, so erasing leaves no wrapped remainder', () => {
  const long = healthy.map((c) => ({ ...c, id: c.id + '-' + 'x'.repeat(60) }));
  const drive = (s: LiveStatus, term: VirtualTerminal): void => {
    term.write('top\n');
    s.cellStarted(long[0].id, 1);
    term.write(s.render(0));
    term.write(s.render(1000));
    term.write(s.stop());
  };
  const unaware = new VirtualTerminal(60);
  drive(new LiveStatus(long.map((c) => c.id)), unaware);
  assert.not.equal(unaware.screen(), ['top'], 'without the width a wrapped line is left behind (why columns exists)');
  const aware = new VirtualTerminal(60);
  const s = new LiveStatus(
    long.map((c) => c.id),
    { columns: 60 },
  );
  drive(s, aware);
  assert.equal(aware.screen(), ['top']);
  const text = s.text(0).split('\n');
  assert.is(text[1].length, 59, 'one column spare');
  assert.ok(text[1].endsWith('…'));
  assert.ok(
    new LiveStatus(
      long.map((c) => c.id),
      { columns: 60, plain: true },
    )
      .text(0)
      .split('\n')
      .every((l) => l.length <= 59),
  );
});

test.run();
