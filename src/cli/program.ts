// The commander program: global options, the commands, and how commander reports errors
// (through exitOverride, so main() decides the exit status).

import { Command } from './commander.js';
import { collapseCommand } from './collapse-command.js';
import { doctorCommand } from './doctor-command.js';
import { hostCommand } from './host-command.js';
import { inspectCommand } from './inspect-command.js';
import { kernelCommand } from './kernel-command.js';
import { shellCommand } from './shell-command.js';
import { sweepCommand } from './sweep-command.js';
import { testCommand } from './test-command.js';
import { paint } from './colour.js';
import { packageVersion } from './version.js';

const EXAMPLES = `
Examples:
  $ ktstr-wasm sweep                          verify, attach and dispatch every scheduler x topology in VMs
  $ ktstr-wasm test                           run the scheduler tests (*.ktstr.ts) here in VMs
  $ ktstr-wasm collapse verifier.log          collapse a BPF verifier log
  $ ktstr-wasm collapse --stats verifier.log  the verifier's summary
  $ ktstr-wasm doctor                         what this machine's KVM is
  $ ktstr-wasm host run -- npm test           run a command in the emulated KVM test host
  $ ktstr-wasm help collapse                  options of one command

Exit status: 0 ok, 1 the checked thing failed, 2 usage error.`;

/** Formats commander's own error messages ("error: unknown option '--x'") like ours. */
function formatCommanderError(text: string): string {
  const message = text.replace(/^error: /, '').trimEnd();
  return paint(process.stderr).red(`ktstr-wasm: error: ${message}`) + '\n';
}

export function buildProgram(): Command {
  const program = new Command('ktstr-wasm');
  // settings below are copied into every command added afterwards
  program
    .exitOverride()
    .configureOutput({ outputError: (text, writeErr) => writeErr(formatCommanderError(text)) })
    .configureHelp({ styleTitle: (s) => paint(process.stdout).bold(s) });
  program
    .description(
      'Test harness for Linux schedulers: BPF verifier log collapse, KVM checks, the emulated KVM test host.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .enablePositionalOptions() // -V/--version only before the command: `kernel build --version 6.12` is the build's
    .helpOption('-h, --help', 'print help')
    .helpCommand('help [command]', 'print help for a command')
    .showHelpAfterError("(run 'ktstr-wasm --help' for usage)")
    .addHelpText('after', EXAMPLES)
    .addCommand(sweepCommand(program))
    .addCommand(testCommand(program))
    .addCommand(collapseCommand(program))
    .addCommand(doctorCommand(program))
    .addCommand(hostCommand(program))
    .addCommand(kernelCommand(program))
    .addCommand(shellCommand(program))
    .addCommand(inspectCommand(program));
  return program;
}
