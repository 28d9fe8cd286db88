// A test's payload in the guest: an executable (rt-app, stress-ng, ...) started with the
// workers, in its cgroup, in its own directory, its output kept bounded; at the run's end it
// is stopped if still running (SIGTERM, then SIGKILL), and how it ended is recorded.

import { spawn, type ChildProcess } from 'node:child_process';
import type { PayloadRecord } from '../../../test-api/record.js';
import { cgroupPath } from './cgroupfs.js';

export const PAYLOAD_CWD = '/ktstr/payload';
const KEEP = 8 * 1024;

export class PayloadProcess {
  private readonly child: ChildProcess;
  private head = '';
  private tail = '';
  private dropped = 0;
  private result: { ended: PayloadRecord['ended']; exitCode: number | null; signal: string | null } | null = null;
  private readonly t0 = performance.now();
  private readonly done: Promise<void>;
  private stopping = false;

  constructor(
    readonly argv: string[],
    cgroup: string | null,
  ) {
    // busybox sh joins the cgroup first, then becomes the payload (exec): no moment outside it
    const join = cgroup === null ? '' : `echo $$ > '${cgroupPath(cgroup)}/cgroup.procs' && `;
    this.child = spawn('/bin/busybox', ['sh', '-c', `${join}exec "$@"`, 'payload', ...argv], {
      cwd: PAYLOAD_CWD,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (b: Buffer): void => {
      const s = b.toString('utf8');
      if (this.head.length < KEEP) {
        this.head += s.slice(0, KEEP - this.head.length);
        return;
      }
      this.tail += s;
      if (this.tail.length > KEEP) {
        this.dropped += this.tail.length - KEEP;
        this.tail = this.tail.slice(-KEEP);
      }
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.done = new Promise((resolve) => {
      this.child.on('error', (e) => {
        keep(Buffer.from(`cannot start ${argv[0]}: ${e.message}\n`));
        this.result = { ended: 'failed', exitCode: null, signal: null };
        resolve();
      });
      this.child.on('close', (code, signal) => {
        this.result ??= { ended: this.stopping ? 'stopped' : 'exit', exitCode: code, signal };
        resolve();
      });
    });
  }

  /** Stops it if still running; resolves with its record. */
  async finish(): Promise<PayloadRecord> {
    if (this.result === null) {
      this.stopping = true;
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await this.done;
      clearTimeout(t);
    }
    const r = this.result!;
    const output =
      this.dropped > 0 ? `${this.head}\n[ktstr: ${this.dropped} bytes dropped]\n${this.tail}` : this.head + this.tail;
    return {
      cmd: this.argv,
      ended: r.ended,
      exitCode: r.exitCode,
      signal: r.signal,
      output,
      ms: performance.now() - this.t0,
    };
  }
}
