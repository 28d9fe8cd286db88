// The agent's side of the shared region: maps it from /dev/mem (the guest kernel keeps it as
// e820 reserved memory, so no page of its own is there) and writes records into it, which
// the host reads straight out of guest RAM. Where the region is missing or a record does not
// fit, `write` says so and the caller falls back to COM2.

import { openSync, closeSync, constants } from 'node:fs';
import type { NativeBinding } from '../../kvm/native.js';
import { writeRecord, type BulkRecord } from '../ring.js';
import type { AgentPlan } from '../plan.js';

export class BulkRegion {
  private constructor(
    private readonly region: Uint8Array,
    private readonly mapping: ArrayBuffer,
    private readonly n: NativeBinding,
  ) {}

  /** Maps the plan's region; null when there is none or it cannot be mapped. */
  static open(plan: AgentPlan, n: NativeBinding): BulkRegion | null {
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
      return new BulkRegion(new Uint8Array(map), map, n);
    } catch {
      return null;
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  /** Writes a record; null when it does not fit. */
  write(key: string, bytes: Uint8Array): BulkRecord | null {
    try {
      return writeRecord(this.region, key, bytes);
    } catch {
      return null; // larger than the region
    }
  }

  close(): void {
    this.n.munmap(this.mapping);
  }
}
