// The scheduler as a child process of the agent: started with its output captured (merged,
// bounded: the first and last OUTPUT_KEEP bytes are kept, the middle counted), watched for its
// end, interrupted with SIGINT and, past a deadline, killed.

import { spawn, type ChildProcess } from 'node:child_process';
import type { ProcessEnd } from '../plan.js';

export const OUTPUT_KEEP = 512 * 1024;

export class SchedulerProcess {
  private readonly child: ChildProcess;
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private dropped = 0;
  private endValue: ProcessEnd | null = null;
  readonly ended: Promise<ProcessEnd>;
  readonly startedAt = performance.now();

  constructor(path: string, args: string[]) {
    this.child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (chunk: Buffer): void => this.keep(chunk);
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.ended = new Promise<ProcessEnd>((resolve) => {
      this.child.on('error', (e) => {
        this.keep(Buffer.from(`ktstr agent: cannot start ${path}: ${e.message}\n`));
        this.endValue = { code: 127, signal: null };
        resolve(this.endValue);
      });
      this.child.on('close', (code, signal) => {
        this.endValue ??= { code, signal };
        resolve(this.endValue);
      });
    });
  }

  get end(): ProcessEnd | null {
    return this.endValue;
  }

  get alive(): boolean {
    return this.endValue === null;
  }

  private keep(chunk: Buffer): void {
    if (this.headBytes < OUTPUT_KEEP) {
      const n = Math.min(chunk.length, OUTPUT_KEEP - this.headBytes);
      this.head.push(chunk.subarray(0, n));
      this.headBytes += n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length === 0) return;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tailBytes - this.tail[0].length >= OUTPUT_KEEP) {
      this.tailBytes -= this.tail[0].length;
      this.dropped += this.tail.shift()!.length;
    }
  }

  /** The output kept so far, with a marker where bytes were dropped. */
  output(): { text: string; dropped: number } {
    const head = Buffer.concat(this.head).toString('utf8');
    const tail = Buffer.concat(this.tail).toString('utf8');
    return {
      text: this.dropped > 0 ? `${head}\n[ktstr: ${this.dropped} bytes of output dropped]\n${tail}` : head + tail,
      dropped: this.dropped,
    };
  }

  /** SIGINT, then SIGKILL after `graceMs`; resolves with how it ended and whether the grace ran out. */
  async stop(graceMs: number): Promise<{ end: ProcessEnd; timedOut: boolean }> {
    if (!this.alive) return { end: this.endValue!, timedOut: false };
    this.child.kill('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.ended.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.child.kill('SIGKILL');
      await this.ended;
    }
    return { end: this.endValue!, timedOut };
  }
}
