// `ktstr-wasm shell [--kernel SPEC] [--topology SPEC] [--memory MiB] [--exec CMD]`: boots the kernel in
// this process's own VMM (src/vmm) with a busybox initramfs. With --exec the guest runs
// CMD, its output (COM2) goes to stdout, and shell exits with CMD's exit code; the kernel
// console goes to stderr with --verbose. Without --exec: an interactive shell on the
// console (stdin -> COM1, COM1 -> stdout).
// The implementation (shell-run.ts) is loaded only when the command runs.

import { Command, InvalidArgumentError } from './commander.js';
import type { ShellFlags } from './shell-run.js';

function intIn(what: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}.`);
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
  $ ktstr-wasm shell --topology tiny-2llc --monitor --exec 'for i in 1 2 3; do (while :; do :; done) & done; sleep 10'
                                                   each CPU's runqueue, read from guest memory, once a second

Where /dev/kvm is absent, PVM or not accessible, --exec runs inside the emulated KVM test
host (QEMU TCG) on its own; --no-test-host refuses instead.

Exit status: the command's exit code with --exec; 1 when the guest ends any other way
(kernel panic, triple fault, reboot, timeout: the reason is printed on stderr); 2 usage
error or an unusable kernel/initrd (checked before any VM is created).`;

export function shellCommand(parent: Command): Command {
  return new Command('shell')
    .copyInheritedSettings(parent)
    .description('boot a kernel in the built-in VMM and run a command (or a shell) in it')
    .option(
      '--kernel <SPEC>',
      'kernel: a bzImage or vmlinux path, a kernel directory, a cache label or a version (default: KTSTR_KERNEL, then the newest cached or prebuilt kernel); a kernel found by directory, label or version boots from its vmlinux when it has one (no decompression)',
    )
    .option(
      '--topology <SPEC>',
      'CPU topology: a preset (tiny-2llc, smt-2llc, ...) or {numa}n{llcs}l{cores}c{threads}t; default one vCPU',
    )
    .option('--memory <MiB>', 'guest RAM in MiB', intIn('--memory', 64, 4092), 256)
    .option('--exec <CMD>', 'run CMD with /bin/sh in the guest; exit with its status')
    .option('--timeout <SECONDS>', 'stop the guest after this long', intIn('--timeout', 1, 86400), 300)
    .option('--append <ARGS>', 'extra kernel command-line arguments')
    .option('-v, --verbose', 'print the kernel console on stderr (with --exec), and where the boot time went')
    .option(
      '--monitor',
      "show the host monitor: each CPU's runqueue read from guest memory (a live table on a terminal, q quits; once a second otherwise)",
    )
    .option('--no-test-host', 'fail instead of running inside the emulated test host when /dev/kvm is unusable')
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError("(run 'ktstr-wasm shell --help' for usage)")
    .action(async (flags: ShellFlags) => {
      const { runShell } = await import('./shell-run.js');
      const code = await runShell(flags);
      await new Promise<void>((r) => process.stdout.write('', () => r()));
      process.exitCode = code;
    });
}
