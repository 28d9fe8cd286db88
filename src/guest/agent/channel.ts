// The agent's end of COM2 (/dev/ttyS1, put in raw mode by /init): frames out with
// FrameWriter, frames in with FrameReader; `next(type)` waits for the host's next message of
// a type. Writes are synchronous, so a message is on the wire before the agent goes on.

import { closeSync, constants, createReadStream, openSync, writeSync, type ReadStream } from 'node:fs';
import { FrameReader, FrameWriter, type Message } from '../protocol.js';
import type { AgentMessage, HostMessage } from '../plan.js';

export const APP_TTY = '/dev/ttyS1';

export class AgentChannel {
  private readonly fd: number;
  private readonly writer: FrameWriter;
  private readonly reader: FrameReader;
  private input: ReadStream | undefined;
  private readonly inbox: Message[] = [];
  private waiter: (() => void) | undefined;

  constructor(nonce: string, path = APP_TTY) {
    this.fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
    this.writer = new FrameWriter(nonce, (bytes) => {
      let off = 0;
      while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    });
    this.reader = new FrameReader(nonce);
  }

  send(message: AgentMessage): void {
    this.writer.send(message);
  }

  /** The host's next message of `type`, or null after `timeoutMs`. */
  async next(type: HostMessage['type'], timeoutMs: number): Promise<HostMessage | null> {
    this.listen();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as HostMessage;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private listen(): void {
    if (this.input) return;
    this.input = createReadStream('', { fd: this.fd, autoClose: false });
    this.input.on('data', (chunk) => {
      for (const ev of this.reader.feed(chunk as Buffer)) if (ev.kind === 'message') this.inbox.push(ev.message);
      this.waiter?.();
    });
    this.input.on('error', () => {
      /* the host is gone: next() times out */
    });
  }

  close(): void {
    this.input?.destroy();
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}
