// Issue 5, real data: QEMU with KVM boots the shared sched_ext kernel (KASLR on), scx_simple
// attaches, a static helper in the guest prints each struct_ops program's verified_insns and
// run counters as the kernel reports them (bpf() BPF_OBJ_GET_INFO_BY_FD); then the host takes
// `dump-guest-memory` over QMP and reads the same programs out of the dump -- through the
// library and through `ktstr-wasm inspect --core` -- and the two views must agree.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpioWriter, FileSink } from '../../src/guest/cpio.js';
import { sharedLibraryClosure } from '../../src/guest/elf-deps.js';
import { defaultKernelsDir, findOnPath } from '../../src/host/paths.js';
import { loadCoreFile } from '../../src/monitor/dump-file.js';
import { inspectKernel } from '../../src/monitor/inspect.js';
import { loadKernelImage } from '../../src/monitor/kernel-image.js';
import { bytesSource } from '../../src/elf/file.js';
import { repoPath } from '../helpers/repo.js';
import { expectedObj, parseGuestProgs } from './introspect-guest/guest-view.js';
import { readFileSync } from 'node:fs';

const KERNEL_LABEL = '6.12.117-sched_ext';
const RUN_TIMEOUT_MS = 240_000;
const HELPER_SOURCE = 'test/kvm/introspect-guest/bpf_prog_info.c';
const HELPER_BINARY = 'build/introspect-guest/bpf-prog-info';

const t0 = performance.now();
/** Progress on stderr with the elapsed time: this test runs slowly inside the emulated test host. */
function progress(what: string): void {
  process.stderr.write(`  [${((performance.now() - t0) / 1000).toFixed(1)} s] ${what}\n`);
}

const kernelsDir = defaultKernelsDir();
const kernelDir = kernelsDir === undefined ? undefined : join(kernelsDir, KERNEL_LABEL);

const GUEST_INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo 1 > /proc/sys/kernel/bpf_stats_enabled
"$SCX" >/tmp/scx.log 2>&1 &
i=0
while [ $i -lt 300 ]; do
  [ "$(cat /sys/kernel/sched_ext/state 2>/dev/null)" = enabled ] && break
  sleep 0.1
  i=$((i + 1))
done
echo "SCHED_EXT_STATE=$(cat /sys/kernel/sched_ext/state 2>&1)"
# let the scheduler run a little so its programs count calls
i=0; while [ $i -lt 200 ]; do ls / >/dev/null; i=$((i + 1)); done
sleep 0.5
/bin/bpf-prog-info
echo DUMP_NOW
sleep 600
`;

function guestHelper(tmp: string): string {
  const gcc = findOnPath('gcc');
  if (gcc !== undefined) {
    const out = join(tmp, 'bpf-prog-info');
    execFileSync(gcc, ['-static', '-O2', '-o', out, repoPath(HELPER_SOURCE)]);
    return out;
  }
  const prebuilt = repoPath(HELPER_BINARY);
  assert.ok(
    existsSync(prebuilt),
    `no gcc here and ${HELPER_BINARY} was not prebuilt (the host part of npm test builds it)`,
  );
  return prebuilt;
}

async function buildInitramfs(path: string, scx: string, helper: string): Promise<void> {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  assert.ok(busybox !== undefined, 'busybox not found');
  const closure = sharedLibraryClosure([busybox, scx]);
  assert.equal(closure.missing, []);
  const handle = await open(path, 'w');
  try {
    const sink = new FileSink(handle);
    const w = new CpioWriter(sink);
    for (const d of ['/proc', '/sys', '/dev', '/tmp']) await w.directory(d);
    await w.charDevice('/dev/console', 5, 1);
    await w.charDevice('/dev/null', 1, 3, { mode: 0o666 });
    // libraries at their system paths; our files at guest paths (a host path under /tmp would
    // be hidden by the guest's tmpfs on /tmp)
    for (const f of [...closure.interpreters, ...closure.libraries.map((l) => l.path)]) await w.hostPath(f);
    await w.hostFile('/bin/busybox', busybox);
    await w.hostFile('/bin/bpf-prog-info', helper, { mode: 0o755 });
    await w.hostFile('/sched/scx_simple', scx, { mode: 0o755 });
    await w.file('/init', GUEST_INIT.replace('"$SCX"', `'/sched/scx_simple'`), { mode: 0o755 });
    await w.finish();
    await sink.flush();
  } finally {
    await handle.close();
  }
}

/** Minimal QMP client: one command at a time, answers matched by order. */
async function qmp(socket: string, commands: object[]): Promise<unknown[]> {
  let wake: (() => void) | undefined;
  const conn = createConnection(socket);
  let failure: Error | undefined;
  conn.on('error', (err) => {
    failure = err;
    wake?.();
  }); // QEMU closes the socket on quit
  const replies: unknown[] = [];
  let buffered = '';
  const lines: string[] = [];
  conn.on('data', (d: Buffer) => {
    buffered += d.toString('utf8');
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
    wake?.();
  });
  const next = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const line = lines.shift();
      if (line !== undefined) {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        return msg;
      }
      if (failure !== undefined) throw failure;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  };
  await next(); // greeting
  for (const c of [{ execute: 'qmp_capabilities' }, ...commands]) {
    conn.write(JSON.stringify(c) + '\n');
    if ((c as { execute?: string }).execute === 'quit') break; // no answer is guaranteed
    const reply = await next();
    if ('error' in reply) throw new Error(`QMP ${JSON.stringify(c)}: ${JSON.stringify(reply.error)}`);
    replies.push(reply.return);
  }
  conn.end();
  return replies.slice(1);
}

async function runAndDump(
  qemu: string,
  bzImage: string,
  initrd: string,
  core: string,
  socket: string,
): Promise<string> {
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
    '192',
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-serial',
    'stdio',
    '-no-reboot',
    '-qmp',
    `unix:${socket},server=on,wait=off`,
    '-kernel',
    bzImage,
    '-initrd',
    initrd,
    '-append',
    'console=ttyS0 quiet loglevel=4 panic=-1',
  ];
  const child: ChildProcess = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let dumping = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no dump within ${RUN_TIMEOUT_MS / 1000} s\n${output.slice(-3000)}`));
    }, RUN_TIMEOUT_MS);
    const onData = (d: Buffer): void => {
      output += d.toString('latin1');
      if (!dumping && output.includes('DUMP_NOW')) {
        dumping = true;
        progress('guest ready: dump-guest-memory over QMP');
        qmp(socket, [
          { execute: 'dump-guest-memory', arguments: { paging: false, protocol: `file:${core}` } },
          { execute: 'quit' },
        ]).catch((err: Error) => {
          clearTimeout(timer);
          child.kill('SIGKILL');
          reject(err);
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', () => {
      clearTimeout(timer);
      resolve(output.replace(/\r/g, ''));
    });
  });
}

test('a QEMU dump of a sched_ext guest: the host reads the same struct_ops programs the kernel reports', async () => {
  assert.ok(existsSync('/dev/kvm'), '/dev/kvm is missing: run test/kvm/ inside the test host');
  assert.ok(
    kernelDir !== undefined && existsSync(join(kernelDir, 'bzImage')),
    `the prebuilt kernel ${KERNEL_LABEL} is missing`,
  );
  const qemu = findOnPath('qemu-system-x86_64');
  assert.ok(qemu !== undefined, 'qemu-system-x86_64 not found');
  const tmp = mkdtempSync(join(tmpdir(), 'ktstr-introspect-'));
  try {
    const initrd = join(tmp, 'initrd.cpio');
    await buildInitramfs(initrd, join(kernelDir, 'schedulers', 'scx_simple'), guestHelper(tmp));
    const core = join(tmp, 'guest.core');
    const started = performance.now();
    progress('initramfs built; booting QEMU');
    const output = await runAndDump(qemu, join(kernelDir, 'bzImage'), initrd, core, join(tmp, 'qmp.sock'));
    const tail = `\n--- guest output ---\n${output.split('\n').slice(-30).join('\n')}`;
    assert.match(output, /SCHED_EXT_STATE=enabled/, `scx_simple attached${tail}`);
    const guest = parseGuestProgs(output);
    assert.ok(guest.length >= 5, `the guest listed scx_simple's struct_ops programs${tail}`);
    assert.ok(existsSync(core), 'QEMU wrote the dump');
    console.log(
      `  guest ran and dumped ${(statSync(core).size / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    // library path
    progress('reading the dump');
    const vmlinux = readFileSync(join(kernelDir, 'vmlinux'));
    const kernel = loadKernelImage(bytesSource(vmlinux));
    const image = loadCoreFile(core);
    assert.ok(image.dump!.cpus.length === 2, "the dump carries both vCPUs' registers");
    const report = inspectKernel(image.intro, kernel, { cr3: image.dump!.cpus[0].cr3, cr4: image.dump!.cpus[0].cr4 });
    console.log(
      `  layout from ${report.layout.source}: kaslr 0x${report.layout.kaslrOffset.toString(16)}, page_offset_base 0x${report.layout.pageOffsetBase.toString(16)}, ${report.layout.la57 ? 5 : 4}-level; enumeration ${report.enumerateMicros.toFixed(0)} us`,
    );
    assert.ok(report.layout.checks.includes('phys_base matches the kernel variable'), report.layout.checks.join('; '));
    assert.is(report.release, '6.12.117');
    const host = report.enumeration.programs;
    assert.equal(
      host.map((p) => [p.id, p.name, p.verifiedInsns]),
      guest.map((g) => [g.id, g.name, g.verifiedInsns]),
      'ids, names and verified_insns read from memory equal what BPF_OBJ_GET_INFO_BY_FD reported',
    );
    const obj = expectedObj(output);
    assert.ok(
      obj !== null && 'scx_simple'.startsWith(obj),
      `the guest's map names give scx_simple's obj (${obj})${tail}`,
    );
    assert.is(
      report.enumeration.activeObj,
      obj,
      'the active object name read from memory is the one the guest maps imply',
    );
    for (const p of host) {
      const g = guest.find((x) => x.id === p.id)!;
      assert.ok(p.stats !== null, `${p.name}: per-CPU stats readable`);
      assert.ok(
        p.stats.cnt >= g.runCnt && p.stats.nsecs >= g.runTimeNs,
        `${p.name}: counters only grow (guest ${g.runCnt}, dump ${p.stats.cnt})`,
      );
    }
    assert.ok(
      host.some((p) => p.stats!.cnt > 0n),
      'some program ran',
    );

    // CLI path
    progress('the same through ktstr-wasm inspect --core');
    const json = execFileSync(
      process.execPath,
      [repoPath('bin', 'ktstr-wasm'), 'inspect', '--vmlinux', join(kernelDir, 'vmlinux'), '--core', core, '--json'],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
    );
    const parsed = JSON.parse(json) as {
      active_scheduler: string;
      programs: { name: string; verified_insns: number }[];
    };
    assert.is(parsed.active_scheduler, obj);
    assert.equal(
      parsed.programs.map((p) => [p.name, p.verified_insns]),
      guest.map((g) => [g.name, g.verifiedInsns]),
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
