// `npm run bench:boot` (run it inside the test host: `ktstr-wasm host run -- npm run
// bench:boot`): time to the first /init line and to the clean exit for the tiny-1llc
// topology (4 vCPUs, one LLC), our VMM side by side with QEMU (-enable-kvm -M microvm, same
// kernel, initramfs, command line and -smp 4 as one socket of 4 cores; measured from spawn).
// Rows: bootVm() in this process (VM creation and vCPU worker start included, Node start-up
// not) with the bzImage and with the same build's vmlinux (no decompressor), each taking the
// warm vCPU threads of the VM before, as a sweep's or a suite's later cells do; the vmlinux
// again with new threads, as the first VM of a process; `ktstr-wasm
// shell --exec` from process start, which is the fair comparison with QEMU's spawn. Medians
// of KTSTR_BENCH_RUNS runs (default 3), alternating. Where each one's time goes: /init prints
// the guest's /proc/uptime (the kernel's time since its clock started), so a row splits into
// before the guest kernel's clock (VMM set-up, VM and vCPU creation -- bootVm reports those --,
// the loader, the decompressor), the guest kernel to /init, and /init to the exit. Then the
// VMM's resident memory without guest RAM at 4 and 64 vCPUs (KTSTR_BENCH_RSS=0 skips it).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { defaultKernelsDir, findOnPath } from '../../src/host/paths.js';
import { packageRoot } from '../../src/paths.js';
import { native } from '../../src/kvm/native.js';
import { bootVm, DEFAULT_CMDLINE, EXIT_PORT } from '../../src/vmm/index.js';
import { closeIdleVcpuThreads } from '../../src/vmm/vcpu-thread-pool.js';
import { buildShellInitramfs, INIT_MARKER } from '../../src/guest/shell-initramfs.js';
import { resolveTopology } from '../../src/vmm/topology/index.js';

const kernel =
  process.env.KTSTR_KERNEL ?? join(defaultKernelsDir() ?? '/work/shared/kernels', '6.12.117-sched_ext', 'bzImage');
const vmlinux = join(dirname(kernel), 'vmlinux');
const PRESET = 'tiny-1llc';
const topology = resolveTopology(PRESET).topology;
const RUNS = Number(process.env.KTSTR_BENCH_RUNS ?? 3);
const CMDLINE = `${DEFAULT_CMDLINE} quiet`;
const EXEC = 'echo "guest-uptime $(cat /proc/uptime)" >/dev/ttyS0; exit 3'; // the console: what QEMU shows
/** The guest's uptime at /init, ms, from the console text. */
const uptimeMs = (text: string): number => Number(/guest-uptime (\d+\.\d+)/.exec(text)?.[1] ?? NaN) * 1000;

interface Sample {
  init: number;
  exit: number;
  ok: boolean;
  /** Guest kernel time to /init (its /proc/uptime there), ms. */
  uptime: number;
  /** bootVm only: validation + guest RAM, and VM + vCPU creation with the workers' start, ms. */
  setup?: number;
  vmCreate?: number;
}

async function ours(image: string, initrd: Uint8Array): Promise<Sample> {
  const r = await bootVm({
    kernel: image,
    initrd,
    cmdline: CMDLINE,
    memoryMiB: 256,
    topology,
    timeoutMs: 120_000,
    markers: [INIT_MARKER],
  });
  const ok = r.reason === 'exit' && r.exitCode === 3;
  if (!ok)
    process.stderr.write(
      `bootVm ${image}: ${r.reason} ${r.exitCode ?? ''} (${r.detail})\n${r.consoleTail.split('\n').slice(-12).join('\n')}\n`,
    );
  return {
    init: r.timings.markers[INIT_MARKER] ?? NaN,
    exit: r.timings.totalMs,
    ok,
    uptime: uptimeMs(r.consoleTail),
    setup: r.timings.setupMs,
    vmCreate: r.timings.vmCreateMs,
  };
}

/**
 * The whole CLI from process start, like QEMU is timed from spawn: `ktstr-wasm shell --kernel
 * <dir> --topology tiny-1llc --exec` (Node start-up, module load, initramfs build, boot of the
 * directory's vmlinux, which QEMU cannot boot without CONFIG_PVH). With -v the console, and so
 * the /init marker, goes to stderr.
 */
function shellProcess(): Promise<Sample> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        join(packageRoot(), 'bin', 'ktstr-wasm'),
        'shell',
        '--kernel',
        dirname(kernel),
        '--topology',
        PRESET,
        '--memory',
        '256',
        '-v',
        '--exec',
        EXEC,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let init = NaN;
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('latin1')).slice(-4096);
      if (Number.isNaN(init) && err.includes(INIT_MARKER)) init = performance.now() - t0;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 3) process.stderr.write(`shell exit ${code}: ${err.slice(-800)}\n`);
      resolve({ init, exit: performance.now() - t0, ok: code === 3, uptime: uptimeMs(err) });
    });
  });
}

function qemu(bin: string, initrdPath: string): Promise<Sample> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      bin,
      [
        '-enable-kvm',
        '-cpu',
        'host',
        '-smp',
        `${topology.numCpus},sockets=1,cores=${topology.numCpus},threads=1`,
        '-m',
        '256',
        '-M',
        'microvm,isa-serial=on,rtc=on,pit=on',
        '-nodefaults',
        '-nographic',
        '-no-reboot',
        '-serial',
        'stdio',
        '-device',
        `isa-debug-exit,iobase=0x${EXIT_PORT.toString(16)},iosize=1`,
        '-kernel',
        kernel,
        '-initrd',
        initrdPath,
        '-append',
        CMDLINE,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let init = NaN;
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out = (out + d.toString('latin1')).slice(-4096);
      if (Number.isNaN(init) && out.includes(INIT_MARKER)) init = performance.now() - t0;
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      // isa-debug-exit: status (v << 1) | 1
      const ok = code === ((3 << 1) | 1);
      if (!ok) process.stderr.write(`qemu exit ${code}: ${err.slice(-500)}\n${out.slice(-800)}\n`);
      resolve({ init, exit: performance.now() - t0, ok, uptime: uptimeMs(out) });
    });
  });
}

/** Resident bytes of the mappings that overlap [start, end) (/proc/self/smaps; the kernel may split one range into several). */
function rangeRss(start: bigint, end: bigint): number {
  let inside = false;
  let total = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      inside = BigInt('0x' + range[1]) < end && start < BigInt('0x' + range[2]);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (inside && rss) total += Number(rss[1]) * 1024;
  }
  return total;
}

/**
 * The VMM's own resident memory with `vcpus` vCPU threads running: process RSS minus the
 * resident part of guest RAM, measured once every vCPU thread runs (then the run is ended).
 */
async function vmmRss(initrd: Uint8Array, vcpus: number): Promise<number> {
  await closeIdleVcpuThreads(); // only this VM's threads
  let rss = NaN;
  await bootVm({
    kernel,
    initrd,
    cmdline: CMDLINE,
    memoryMiB: 256,
    vcpus,
    timeoutMs: 60_000,
    onStart: (vm) => {
      const at = native().sharedBufferAddress(vm.memory.buffer);
      const guest = rangeRss(at, at + BigInt(vm.memory.buffer.byteLength));
      rss = process.memoryUsage.rss() - guest;
      vm.end('measured');
    },
  });
  return rss;
}

const median = (xs: number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (!existsSync(kernel)) {
  console.log(`bench:boot SKIPPED: no kernel at ${kernel} (set KTSTR_KERNEL)`);
} else {
  const initrd = await buildShellInitramfs({ exec: EXEC });
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-bench-'));
  try {
    const initrdPath = join(dir, 'initrd.cpio');
    writeFileSync(initrdPath, initrd);
    const qemuBin = findOnPath('qemu-system-x86_64');
    const haveVmlinux = existsSync(vmlinux);
    const a: Sample[] = [];
    const v: Sample[] = [];
    const b: Sample[] = [];
    const c: Sample[] = [];
    const f: Sample[] = [];
    for (let i = 0; i < RUNS; i++) {
      // the first VM of a process starts its vCPU threads; later ones take the warm threads
      // of the one before (vcpu-thread-pool.ts): this row ends those first
      await closeIdleVcpuThreads();
      f.push(await ours(haveVmlinux ? vmlinux : kernel, initrd));
      a.push(await ours(kernel, initrd));
      if (haveVmlinux) v.push(await ours(vmlinux, initrd));
      c.push(await shellProcess());
      if (qemuBin) b.push(await qemu(qemuBin, initrdPath));
    }
    const row = (name: string, s: Sample[]): string =>
      `${name.padEnd(28)} ${median(s.map((x) => x.init))
        .toFixed(0)
        .padStart(8)} ms ${median(s.map((x) => x.exit))
        .toFixed(0)
        .padStart(8)} ms   ${s.filter((x) => x.ok).length}/${s.length} ok`;
    console.log(
      `kernel ${kernel}\ncmdline ${CMDLINE}\n${PRESET} (${topology}, ${topology.numCpus} vCPUs), 256 MiB, ${RUNS} runs, medians\n`,
    );
    console.log(`${''.padEnd(28)} ${'first /init'.padStart(11)} ${'clean exit'.padStart(11)}`);
    const firstName = `bootVm ${haveVmlinux ? 'vmlinux' : 'bzImage'}, new threads`;
    console.log(row('ktstr-wasm bootVm bzImage', a));
    if (haveVmlinux) console.log(row('ktstr-wasm bootVm vmlinux', v));
    console.log(row(firstName, f));
    console.log(row('ktstr-wasm shell (process)', c));
    if (qemuBin) console.log(row('QEMU -M microvm (KVM)', b));
    const ms = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(0)).padStart(8);
    const split = (name: string, s: Sample[]): string => {
      const m = (f: (x: Sample) => number | undefined): number => median(s.map((x) => f(x) ?? NaN));
      const pre = m((x) => x.init - x.uptime - (x.setup ?? 0) - (x.vmCreate ?? 0));
      return `${name.padEnd(28)} ${ms(m((x) => x.setup))} ${ms(m((x) => x.vmCreate))} ${ms(pre)} ${ms(m((x) => x.uptime))} ${ms(m((x) => x.exit - x.init))}`;
    };
    console.log(
      `\nwhere the time goes (ms, medians)   set-up vm+vCPUs ${'to clock'.padStart(8)} ${'kernel'.padStart(8)} ${'/init..'.padStart(8)}`,
    );
    console.log(split('ktstr-wasm bootVm bzImage', a));
    if (haveVmlinux) console.log(split('ktstr-wasm bootVm vmlinux', v));
    console.log(split(firstName, f));
    console.log(split('ktstr-wasm shell (process)', c));
    if (qemuBin) console.log(split('QEMU -M microvm (KVM)', b));
    console.log(
      '(to clock: from the start to the guest kernel starting its clock, less the columns before it -- the loader, the decompressor and, for processes, start-up; kernel: guest /proc/uptime at /init)',
    );
    if (qemuBin) {
      const ri = median(a.map((x) => x.init)) / median(b.map((x) => x.init));
      const re = median(a.map((x) => x.exit)) / median(b.map((x) => x.exit));
      console.log(
        `\nratio ours/QEMU: first /init ${ri.toFixed(2)}, clean exit ${re.toFixed(2)} (bootVm bzImage call vs QEMU spawn; < 1: faster than QEMU)`,
      );
      if (haveVmlinux) {
        const vi = median(v.map((x) => x.init)) / median(b.map((x) => x.init));
        const ve = median(v.map((x) => x.exit)) / median(b.map((x) => x.exit));
        console.log(`ratio ours vmlinux/QEMU bzImage: first /init ${vi.toFixed(2)}, clean exit ${ve.toFixed(2)}`);
      }
      const pi = median(c.map((x) => x.init)) / median(b.map((x) => x.init));
      const pe = median(c.map((x) => x.exit)) / median(b.map((x) => x.exit));
      console.log(
        `ratio shell process/QEMU process: first /init ${pi.toFixed(2)}, clean exit ${pe.toFixed(2)} (both from process start)`,
      );
    } else {
      console.log('QEMU: not found (qemu-system-x86_64), no comparison');
    }
    if (process.env.KTSTR_BENCH_RSS !== '0') {
      const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
      const r4 = await vmmRss(initrd, 4);
      const r64 = await vmmRss(initrd, 64);
      console.log(
        `\nVMM RSS excluding guest RAM, all vCPU threads running: 4 vCPUs ${mib(r4)} MiB, 64 vCPUs ${mib(r64)} MiB (${mib((r64 - r4) / 60)} MiB per extra vCPU)`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
