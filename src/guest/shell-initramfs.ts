// The small initramfs of `ktstr-wasm shell`: static busybox as /bin/busybox and a shell
// /init that mounts proc/sys/dev, prints INIT_MARKER on the console, runs the command from
// /ktstr/cmd (its stdout and stderr go to COM2, the application channel, in raw mode), and
// reports the exit status through the exit port (one byte to port EXIT_PORT via /dev/port),
// then powers off. Without a command it runs an interactive shell on the console.

import { existsSync } from 'node:fs';
import { CpioWriter, MemorySink } from './cpio.js';
import { sharedLibraryClosure } from './elf-deps.js';
import { EXIT_PORT } from '../vmm/devices/ports.js';

export const INIT_MARKER = 'KTSTR_INIT_START';
/**
 * The line /init writes to COM2 before the command's output: bytes before it (the 8250
 * driver's probe writes a 0xff to each UART) are not application data.
 */
export const APP_START = 'KTSTR_APP_START\n';

/**
 * /init prints `KTSTR_EXIT=<status>` on the console before it writes the status to the exit
 * port through /dev/port; a kernel without /dev/port (CONFIG_DEVPORT off, e.g. Debian's cloud
 * kernel) then powers off instead, and this line is where the status is.
 */
export const EXIT_LINE = 'KTSTR_EXIT=';

/** The last status /init printed on the console, if any. */
export function printedExitCode(console: string): number | undefined {
  const all = [...console.matchAll(new RegExp(`^${EXIT_LINE}(\\d+)\\r?$`, 'gm'))];
  return all.length === 0 ? undefined : Number(all[all.length - 1][1]) & 255;
}

/** The command's output on COM2: what follows APP_START (empty while it has not arrived). */
export function appOutput(com2: string): string {
  const i = com2.indexOf(APP_START);
  return i < 0 ? '' : com2.slice(i + APP_START.length);
}
export const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

export function findBusybox(): string {
  const p = BUSYBOX_CANDIDATES.find((c) => existsSync(c));
  if (p === undefined)
    throw new Error(`busybox not found (looked at ${BUSYBOX_CANDIDATES.join(', ')}; apt-get install busybox-static)`);
  return p;
}

export function initScript(): string {
  const APP_START_SH = APP_START.replace('\n', '\\n');
  return `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
echo ${INIT_MARKER}
if [ -f /ktstr/cmd ]; then
  stty -F /dev/ttyS1 raw -echo 2>/dev/null
  printf '${APP_START_SH}' >/dev/ttyS1
  sh /ktstr/cmd </dev/null >/dev/ttyS1 2>&1
  rc=$?
else
  setsid cttyhack sh
  rc=$?
fi
echo "${EXIT_LINE}$rc"
printf "\\\\$(printf %o $((rc & 255)))" | dd of=/dev/port bs=1 seek=${EXIT_PORT} count=1 2>/dev/null
poweroff -f
`;
}

/** Builds the initramfs (cpio newc) in memory. */
export async function buildShellInitramfs(o: { exec?: string; busybox?: string } = {}): Promise<Buffer> {
  const busybox = o.busybox ?? findBusybox();
  const closure = sharedLibraryClosure([busybox]);
  if (closure.missing.length > 0) throw new Error(`${busybox}: libraries not found: ${closure.missing.join(', ')}`);
  const sink = new MemorySink();
  const w = new CpioWriter(sink);
  for (const d of ['/proc', '/sys', '/dev', '/tmp', '/root', '/ktstr']) await w.directory(d);
  await w.hostPath(busybox, { as: '/bin/busybox' });
  for (const f of [...closure.interpreters, ...closure.libraries.map((l) => l.path)]) await w.hostPath(f);
  await w.file('/init', initScript(), { mode: 0o755 });
  if (o.exec !== undefined) await w.file('/ktstr/cmd', o.exec + '\n', { mode: 0o644 });
  await w.finish();
  return sink.toBuffer();
}
