// ConsoleScan: what bootVm reads in the kernel console (COM1). Fed the bytes as they are
// drained, in chunks cut anywhere (inside a UTF-8 sequence, a marker, the panic message); it
// keeps the console's text tail and returns what it newly sees in each chunk: a marker
// string the caller times, the kernel's panic message. No clock, no timers, no VM: the run
// (src/vmm/index.ts) timestamps the events and starts the panic grace period.

/** The kernel's panic message (panic()); the guest's reboot after it ends the run as 'panic'. */
export const PANIC_TEXT = 'Kernel panic - not syncing';

/** How much console text BootVmResult.consoleTail keeps. */
export const CONSOLE_TAIL = 64 * 1024;

/**
 * How much recent text markers and the panic message are looked for in: enough for any
 * marker cut across chunk boundaries (a marker must fit in it, whole, with what follows it
 * in its chunk).
 */
export const SCAN_WINDOW = 4096;

export type ConsoleEvent =
  /** `marker` (one of those asked for) seen for the first time. */
  | { kind: 'marker'; marker: string }
  /** PANIC_TEXT seen for the first time; `line` is its line as far as it has arrived. */
  | { kind: 'panic'; line: string };

/** The line of `text` that starts at the first PANIC_TEXT (from its last character when there is none). */
function panicLineIn(text: string): string {
  return text.slice(text.indexOf(PANIC_TEXT)).split('\n')[0].trim();
}

export class ConsoleScan {
  private readonly decoder = new TextDecoder();
  private readonly pending: Set<string>;
  private text = '';
  private window = '';
  private panicked = false;

  /** `markers`: the strings to report, each once. */
  constructor(markers: readonly string[] = []) {
    this.pending = new Set(markers);
  }

  /** Takes the next console bytes; returns what they complete: markers (in the order asked for), then the panic. */
  feed(bytes: Uint8Array): ConsoleEvent[] {
    const text = this.decoder.decode(bytes, { stream: true });
    this.text = (this.text + text).slice(-CONSOLE_TAIL);
    this.window = (this.window + text).slice(-SCAN_WINDOW);
    const events: ConsoleEvent[] = [];
    for (const marker of this.pending) {
      if (this.window.includes(marker)) {
        events.push({ kind: 'marker', marker });
        this.pending.delete(marker);
      }
    }
    if (!this.panicked && this.window.includes(PANIC_TEXT)) {
      this.panicked = true;
      events.push({ kind: 'panic', line: panicLineIn(this.window) });
    }
    return events;
  }

  /** The last CONSOLE_TAIL characters of the console (and any bytes finish() flushed). */
  get tail(): string {
    return this.text;
  }

  /** Whether the panic message has been seen. */
  get panicSeen(): boolean {
    return this.panicked;
  }

  /** The panic message's line as the tail holds it now (its whole line once it has arrived). */
  panicLine(): string {
    return panicLineIn(this.text);
  }

  /** The end of the console: an incomplete UTF-8 sequence left at the end becomes U+FFFD in the tail. Returns the tail. */
  finish(): string {
    this.text += this.decoder.decode();
    return this.text;
  }
}
