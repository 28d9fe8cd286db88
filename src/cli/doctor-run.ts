// What `ktstr-wasm doctor` does: measures and probes (src/doctor), prints the report as text
// or JSON, and sets the exit status. Loaded by doctor-command.ts only when the command runs.

import { doctorReport, type DoctorReport } from '../doctor/report.js';
import { paint } from './colour.js';
import { EXIT_FAILED, EXIT_OK } from './errors.js';
import { write } from './output.js';

export interface DoctorFlags {
  json?: boolean;
}

function rate(value: number | undefined): string {
  if (value === undefined) return '-';
  return value >= 1e6 ? `${(value / 1e6).toFixed(1)} M instructions/s` : `${Math.round(value)} instructions/s`;
}

export function formatDoctor(report: DoctorReport, colour = paint(process.stdout)): string {
  const ok = (flag: boolean): string => (flag ? colour.green('yes') : colour.red('no'));
  const lines = [
    `${colour.bold('/dev/kvm')}      ${report.kvm.kind === 'absent' ? colour.red('absent') : report.kvm.kind} — ${report.kvm.detail}`,
    `${colour.bold('calibration')}   ${report.calibration.ok ? rate(report.calibration.instructionsPerSecond) : colour.yellow(`not run: ${report.calibration.error}`)}`,
    `${colour.bold('qemu')}          ${ok(report.qemu.found)}${report.qemu.version ? ` (${report.qemu.version})` : ''}`,
    `${colour.bold('test host')}     ${ok(report.testHost.available)} — ${report.testHost.reason}`,
    `${colour.bold('kernels')}       ${report.kernels.length === 0 ? colour.yellow('none found') : report.kernels.map((k) => `${k.label} (${k.source})`).join(', ')}`,
    `${colour.bold('VMs run on')}    ${report.path === 'kvm' ? "this machine's KVM" : report.path === 'test-host' ? 'the emulated KVM test host' : colour.red('nothing available')}`,
    '',
    ...report.advice.map((a) => `- ${a}`),
  ];
  return lines.join('\n') + '\n';
}

export async function runDoctor(flags: DoctorFlags): Promise<void> {
  const report = await doctorReport();
  await write(process.stdout, flags.json === true ? JSON.stringify(report, null, 2) + '\n' : formatDoctor(report));
  process.exitCode = report.path === 'none' ? EXIT_FAILED : EXIT_OK;
}
