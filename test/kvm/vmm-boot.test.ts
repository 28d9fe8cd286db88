// Issue 4, acceptance 1, 3 and 5 for the boot core (src/vmm): our own VMM boots a real
// kernel (KTSTR_KERNEL, else the shared sched_ext bzImage) with the shell's busybox
// initramfs; the guest runs a command and its exit code comes back through the exit port;
// a guest panic, a triple fault and a hang end with their reasons; two VMs run at once.
// Afterwards the process holds no extra fd or thread. Runs where /dev/kvm is real (the test
// runner sends test/kvm/ into the emulated test host here).

import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findTestKernel } from '../helpers/test-kernel.js';
import { packageRoot } from '../../src/paths.js';
import { native } from '../../src/kvm/native.js';
import { bootVm, DEFAULT_CMDLINE, type BootVmResult } from '../../src/vmm/index.js';
import { closeIdleVcpuThreads, idleVcpuThreads } from '../../src/vmm/vcpu-thread-pool.js';
import { appOutput, buildShellInitramfs, INIT_MARKER } from '../../src/guest/shell-initramfs.js';

const kernel = findTestKernel();
const CMDLINE = `${DEFAULT_CMDLINE} quiet`;
const fds = (): number => readdirSync('/proc/self/fd').length;
const threads = (): number => readdirSync('/proc/self/task').length;
let fdsBefore = 0;
let threadsBefore = 0;

async function run(exec: string, timeoutMs = 120_000): Promise<BootVmResult> {
  const initrd = await buildShellInitramfs({ exec });
  const r = await bootVm({
    kernel: kernel!,
    initrd,
    cmdline: CMDLINE,
    memoryMiB: 256,
    timeoutMs,
    markers: [INIT_MARKER],
  });
  const t = r.timings;
  console.log(
    `  [${exec}] ${r.reason} ${r.exitCode ?? ''}: vm ${t.vmCreateMs.toFixed(0)} ms, /init ${t.markers[INIT_MARKER]?.toFixed(0) ?? '-'} ms, total ${t.totalMs.toFixed(0)} ms (${r.detail})`,
  );
  return r;
}

test.before(async () => {
  native();
  // uvu runs every test file in one process: an earlier file's idle vCPU threads would end
  // (after their idle time) during this one and leave fewer threads than counted
  await closeIdleVcpuThreads();
  fdsBefore = fds();
  threadsBefore = threads();
});

test('boots to /init, runs a command, returns its exit code; two VMs at once', async () => {
  if (!kernel) {
    console.log('  SKIPPED: no kernel (set KTSTR_KERNEL)');
    return;
  }
  const [a, b] = await Promise.all([run('echo hello; exit 3'), run('echo world from $(uname -r); exit 5')]);
  assert.is(a.reason, 'exit', a.consoleTail.slice(-2000));
  assert.is(a.exitCode, 3);
  assert.is(appOutput(a.app), 'hello\n');
  assert.ok(a.consoleTail.includes(INIT_MARKER));
  assert.is(b.reason, 'exit', b.consoleTail.slice(-2000));
  assert.is(b.exitCode, 5);
  assert.match(appOutput(b.app), /^world from 6\.\d+/);
});

test('boots an uncompressed vmlinux (ELF, 64-bit entry) the same way', async () => {
  const vmlinux = kernel === undefined ? undefined : join(kernel, '..', 'vmlinux');
  if (!vmlinux || !existsSync(vmlinux)) {
    console.log('  SKIPPED: no vmlinux next to the bzImage');
    return;
  }
  const initrd = await buildShellInitramfs({ exec: 'echo vmlinux; exit 4' });
  const r = await bootVm({
    kernel: vmlinux,
    initrd,
    cmdline: CMDLINE,
    memoryMiB: 256,
    timeoutMs: 120_000,
    markers: [INIT_MARKER],
  });
  console.log(
    `  [vmlinux] ${r.reason} ${r.exitCode ?? ''}: /init ${r.timings.markers[INIT_MARKER]?.toFixed(0) ?? '-'} ms, total ${r.timings.totalMs.toFixed(0)} ms`,
  );
  assert.is(r.reason, 'exit', r.consoleTail.slice(-2000));
  assert.is(r.exitCode, 4);
  assert.is(appOutput(r.app), 'vmlinux\n');
});

test('the live handle: vCPU registers and guest memory while the guest runs, then end()', async () => {
  if (!kernel) return;
  const initrd = await buildShellInitramfs({ exec: 'sleep 1000' });
  let seen: { cr3: bigint; cr0: bigint; efer: bigint; ram: number } | undefined;
  const r = await bootVm({
    kernel,
    initrd,
    cmdline: CMDLINE,
    memoryMiB: 256,
    timeoutMs: 120_000,
    markers: [INIT_MARKER],
    onStart: (vm) => {
      setTimeout(async () => {
        const s = await vm.readSregs(0);
        seen = { cr3: s.cr3, cr0: s.cr0, efer: s.efer, ram: vm.memory.ramBytes };
        vm.end('test done');
      }, 3000);
    },
  });
  assert.is(r.reason, 'stopped', r.detail);
  assert.ok(seen, 'registers read');
  assert.ok((seen!.cr0 & 0x80000001n) === 0x80000001n, 'paging and protected mode on');
  assert.ok((seen!.efer & 0x400n) !== 0n, 'long mode active');
  assert.ok(seen!.cr3 > 0n && seen!.cr3 < BigInt(seen!.ram), 'CR3 inside guest RAM');
});

test('ktstr-wasm shell without --exec: an interactive shell on the console', async () => {
  if (!kernel) return;
  const bin = join(packageRoot(), 'bin', 'ktstr-wasm');
  const child = spawn(process.execPath, [bin, 'shell', '--kernel', kernel, '--timeout', '120'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let typed = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString('latin1');
    if (!typed && out.includes(INIT_MARKER)) {
      typed = true;
      // the answer (42) only exists if the guest's shell evaluated the line
      child.stdin.write('echo marker-$((6*7)); exit 6\n');
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString('latin1');
  });
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.ok(out.includes('marker-42'), out.slice(-2000));
  assert.is(code, 6, "the shell's exit status is the command's");
});

test('kernel panic ends the run with reason panic', async () => {
  if (!kernel) return;
  const r = await run('echo c > /proc/sysrq-trigger; sleep 100');
  assert.is(r.reason, 'panic', r.consoleTail.slice(-2000));
  assert.match(r.detail, /Kernel panic - not syncing/);
});

test('triple fault (reboot=t) ends the run with reason triple-fault', async () => {
  if (!kernel) return;
  const r = await run('reboot -f; sleep 100');
  assert.is(r.reason, 'triple-fault', r.consoleTail.slice(-2000));
});

test('a hang ends with reason timeout', async () => {
  if (!kernel) return;
  const r = await run('sleep 1000', 15_000);
  assert.is(r.reason, 'timeout');
});

test('no fd or thread left behind: the only threads left are idle vCPU threads, reused and ended on request', async () => {
  await new Promise((r) => setTimeout(r, 200));
  if (!kernel) return;
  // every VM here had one vCPU (the default), two at once at most: the later VMs took the
  // earlier ones' threads instead of starting more
  const idle = idleVcpuThreads();
  assert.ok(idle >= 1 && idle <= 2, `idle vCPU threads: ${idle}`);
  assert.is(threads() - threadsBefore, idle, 'threads beyond the idle vCPU threads');
  await closeIdleVcpuThreads();
  assert.is(idleVcpuThreads(), 0);
  // (an idle thread's event loop holds fds of its own: counted after they are gone)
  assert.is(fds(), fdsBefore, 'fds');
  assert.is(threads(), threadsBefore, 'threads');
});

test.run();
