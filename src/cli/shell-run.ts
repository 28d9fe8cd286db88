// What `ktstr-wasm shell` does: resolves the kernel and topology, builds the busybox
// initramfs, boots the guest in this process's VMM (src/vmm) and returns the guest
// command's exit status. Loaded by shell-command.ts only when the command runs.

import { MonitorView } from './monitor-view.js';
import { loadKernelImage } from '../monitor/kernel-image.js';
import { withFileSource } from '../elf/file-source.js';
import { bootVm, DEFAULT_CMDLINE, type BootVmResult } from '../vmm/index.js';
import { appOutput, buildShellInitramfs, INIT_MARKER, printedExitCode } from '../guest/shell-initramfs.js';
import { EXIT_OK, KtstrError, UsageError } from './errors.js';
import { resolveTopology, type Topology } from '../vmm/topology/index.js';
import { readFileSync } from 'node:fs';
import { runInTestHostInstead, unusableKvm } from './test-host-delegate.js';
import { stageKernels } from '../host/stage-kernels.js';
import { parseKconfig, topologyConfigProblems } from '../kernel/kconfig.js';
import { bootImage, resolveKernel, type ResolvedKernel } from '../kernel/resolve.js';

export interface ShellFlags {
  kernel?: string;
  topology?: string;
  memory: number;
  exec?: string;
  timeout: number;
  append?: string;
  verbose?: boolean;
  testHost: boolean;
  /** Show the host monitor's per-CPU table (live on a terminal, q quits). */
  monitor?: boolean;
}

/** Runs the same shell command inside the test host, the kernel path made absolute and shared. */
async function shellInTestHost(flags: ShellFlags, resolved: ResolvedKernel, why: string): Promise<number> {
  if (flags.exec === undefined)
    throw new UsageError(`${why}: an interactive shell cannot run inside the emulated test host; give --exec CMD`);
  const staged = stageKernels([resolved]);
  const args = [
    'shell',
    '--no-test-host',
    '--kernel',
    staged.specs[0],
    '--memory',
    String(flags.memory),
    '--timeout',
    String(flags.timeout),
    '--exec',
    flags.exec,
  ];
  if (flags.topology !== undefined) args.push('--topology', flags.topology);
  if (flags.append !== undefined) args.push('--append', flags.append);
  if (flags.verbose) args.push('--verbose');
  if (flags.monitor) args.push('--monitor');
  try {
    return await runInTestHostInstead(
      {
        args,
        shareDirs: staged.shareDirs,
        memoryMiB: Math.max(3072, flags.memory + 1536),
        timeoutMs: (flags.timeout + 600) * 1000,
      },
      why,
    );
  } finally {
    staged.cleanup();
  }
}

export async function runShell(flags: ShellFlags): Promise<number> {
  const interactive = flags.exec === undefined;
  // an unknown topology or kernel is a usage error (TopologyError, KernelNotFoundError)
  const topology: Topology | undefined =
    flags.topology === undefined ? undefined : resolveTopology(flags.topology).topology;
  const resolved = resolveKernel(flags.kernel);
  if (topology && resolved.config !== undefined) {
    const problems = topologyConfigProblems(
      parseKconfig(readFileSync(resolved.config, 'latin1'), resolved.config),
      topology.numCpus,
      topology.needsX2apic,
    );
    if (problems.length > 0)
      throw new UsageError(
        `kernel ${resolved.label} cannot run topology ${topology} (${topology.numCpus} CPUs): ${problems.join('; ')}`,
      );
  }
  const kvm = unusableKvm();
  if (kvm !== null) {
    if (!flags.testHost) throw new UsageError(`${kvm.why}; --no-test-host was given (run \`ktstr-wasm doctor\`)`);
    return shellInTestHost(flags, resolved, kvm.why);
  }
  const kernel = bootImage(resolved);
  const initrd = await buildShellInitramfs({ exec: flags.exec });
  const cmdline = `${DEFAULT_CMDLINE}${interactive ? '' : ' quiet'}${flags.append ? ' ' + flags.append : ''}`;
  const tBoot = performance.now();
  let shown = 0;
  let com2 = '';
  const stdin = process.stdin;
  let view: MonitorView | null = null;
  if (flags.monitor) {
    if (resolved.vmlinux === undefined)
      throw new UsageError(
        `--monitor needs the kernel's vmlinux (with .symtab and .BTF); kernel ${resolved.label} has none`,
      );
    const places = (topology?.cpus ?? [{ cpu: 0, node: 0, llc: 0, core: 0, thread: 0 }]).map((c) => ({
      cpu: c.cpu,
      node: c.node,
      llc: c.llc,
      core: c.core,
      thread: c.thread,
    }));
    const liveTable = process.stderr.isTTY === true && interactive;
    view = new MonitorView({
      intervalMs: 100,
      places,
      kernel: withFileSource(resolved.vmlinux, (source) => loadKernelImage(source)),
      out: process.stderr,
      live: liveTable,
    });
  }
  let r: BootVmResult;
  try {
    // an unusable kernel or initrd is refused before any VM exists: BootImageError, a usage error
    r = await bootVm({
      kernel,
      initrd,
      cmdline,
      memoryMiB: flags.memory,
      topology,
      timeoutMs: flags.timeout * 1000,
      onConsole: (c) => {
        if (interactive && view === null) process.stdout.write(c);
        else if (flags.verbose) process.stderr.write(c);
      },
      onApp: (c) => {
        com2 += Buffer.from(c).toString('latin1');
        const out = appOutput(com2);
        if (out.length > shown) {
          process.stdout.write(Buffer.from(out.slice(shown), 'latin1'));
          shown = out.length;
        }
      },
      markers: [INIT_MARKER],
      onStart: (io) => {
        view?.start(io);
        if (!interactive) return;
        if (stdin.isTTY) stdin.setRawMode(true);
        stdin.on('data', (d: Buffer) => {
          // with the monitor's table on screen, keys do not go to the guest: q (or Ctrl-C) ends it
          if (view !== null) {
            if (d.includes(0x71) || d.includes(0x03)) io.end('quit from the monitor');
            return;
          }
          io.console(d);
        });
        stdin.resume();
      },
    });
  } finally {
    view?.stop();
    if (interactive) {
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      stdin.removeAllListeners('data');
    }
  }
  if (flags.verbose) {
    // where the time went, in ms since this process started (performance.now()'s origin)
    const at = (ms: number | undefined): string => (ms === undefined ? '-' : (tBoot + ms).toFixed(0));
    process.stderr.write(
      `ktstr-wasm: timings (ms since process start): boot call ${tBoot.toFixed(0)}, VM and vCPU threads ready ${at(r.timings.setupMs + r.timings.vmCreateMs)}, first console byte ${at(r.timings.firstConsoleMs)}, /init ${at(r.timings.markers[INIT_MARKER])}, end ${at(r.timings.totalMs)}\n`,
    );
  }
  if (r.reason === 'exit' && r.exitCode !== null) return r.exitCode;
  const printed = printedExitCode(r.consoleTail);
  if (r.reason === 'poweroff' && printed !== undefined) return printed; // no /dev/port in the guest kernel
  if (interactive && (r.reason === 'poweroff' || r.reason === 'reboot' || (view !== null && r.reason === 'stopped')))
    return EXIT_OK;
  const tail = r.consoleTail.split('\n').slice(-15).join('\n');
  throw new KtstrError(
    `guest ended without an exit code: ${r.reason} (${r.detail})${flags.verbose || interactive ? '' : `\n--- console tail ---\n${tail}`}`,
  );
}
