// Issue 3, acceptance 2 -- the reference run our own VMM must match later: QEMU with real KVM
// (-accel kvm; inside the emulated test host that is nested SVM) boots the shared sched_ext
// kernel with a busybox initramfs built by src/guest/cpio.ts; its /init starts scx_simple
// (copied with its shared-library closure from src/guest/elf-deps.ts), waits until
// /sys/kernel/sched_ext/state reads "enabled", stops it with SIGINT, and powers off.
// Runs where /dev/kvm is real; on this machine kind the test runner sends test/kvm/ into the
// test host.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpioWriter, FileSink } from '../../src/guest/cpio.js';
import { sharedLibraryClosure } from '../../src/guest/elf-deps.js';
import { defaultKernelsDir, findOnPath } from '../../src/host/paths.js';

const KERNEL_LABEL = '6.12.117-sched_ext';
const BOOT_TIMEOUT_MS = 180_000;
const ENABLE_POLLS = 300; // x 0.1 s

const kernelsDir = defaultKernelsDir();
const kernelDir = kernelsDir === undefined ? undefined : join(kernelsDir, KERNEL_LABEL);

const GUEST_INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
read up idle < /proc/uptime
echo "GUEST_INIT_UPTIME=$up"
echo "GUEST_STATE_BEFORE=$(cat /sys/kernel/sched_ext/state 2>&1)"
"$SCX" >/tmp/scx.log 2>&1 &
scx=$!
state=
i=0
while [ $i -lt ${ENABLE_POLLS} ]; do
  state=$(cat /sys/kernel/sched_ext/state 2>/dev/null)
  [ "$state" = enabled ] && break
  kill -0 $scx 2>/dev/null || break
  sleep 0.1
  i=$((i + 1))
done
read up idle < /proc/uptime
echo "GUEST_ENABLED_UPTIME=$up"
echo "SCHED_EXT_STATE=$state"
echo "SCHED_EXT_OPS=$(cat /sys/kernel/sched_ext/root/ops 2>/dev/null)"
[ "$state" = enabled ] || { echo '--- scx_simple output ---'; cat /tmp/scx.log; }
kill -INT $scx 2>/dev/null
wait $scx
echo "SCX_EXIT=$?"
echo "SCHED_EXT_STATE_AFTER=$(cat /sys/kernel/sched_ext/state 2>&1)"
grep -m1 -E 'EXIT|unregistered' /tmp/scx.log
echo GUEST_DONE
poweroff -f
`;

/** Where scx_simple lands in the guest (never its host path). */
const GUEST_SCX = '/sched/scx_simple';

interface GuestRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  seconds: number;
  timedOut: boolean;
}

async function buildInitramfs(path: string, scx: string): Promise<number> {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (busybox === undefined) throw new Error('busybox not found (apt-get install busybox-static)');
  const closure = sharedLibraryClosure([busybox, scx]);
  assert.equal(closure.missing, [], 'every library of scx_simple and busybox is found');
  const handle = await open(path, 'w');
  try {
    const sink = new FileSink(handle);
    const w = new CpioWriter(sink);
    for (const d of ['/proc', '/sys', '/dev', '/tmp', '/root']) await w.directory(d);
    await w.charDevice('/dev/console', 5, 1);
    await w.charDevice('/dev/null', 1, 3, { mode: 0o666 });
    // libraries at their system paths (where ld.so looks); our files at guest paths of their own:
    // a host path such as /tmp/... would be hidden by the tmpfs /init mounts on /tmp
    for (const f of [...closure.interpreters, ...closure.libraries.map((l) => l.path)]) await w.hostPath(f);
    await w.hostFile('/bin/busybox', busybox);
    await w.hostFile(GUEST_SCX, scx, { mode: 0o755 });
    await w.file('/init', GUEST_INIT.replace('"$SCX"', `'${GUEST_SCX}'`), { mode: 0o755 });
    await w.finish();
    await sink.flush();
    return w.size;
  } finally {
    await handle.close();
  }
}

function runGuest(qemu: string, bzImage: string, initrd: string): Promise<GuestRun> {
  const args = [
    '-accel',
    'kvm',
    '-cpu',
    'host',
    '-M',
    'microvm,isa-serial=on,rtc=on',
    '-smp',
    '2',
    '-m',
    '512',
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-serial',
    'stdio',
    '-no-reboot',
    '-kernel',
    bzImage,
    '-initrd',
    initrd,
    '-append',
    'console=ttyS0 quiet loglevel=4 panic=-1 nokaslr',
  ];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('latin1');
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString('latin1');
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, BOOT_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        output: output.replace(/\r/g, ''),
        seconds: (performance.now() - started) / 1000,
        timedOut,
      });
    });
  });
}

function field(output: string, name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, 'm').exec(output)?.[1]?.trim();
}

test('QEMU with KVM boots the sched_ext kernel and scx_simple reaches state "enabled"', async () => {
  assert.ok(
    existsSync('/dev/kvm'),
    '/dev/kvm is missing: run test/kvm/ where KVM works or inside the test host (ktstr-wasm host run)',
  );
  assert.ok(
    kernelDir !== undefined && existsSync(join(kernelDir, 'bzImage')),
    `the prebuilt kernel ${KERNEL_LABEL} is missing (../shared/kernels or $KTSTR_KERNELS_DIR)`,
  );
  const scx = join(kernelDir, 'schedulers', 'scx_simple');
  assert.ok(existsSync(scx), `${scx} is missing`);
  const qemu = findOnPath('qemu-system-x86_64');
  assert.ok(qemu !== undefined, 'qemu-system-x86_64 not found (apt-get install qemu-system-x86)');

  const tmp = mkdtempSync(join(tmpdir(), 'ktstr-scx-'));
  try {
    const initrd = join(tmp, 'initrd.cpio');
    const bytes = await buildInitramfs(initrd, scx);
    const run = await runGuest(qemu, join(kernelDir, 'bzImage'), initrd);
    const guestBoot = field(run.output, 'GUEST_INIT_UPTIME');
    const enabledAt = field(run.output, 'GUEST_ENABLED_UPTIME');
    console.log(
      `  initramfs ${(bytes / 1024 ** 2).toFixed(1)} MiB; guest /init at ${guestBoot ?? '?'} s guest time; ` +
        `scx_simple enabled at ${enabledAt ?? '?'} s; QEMU ran ${run.seconds.toFixed(1)} s wall`,
    );
    const tail = `\n--- guest output ---\n${run.output.split('\n').slice(-40).join('\n')}`;
    assert.not.ok(run.timedOut, `the guest did not power off within ${BOOT_TIMEOUT_MS / 1000} s${tail}`);
    assert.is(field(run.output, 'SCHED_EXT_STATE'), 'enabled', `scx_simple did not attach${tail}`);
    assert.is(field(run.output, 'SCHED_EXT_OPS'), 'simple', `the attached ops are scx_simple's${tail}`);
    assert.is(field(run.output, 'SCHED_EXT_STATE_AFTER'), 'disabled', `SIGINT unregisters scx_simple${tail}`);
    assert.ok(run.output.includes('GUEST_DONE'), `the guest init ran to the end${tail}`);
    assert.is(run.code, 0, `QEMU exited cleanly (guest powered off)${tail}`);
    assert.is(run.signal, null);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
