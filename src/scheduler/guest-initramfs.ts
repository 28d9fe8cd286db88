// The initramfs a scheduler run boots with: the `shell` initramfs (static busybox, /init that
// runs /ktstr/cmd with its output on COM2 and reports its exit status through the exit
// port) plus scheduler binaries under /sched/ with their shared-library closure.

import { basename } from 'node:path';
import { CpioWriter, MemorySink } from '../guest/cpio.js';
import { sharedLibraryClosure } from '../guest/elf-deps.js';
import { findBusybox, initScript } from '../guest/shell-initramfs.js';

export const GUEST_SCHED_DIR = '/sched';

export interface SchedulerInitramfsOptions {
  /** Shell commands run by /init (as /ktstr/cmd). */
  exec: string;
  /** Host paths of scheduler binaries; each lands at /sched/<basename>. */
  schedulers: string[];
  busybox?: string;
}

/** Builds the initramfs (cpio newc) in memory. */
export async function buildSchedulerInitramfs(o: SchedulerInitramfsOptions): Promise<Buffer> {
  const busybox = o.busybox ?? findBusybox();
  const names = new Set<string>();
  for (const s of o.schedulers) {
    const name = basename(s);
    if (names.has(name)) throw new Error(`two schedulers named ${name}`);
    names.add(name);
  }
  const closure = sharedLibraryClosure([busybox, ...o.schedulers]);
  if (closure.missing.length > 0) {
    throw new Error(
      `shared libraries not found: ${closure.missing.map((m) => `${m.name} (needed by ${m.neededBy})`).join(', ')}`,
    );
  }
  const sink = new MemorySink();
  const w = new CpioWriter(sink);
  for (const d of ['/proc', '/sys', '/dev', '/tmp', '/root', '/ktstr', GUEST_SCHED_DIR]) await w.directory(d);
  await w.hostPath(busybox, { as: '/bin/busybox' });
  for (const f of [...closure.interpreters, ...closure.libraries.map((l) => l.path)]) await w.hostPath(f);
  for (const s of o.schedulers) await w.hostPath(s, { as: `${GUEST_SCHED_DIR}/${basename(s)}` });
  await w.file('/init', initScript(), { mode: 0o755 });
  await w.file('/ktstr/cmd', o.exec + '\n', { mode: 0o644 });
  await w.finish();
  return sink.toBuffer();
}
