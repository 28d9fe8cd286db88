// One ktstr-worker launcher (docs/worker-protocol.md): the process that forks a cgroup's
// workers, parks them, starts them, moves them between phases and stops them. Driven by
// lines on its stdin; its stdout lines (`ready`, `started`, `phase`, `stopped`) are awaited
// with deadlines; `kill` is the last resort. Its workers' reports are files in its directory.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const WORKER_BINARY = '/ktstr/bin/ktstr-worker';

export class LauncherError extends Error {}

interface Waiter {
  prefix: string;
  resolve: (line: string) => void;
}

export class Launcher {
  private readonly child: ChildProcess;
  private buffered = '';
  private waiters: Waiter[] = [];
  private lines: string[] = [];
  private stderr = '';
  private exited = false;
  readonly done: Promise<void>;
  pids: number[] = [];
  spawnNs = 0;

  /** Writes the spec into `dir` and starts the launcher on it. */
  constructor(
    readonly dir: string,
    specLines: string[],
    binary = WORKER_BINARY,
  ) {
    mkdirSync(dir, { recursive: true });
    const specFile = join(dir, 'spec');
    writeFileSync(specFile, [`dir ${dir}`, ...specLines].join('\n') + '\n');
    this.child = spawn(binary, [specFile], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (s: string) => this.feed(s));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      if (this.stderr.length < 16384) this.stderr += s;
    });
    this.child.stdin!.on('error', () => {
      /* the launcher ended: reported by the waits */
    });
    this.done = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.stderr += `cannot start ${binary}: ${e.message}\n`;
        this.exited = true;
        this.flushWaiters();
        resolve();
      });
      this.child.on('close', () => {
        this.exited = true;
        this.flushWaiters();
        resolve();
      });
    });
  }

  private feed(s: string): void {
    this.buffered += s;
    let i: number;
    while ((i = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, i).trim();
      this.buffered = this.buffered.slice(i + 1);
      const w = this.waiters.findIndex((x) => line.startsWith(x.prefix));
      if (w >= 0) this.waiters.splice(w, 1)[0].resolve(line);
      else this.lines.push(line);
    }
    if (this.buffered.length > 1 << 20) this.buffered = '';
  }

  private flushWaiters(): void {
    for (const w of this.waiters.splice(0)) w.resolve('');
  }

  /** The next stdout line starting with `prefix` (seen already, or to come), within `ms`. */
  private async expect(prefix: string, ms: number): Promise<string> {
    const seen = this.lines.findIndex((l) => l.startsWith(prefix));
    if (seen >= 0) return this.lines.splice(seen, 1)[0];
    if (this.exited)
      throw new LauncherError(`ktstr-worker ended before "${prefix}": ${this.stderr.trim() || 'no message'}`);
    let timer: NodeJS.Timeout | undefined;
    const line = await new Promise<string | null>((resolve) => {
      const waiter: Waiter = { prefix, resolve };
      this.waiters.push(waiter);
      timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== waiter);
        resolve(null);
      }, ms);
    });
    clearTimeout(timer);
    if (line === null)
      throw new LauncherError(
        `ktstr-worker: no "${prefix}" within ${ms} ms${this.stderr ? `: ${this.stderr.trim()}` : ''}`,
      );
    if (line === '')
      throw new LauncherError(`ktstr-worker ended before "${prefix}": ${this.stderr.trim() || 'no message'}`);
    return line;
  }

  private send(line: string): void {
    if (!this.exited) this.child.stdin!.write(`${line}\n`);
  }

  /** Waits until every worker is in its cgroup and parked; records their pids and the spawn time. */
  async ready(ms: number): Promise<void> {
    const parts = (await this.expect('ready', ms)).split(/\s+/).slice(1).map(Number);
    if (parts.some((n) => !Number.isSafeInteger(n) || n < 0)) throw new LauncherError(`ktstr-worker: bad ready line`);
    this.spawnNs = parts[0] ?? 0;
    this.pids = parts.slice(1);
  }

  /** Starts the workers in phase `phase` (default 1). */
  async start(ms: number, phase?: number): Promise<void> {
    this.send(phase === undefined ? 'start' : `start ${phase >>> 0}`);
    await this.expect('started', ms);
  }

  phase(n: number): void {
    this.send(`phase ${n >>> 0}`);
  }

  /** Stops the workers (they write their reports); kills them when they do not end within `ms`. */
  async stop(ms: number): Promise<{ killed: boolean }> {
    this.send('stop');
    try {
      await this.expect('stopped', ms);
      await this.done;
      return { killed: false };
    } catch {
      await this.kill();
      return { killed: true };
    }
  }

  async kill(): Promise<void> {
    this.send('kill');
    const t = setTimeout(() => {
      try {
        this.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, 2000);
    await this.done;
    clearTimeout(t);
  }

  get messages(): string {
    return this.stderr.trim();
  }

  /** A worker's report file, parsed (null when missing or unreadable). */
  report(index: number): Record<string, unknown> | null {
    const file = join(this.dir, `${index}.json`);
    if (!existsSync(file)) return null;
    try {
      const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }
}
