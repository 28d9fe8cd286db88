// `ktstr-wasm shell [--kernel SPEC] [--topology SPEC] [--memory MiB] [--exec CMD]`: boots the kernel in
// this process's own VMM (src/vmm) with a busybox initramfs. With --exec the guest runs
// CMD, its output (COM2) goes to stdout, and shell exits with CMD's exit code; the kernel
// console goes to stderr with --verbose. Without --exec: an interactive shell on the
// console (stdin -> COM1, COM1 -> stdout).

import { Command, InvalidArgumentError } from 'commander';
import { bootVm, BootImageError, DEFAULT_CMDLINE, type BootVmResult } from '../vmm/index.js';
import { appOutput, buildShellInitramfs } from '../vmm/initramfs.js';
import { CliError, EXIT_FAILED, EXIT_USAGE } from './errors.js';
import { resolveTopology, type Topology } from '../vmm/topology/index.js';
import { KernelNotFoundError, resolveKernel } from '../kernel/resolve.js';

export interface ShellFlags {
  kernel?: string;
  topology?: string;
  memory: number;
  exec?: string;
  timeout: number;
  append?: string;
  verbose?: boolean;
}

/** Exit status when the guest did not report one (panic, timeout, triple fault, ...). */
export const EXIT_GUEST_FAILED = 1;

function intIn(what: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}.`);
    return n;
  };
}

const EXAMPLES = `
Examples:
  $ ktstr-wasm shell --exec 'uname -r; nproc'       the default kernel
  $ ktstr-wasm shell --kernel 6.12 --topology tiny-2llc --exec 'lscpu'
  $ ktstr-wasm shell --kernel bzImage --exec 'uname -r; nproc'
  $ ktstr-wasm shell --kernel vmlinux --memory 512 --exec 'cat /proc/cmdline' -v
  $ ktstr-wasm shell --kernel bzImage            interactive shell on the console

Exit status: the command's exit code with --exec; 1 when the guest ends any other way
(kernel panic, triple fault, reboot, timeout: the reason is printed on stderr); 2 usage
error or an unusable kernel/initrd (checked before any VM is created).`;

export function shellCommand(parent: Command): Command {
  return new Command('shell')
    .copyInheritedSettings(parent)
    .description('boot a kernel in the built-in VMM and run a command (or a shell) in it')
    .option('--kernel <SPEC>', 'kernel: a bzImage or vmlinux path, a kernel directory, a cache label or a version (default: KTSTR_KERNEL, then the newest cached or prebuilt kernel)')
    .option('--topology <SPEC>', 'CPU topology: a preset (tiny-2llc, smt-2llc, ...) or {numa}n{llcs}l{cores}c{threads}t; default one vCPU')
    .option('--memory <MiB>', 'guest RAM in MiB', intIn('--memory', 64, 4092), 256)
    .option('--exec <CMD>', 'run CMD with /bin/sh in the guest; exit with its status')
    .option('--timeout <SECONDS>', 'stop the guest after this long', intIn('--timeout', 1, 86400), 300)
    .option('--append <ARGS>', 'extra kernel command-line arguments')
    .option('-v, --verbose', 'print the kernel console on stderr (with --exec)')
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError("(run 'ktstr-wasm shell --help' for usage)")
    .action(async (flags: ShellFlags) => {
      const code = await runShell(flags);
      await new Promise<void>((r) => process.stdout.write('', () => r()));
      process.exitCode = code;
    });
}

export async function runShell(flags: ShellFlags): Promise<number> {
  const interactive = flags.exec === undefined;
  let topology: Topology | undefined;
  try {
    topology = flags.topology === undefined ? undefined : resolveTopology(flags.topology).topology;
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), EXIT_USAGE);
  }
  let kernel: string;
  try {
    kernel = resolveKernel(flags.kernel).bzImage;
  } catch (err) {
    if (err instanceof KernelNotFoundError) throw new CliError(err.message, EXIT_USAGE);
    throw err;
  }
  const initrd = await buildShellInitramfs({ exec: flags.exec });
  const cmdline = `${DEFAULT_CMDLINE}${interactive ? '' : ' quiet'}${flags.append ? ' ' + flags.append : ''}`;
  let shown = 0;
  let com2 = '';
  const stdin = process.stdin;
  let r: BootVmResult;
  try {
    r = await bootVm({
      kernel,
      initrd,
      cmdline,
      memoryMiB: flags.memory,
      topology,
      timeoutMs: flags.timeout * 1000,
      onConsole: (c) => {
        if (interactive) process.stdout.write(c);
        else if (flags.verbose) process.stderr.write(c);
      },
      onApp: (c) => {
        com2 += Buffer.from(c).toString('latin1');
        const out = appOutput(com2);
        if (out.length > shown) { process.stdout.write(Buffer.from(out.slice(shown), 'latin1')); shown = out.length; }
      },
      onStart: interactive ? (io) => {
        if (stdin.isTTY) stdin.setRawMode(true);
        stdin.on('data', (d: Buffer) => io.console(d));
        stdin.resume();
      } : undefined,
    });
  } catch (e) {
    if (e instanceof BootImageError) throw new CliError(e.message, 2, { cause: e });
    throw e;
  } finally {
    if (interactive) {
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      stdin.removeAllListeners('data');
    }
  }
  if (r.reason === 'exit' && r.exitCode !== null) return r.exitCode;
  if (interactive && (r.reason === 'poweroff' || r.reason === 'reboot')) return 0;
  const tail = r.consoleTail.split('\n').slice(-15).join('\n');
  throw new CliError(`guest ended without an exit code: ${r.reason} (${r.detail})${flags.verbose || interactive ? '' : `\n--- console tail ---\n${tail}`}`, EXIT_FAILED);
}
