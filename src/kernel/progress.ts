// Progress of a kernel `make`: counts the kbuild step lines ("  CC      kernel/sched/core.o")
// and shows count / estimated total, the current file and the elapsed time — one rewritten
// line on a terminal, a line every PLAIN_EVERY steps otherwise.

const STEP_RE = /^\s{2}([A-Z][A-Z0-9_]{1,10})(?:\s+\[[A-Z]\])?\s+(\S.*)$/;
const PLAIN_EVERY = 250;

/** The kbuild step a make output line reports ({kind: 'CC', target: 'kernel/fork.o'}), or undefined. */
export function parseStep(line: string): { kind: string; target: string } | undefined {
  const m = STEP_RE.exec(line);
  return m ? { kind: m[1], target: m[2].trim() } : undefined;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export interface ProgressSink {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
}

export class BuildProgress {
  steps = 0;
  private readonly started = Date.now();
  private lastDrawn = 0;
  private drawnLine = false;

  constructor(
    private readonly out: ProgressSink,
    private readonly phase: string,
    private readonly estimate?: number,
  ) {}

  /** Feeds one make output line; returns true when it was a build step. */
  line(text: string): boolean {
    const step = parseStep(text);
    if (!step) return false;
    this.steps++;
    const now = Date.now();
    if (this.out.isTTY) {
      if (now - this.lastDrawn >= 100) {
        this.draw(`${step.kind} ${step.target}`);
        this.lastDrawn = now;
      }
    } else if (this.steps % PLAIN_EVERY === 0) {
      this.out.write(
        `${this.phase}: ${this.counter()} steps, ${formatDuration(now - this.started)} (${step.kind} ${step.target})\n`,
      );
    }
    return true;
  }

  private counter(): string {
    if (this.estimate === undefined || this.estimate <= 0) return String(this.steps);
    const pct = Math.min(99, Math.floor((this.steps / this.estimate) * 100));
    return `${this.steps}/~${this.estimate} (${pct}%)`;
  }

  private draw(current: string): void {
    const text = `${this.phase} [${formatDuration(Date.now() - this.started)}] ${this.counter()} ${current}`;
    const width = Math.max(20, (this.out.columns ?? 100) - 1);
    this.out.write(`\r\x1b[K${text.length > width ? text.slice(0, width - 1) + '…' : text}`);
    this.drawnLine = true;
  }

  /** Ends the display with a summary line. */
  finish(ok: boolean): void {
    if (this.drawnLine) this.out.write('\r\x1b[K');
    this.out.write(
      `${this.phase}: ${ok ? 'done' : 'FAILED'}, ${this.steps} steps in ${formatDuration(Date.now() - this.started)}\n`,
    );
  }
}
