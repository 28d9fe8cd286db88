// Issue 17, acceptance 1 and 2 at the VMM's level: a booted guest (2 vCPUs, the shell's
// busybox initramfs, the test kernel) is saved at a quiet point — its shell blocked reading
// the application channel — and two VMs restored from that one snapshot at the same time each
// take their own input and run to their own end: they answer, their RAM writes stay their own
// (the snapshot's RAM file is unchanged afterwards), and the guest clock goes on from where it
// stood. The save leaves out the guest's free pages, read from its buddy allocator by the
// host: they match the guest's own /proc/buddyinfo, and the restored guests run regardless.
// Runs where /dev/kvm is real (inside the emulated test host here).

import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findTestKernel } from '../helpers/test-kernel.js';
import { bootVm, DEFAULT_CMDLINE, type BootVmResult, type SnapshotSave } from '../../src/vmm/index.js';
import { appOutput, buildShellInitramfs } from '../../src/guest/shell-initramfs.js';
import { SnapshotStore } from '../../src/vmm/snapshot/store.js';
import { bytesSource, loadKernelImage } from '../../src/monitor/index.js';
import type { FreePages } from '../../src/monitor/free-pages.js';
import { freePagesForSave } from '../../src/cell/guest-free-pages.js';

const kernel = findTestKernel();
const CMDLINE = `${DEFAULT_CMDLINE} quiet`;
const POINT = 'KTSTR_SNAPSHOT_POINT';
const VCPUS = 2;
const MEMORY_MIB = 256;
const SCRIPT = [
  'cat /proc/buddyinfo',
  `echo "before $(cut -d' ' -f1 /proc/uptime)"`,
  `echo ${POINT} >/dev/console`,
  'read -r w </dev/ttyS1',
  `echo "got $w at $(cut -d' ' -f1 /proc/uptime) cpus $(grep -c ^processor /proc/cpuinfo)"`,
  'echo "$w" >/tmp/word',
  'sleep 1',
  '[ "$(cat /tmp/word)" = "$w" ] && echo same',
  'exit ${#w}',
].join('\n');

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const uptime = (text: string, label: string): number => Number(new RegExp(`${label} ([0-9.]+)`).exec(text)?.[1] ?? NaN);
/** Pages free by /proc/buddyinfo ("Node 0, zone DMA32  3 1 ..." : blocks per order). */
const buddyinfoPages = (text: string): number =>
  [...text.matchAll(/^Node \d+, zone +\S+((?: +\d+)+)/gm)]
    .map((m) =>
      m[1]
        .trim()
        .split(/ +/)
        .reduce((n, blocks, order) => n + Number(blocks) * 2 ** order, 0),
    )
    .reduce((a, b) => a + b, 0);

test('a booted guest saved at a quiet point; two restores of it run at once, each its own way', async () => {
  if (!kernel) {
    console.log('  SKIPPED: no kernel (set KTSTR_KERNEL)');
    return;
  }
  const root = mkdtempSync(join(tmpdir(), 'ktstr-snapshot-test-'));
  try {
    const store = new SnapshotStore(root);
    const key = { kernel, vcpus: VCPUS, memoryMiB: MEMORY_MIB, script: SCRIPT };
    const initrd = await buildShellInitramfs({ exec: SCRIPT });
    const vmlinux = join(dirname(kernel), 'vmlinux');
    const image = existsSync(vmlinux) ? loadKernelImage(bytesSource(readFileSync(vmlinux))) : null;
    if (image === null) console.log(`  (no ${vmlinux}: the save keeps the free pages)`);
    let freePages: FreePages | undefined;
    let save: SnapshotSave | undefined;
    let saveError: unknown;
    const t0 = performance.now();
    const cold = await bootVm({
      kernel,
      initrd,
      cmdline: CMDLINE,
      vcpus: VCPUS,
      memoryMiB: MEMORY_MIB,
      timeoutMs: 180_000,
      markers: [POINT],
      onStart: (live) => {
        const wait = setInterval(() => {
          if (!coldOutput.includes(POINT)) return;
          clearInterval(wait);
          // the shell prints the point, then blocks in read: give it a moment to get there
          setTimeout(() => {
            const free =
              image === null ? Promise.resolve(undefined) : freePagesForSave(live, image, (f) => (freePages = f));
            free
              .then((f) => live.saveSnapshot(store, key, null, f))
              .then((s) => (save = s))
              .catch((e: unknown) => (saveError = e))
              .finally(() => live.end('saved'));
          }, 500);
        }, 20);
      },
      onConsole: (c) => (coldOutput += Buffer.from(c).toString('latin1')),
    });
    const coldMs = performance.now() - t0;
    assert.is(saveError, undefined, String(saveError));
    assert.is(cold.reason, 'stopped', `${cold.reason}: ${cold.detail}\n${cold.consoleTail.slice(-1500)}`);
    assert.ok(save?.saved, 'the snapshot was written');
    console.log(
      `  cold boot to the point and save: ${coldMs.toFixed(0)} ms; pause ${save!.pauseMs.toFixed(0)} ms, RAM ${save!.ramBytes >> 20} MiB (${(save!.dataBytes / 2 ** 20).toFixed(1)} MiB data)`,
    );
    if (image !== null) {
      assert.ok(freePages !== undefined && !('reason' in freePages), JSON.stringify(freePages));
      if (freePages === undefined || 'reason' in freePages) return;
      const guestSays = buddyinfoPages(appOutput(cold.app)) * 4096;
      console.log(
        `  free pages: ${(freePages.bytes / 2 ** 20).toFixed(1)} MiB read by the host, ${(guestSays / 2 ** 20).toFixed(1)} MiB by /proc/buddyinfo; ${(save!.freeBytes / 2 ** 20).toFixed(1)} MiB of them held data and were left out`,
      );
      assert.ok(guestSays > 0, 'the guest printed its buddyinfo');
      assert.ok(
        Math.abs(freePages.bytes - guestSays) <= guestSays * 0.02,
        'the host reads what the guest says is free (within 2 %: it ran on between the two)',
      );
      assert.ok(save!.freeBytes > 0, 'some free pages held data (the unpacked initramfs, init memory)');
    }
    const opened = store.open(key, MEMORY_MIB * 2 ** 20);
    assert.is(opened.kind, 'ok', opened.kind === 'damaged' ? opened.reason : opened.kind);
    if (opened.kind !== 'ok') return;
    const snapshot = opened.snapshot;
    const ramBefore = sha(snapshot.ramPath);
    const before = uptime(appOutput(cold.app), 'before');

    const restore = async (word: string): Promise<{ r: BootVmResult; ms: number }> => {
      const started = performance.now();
      const r = await bootVm({
        kernel: '',
        restore: snapshot,
        vcpus: VCPUS,
        memoryMiB: MEMORY_MIB,
        timeoutMs: 120_000,
        onStart: (live) => {
          live.app(new TextEncoder().encode(`${word}\n`));
        },
      });
      return { r, ms: performance.now() - started };
    };
    const [a, b] = await Promise.all([restore('alpha'), restore('bravo!')]);
    for (const [{ r, ms }, word] of [
      [a, 'alpha'],
      [b, 'bravo!'],
    ] as const) {
      const out = r.app;
      console.log(
        `  restored (${word}): ${r.reason} ${r.exitCode} in ${ms.toFixed(0)} ms; ${JSON.stringify(out.slice(-120))}`,
      );
      assert.is(r.reason, 'exit', `${r.reason}: ${r.detail}\n${r.consoleTail.slice(-1500)}`);
      assert.is(r.exitCode, word.length, 'the exit code is the length of its own word');
      assert.match(out, new RegExp(`got ${word.replace('!', '\\!')} at [0-9.]+ cpus ${VCPUS}`));
      assert.match(out, /same/);
      const after = uptime(out, `got ${word.replace('!', '\\!')} at`);
      assert.ok(after >= before, `the guest clock went on: ${before} s before the save, ${after} s after the restore`);
    }
    assert.is(sha(snapshot.ramPath), ramBefore, 'the restored guests wrote nothing into the snapshot');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

let coldOutput = '';

test.run();
