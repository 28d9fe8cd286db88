// `ktstr-wasm doctor`: what this machine's KVM is, how fast it runs a guest, whether the
// emulated test host can stand in, which kernels are found, and what to do next.
// The implementation (doctor-run.ts) is loaded only when the command runs.

import { Command } from './commander.js';
import type { DoctorFlags } from './doctor-run.js';

const EXAMPLES = `
Examples:
  $ ktstr-wasm doctor           human-readable report
  $ ktstr-wasm doctor --json    the same with the measured figures, for scripts and CI

Exit status: 0 when VMs can run here (hardware KVM or the test host), 1 when neither.`;

export function doctorCommand(parent: Command): Command {
  return new Command('doctor')
    .copyInheritedSettings(parent)
    .description("report what this machine's KVM is and where VMs will run")
    .option('--json', 'print the report as JSON')
    .addHelpText('after', EXAMPLES)
    .action(async (flags: DoctorFlags) => {
      const { runDoctor } = await import('./doctor-run.js');
      await runDoctor(flags);
    });
}
