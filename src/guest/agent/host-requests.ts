// The agent's requests to the host (a test body's ctx.capture / ctx.writeVar): a small COM2
// frame out, and the host's answer back through the mailbox -- a range of reserved guest RAM
// the host writes the reply's JSON into (the COM2 receive side holds only 4 KiB), announced by
// a `reply` frame with its length and CRC-32. One request at a time.

import { closeSync, constants, openSync } from 'node:fs';
import type { NativeBinding } from '../../kvm/native.js';
import { bulkCrc32 } from '../bulk-crc32.js';
import type { AgentPlan, HostRequest } from '../plan.js';
import type { AgentChannel } from './channel.js';

export class HostRequestError extends Error {}

const REPLY_TIMEOUT_MS = 30_000;

export class HostRequests {
  private nextId = 1;
  private mailbox: Uint8Array | null = null;
  private mapping: ArrayBuffer | null = null;

  constructor(
    private readonly plan: AgentPlan,
    private readonly chan: AgentChannel,
    private readonly n: () => NativeBinding,
  ) {}

  private map(): Uint8Array {
    if (this.mailbox !== null) return this.mailbox;
    const box = this.plan.mailbox;
    if (box == null)
      throw new HostRequestError('this cell has no host mailbox (the host is too old or the region is missing)');
    const n = this.n();
    const fd = openSync('/dev/mem', constants.O_RDONLY | constants.O_SYNC);
    try {
      this.mapping = n.mmap(fd, box.size, n.constants.PROT_READ, n.constants.MAP_SHARED, box.guestPhysAddr);
    } finally {
      closeSync(fd);
    }
    this.mailbox = new Uint8Array(this.mapping);
    return this.mailbox;
  }

  /** Sends `request` and returns the host's parsed JSON answer; throws with the host's error. */
  async ask(request: HostRequest): Promise<unknown> {
    this.map();
    const id = this.nextId++;
    this.chan.send({ type: 'request', id, request });
    const reply = await this.chan.next('reply', REPLY_TIMEOUT_MS);
    if (reply === null || reply.type !== 'reply')
      throw new HostRequestError(`the host did not answer ${request.kind} within ${REPLY_TIMEOUT_MS / 1000} s`);
    if (reply.id !== id) throw new HostRequestError(`the host answered request ${reply.id}, not ${id}`);
    if (reply.error !== null) throw new HostRequestError(reply.error);
    return JSON.parse(Buffer.from(this.read(reply.length, reply.crc, 'reply')).toString('utf8'));
  }

  /** A copy of `length` bytes of the mailbox at `offset`, checked against their CRC-32. */
  read(length: number, crc: number, what: string, offset = 0): Uint8Array {
    const box = this.map();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > box.length)
      throw new HostRequestError(`${what} offset ${offset} is outside the mailbox`);
    if (!Number.isSafeInteger(length) || length < 0 || length > box.length - offset)
      throw new HostRequestError(`${what} length ${length} does not fit the mailbox`);
    const bytes = box.slice(offset, offset + length);
    if (bulkCrc32(bytes) !== crc) throw new HostRequestError(`the ${what} in the mailbox is damaged (CRC mismatch)`);
    return bytes;
  }

  close(): void {
    if (this.mapping !== null) {
      try {
        this.n().munmap(this.mapping);
      } catch {
        /* gone */
      }
    }
    this.mapping = null;
    this.mailbox = null;
  }
}
