// The agent's side of the shared bulk region: maps it from /dev/mem (the guest kernel keeps
// it as e820 reserved memory, so no page of its own is there) and sends records through it;
// when the region is missing or full, `send` says so and the caller falls back to COM2.

import { openSync, closeSync, constants } from 'node:fs';
import type { NativeBinding } from '../../kvm/native.js';
import { RingWriter } from '../ring.js';
import type { AgentPlan } from '../plan.js';
import type { AgentChannel } from './channel.js';

export class BulkSender {
  private constructor(
    private readonly ring: RingWriter,
    private readonly chan: AgentChannel,
    private readonly mapping: ArrayBuffer,
    private readonly n: NativeBinding,
  ) {}

  /** Maps the plan's region; null when there is none or it cannot be mapped. */
  static open(plan: AgentPlan, chan: AgentChannel, n: NativeBinding): BulkSender | null {
    if (plan.ring === null) return null;
    let fd = -1;
    try {
      fd = openSync('/dev/mem', constants.O_RDWR | constants.O_SYNC);
      const map = n.mmap(
        fd,
        plan.ring.size,
        n.constants.PROT_READ | n.constants.PROT_WRITE,
        n.constants.MAP_SHARED,
        plan.ring.guestPhysAddr,
      );
      return new BulkSender(new RingWriter(new Uint8Array(map)), chan, map, n);
    } catch {
      return null;
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  /** Writes a record and announces it; waits for the host's ack when the ring is full. False: not sent. */
  async send(key: string, bytes: Uint8Array, ackTimeoutMs = 10_000): Promise<boolean> {
    let record = this.ring.write(key, bytes);
    if (record === null) {
      const ack = await this.chan.next('bulk-ack', ackTimeoutMs);
      if (ack?.type === 'bulk-ack') this.ring.acked = ack.total;
      record = this.ring.write(key, bytes);
      if (record === null) return false;
    }
    this.chan.send({ type: 'bulk', record, total: this.ring.total });
    return true;
  }

  close(): void {
    this.n.munmap(this.mapping);
  }
}
