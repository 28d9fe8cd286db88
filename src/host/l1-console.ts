// What supervise (run.ts) reads from QEMU: L1Console takes L1's serial console (QEMU's
// stdout) in chunks cut anywhere and returns what they say, following init's protocol
// (init-script.ts): the ready line (send the run spec), a failure before the command, the
// console text before the command, the start marker, the command's output, the end marker
// with its status. QemuStderr splits QEMU's stderr into the lines worth showing. Neither
// touches a process, a clock or a timer: the caller acts on the events.

import { FAIL_MARK, READY_MARK } from './init-script.js';

/** QEMU's warning for each CPU feature TCG does not emulate: noise on every run. */
export const TCG_WARNING = /^qemu-system-x86_64: warning: TCG doesn't support requested feature/;

/** Console bytes held while waiting for the start marker; beyond that all but BOOT_KEEP are passed on. */
const BOOT_HOLD = 256 * 1024;
/** What stays held then: more than any marker or ready/failure line. */
const BOOT_KEEP = 256;

export type L1Event =
  /** init waits for the run spec; L1 had been up `guestBootSeconds` (its clock). */
  | { kind: 'ready'; guestBootSeconds: number }
  /** init could not start the command (FAIL_MARK's line, without it). */
  | { kind: 'failure'; message: string }
  /** L1's console before the command (possibly empty). */
  | { kind: 'console'; text: string }
  /** The command has started. */
  | { kind: 'start' }
  /** The command's output (never empty). */
  | { kind: 'output'; bytes: Buffer }
  /** The command has ended with `code` (1 when the marker's status is not an integer). */
  | { kind: 'exit'; code: number };

/** boot: before the start marker; run: the command's output; done: after the end marker (the rest is ignored). */
export type L1Phase = 'boot' | 'run' | 'done';

/** Where the part of `buf` that could be the beginning of `mark` starts (buf.length if none). */
export function holdback(buf: Buffer, mark: Buffer): number {
  for (let i = Math.max(0, buf.length - (mark.length - 1)); i < buf.length; i++) {
    if (buf[i] === mark[0] && buf.subarray(i).equals(mark.subarray(0, buf.length - i))) return i;
  }
  return buf.length;
}

export class L1Console {
  private readonly startMark: Buffer;
  private readonly endMark: Buffer;
  private current: L1Phase = 'boot';
  private bootBuf: Buffer = Buffer.alloc(0);
  private runBuf: Buffer = Buffer.alloc(0);
  private ready = false;
  private failed = false;

  /** `nonce`: the run's nonce, which starts both markers. */
  constructor(nonce: string) {
    this.startMark = Buffer.from(`${nonce}:start\n`, 'latin1');
    this.endMark = Buffer.from(`${nonce}:exit:`, 'latin1');
  }

  get phase(): L1Phase {
    return this.current;
  }

  /** Takes the next bytes of QEMU's stdout; returns what they complete, in console order. */
  feed(data: Buffer): L1Event[] {
    const events: L1Event[] = [];
    if (this.current === 'boot') this.boot(data, events);
    else if (this.current === 'run') this.run(data, events);
    return events;
  }

  /** QEMU has ended: what was held (console text before the start marker, or output that might have begun an end marker). */
  finish(): L1Event[] {
    if (this.current === 'boot') return [{ kind: 'console', text: this.bootBuf.toString('latin1') }];
    if (this.current === 'run' && this.runBuf.length > 0) return [{ kind: 'output', bytes: this.runBuf }];
    return [];
  }

  private boot(data: Buffer, events: L1Event[]): void {
    this.bootBuf = this.bootBuf.length === 0 ? data : Buffer.concat([this.bootBuf, data]);
    const text = this.bootBuf.toString('latin1');
    if (!this.ready) {
      const r = text.indexOf(READY_MARK);
      const eol = r < 0 ? -1 : text.indexOf('\n', r);
      if (eol >= 0) {
        this.ready = true;
        events.push({ kind: 'ready', guestBootSeconds: Number(text.slice(r + READY_MARK.length, eol).trim()) });
      }
    }
    const f = text.indexOf(FAIL_MARK);
    if (f >= 0 && !this.failed) {
      const eol = text.indexOf('\n', f);
      if (eol >= 0) {
        this.failed = true;
        events.push({ kind: 'failure', message: text.slice(f + FAIL_MARK.length, eol).replace(/\r/g, '') });
      }
    }
    const s = this.bootBuf.indexOf(this.startMark);
    if (s >= 0) {
      events.push({ kind: 'console', text: this.bootBuf.toString('latin1', 0, s) }, { kind: 'start' });
      this.current = 'run';
      const rest = this.bootBuf.subarray(s + this.startMark.length);
      this.bootBuf = Buffer.alloc(0);
      if (rest.length > 0) this.run(rest, events);
      return;
    }
    if (this.bootBuf.length > BOOT_HOLD) {
      // no start marker yet: keep a bounded tail (markers are short)
      events.push({ kind: 'console', text: this.bootBuf.toString('latin1', 0, this.bootBuf.length - BOOT_KEEP) });
      this.bootBuf = this.bootBuf.subarray(this.bootBuf.length - BOOT_KEEP);
    }
  }

  private run(data: Buffer, events: L1Event[]): void {
    const output = (bytes: Buffer): void => {
      if (bytes.length > 0) events.push({ kind: 'output', bytes });
    };
    this.runBuf = this.runBuf.length === 0 ? data : Buffer.concat([this.runBuf, data]);
    const at = this.runBuf.indexOf(this.endMark);
    if (at < 0) {
      const cut = holdback(this.runBuf, this.endMark);
      output(this.runBuf.subarray(0, cut));
      this.runBuf = this.runBuf.subarray(cut);
      return;
    }
    output(this.runBuf.subarray(0, at));
    const nl = this.runBuf.indexOf(0x0a, at + this.endMark.length);
    if (nl < 0) {
      this.runBuf = this.runBuf.subarray(at);
      return;
    }
    const code = Number(this.runBuf.toString('latin1', at + this.endMark.length, nl).trim());
    events.push({ kind: 'exit', code: Number.isInteger(code) ? code : 1 });
    this.current = 'done';
    this.runBuf = Buffer.alloc(0);
  }
}

/** QEMU's stderr as lines: blank lines and TCG_WARNING dropped. */
export class QemuStderr {
  private partial = '';

  /** Takes the next bytes; returns the lines they complete that are worth keeping, each with its '\n'. */
  feed(data: Buffer): string[] {
    this.partial += data.toString('utf8');
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    return lines.filter((l) => !TCG_WARNING.test(l) && l.trim() !== '').map((l) => l + '\n');
  }

  /** QEMU has ended: its last line when it has no '\n' and is worth keeping. */
  finish(): string | undefined {
    return this.partial.trim() !== '' && !TCG_WARNING.test(this.partial) ? this.partial : undefined;
  }
}
