// Gathers what `ktstr-wasm doctor` reports: the kind of /dev/kvm, a calibration guest's
// speed on it, QEMU, the emulated test host, the kernels found, and what to do next.

import { spawnSync } from 'node:child_process';
import { discoverKernels, type KernelEntry } from '../kernel/discover.js';
import { isHardwareKvm, probeKvm, type KvmProbe } from './kvm-kind.js';

export interface Calibration {
  ok: boolean;
  instructionsPerSecond?: number;
  instructions?: number;
  seconds?: number;
  error?: string;
}

export interface QemuInfo {
  found: boolean;
  path: string;
  version?: string;
}

export interface DoctorReport {
  kvm: KvmProbe;
  calibration: Calibration;
  qemu: QemuInfo;
  testHost: { available: boolean; reason: string };
  kernels: KernelEntry[];
  /** Where KVM tests and VM commands run on this machine. */
  path: 'kvm' | 'test-host' | 'none';
  advice: string[];
}

/** A guest loop that proves SVM/VMX speed runs > 100 M instructions/s; PVM manages ~2 M. */
export const HARDWARE_SPEED = 100e6;

function probeQemu(path = 'qemu-system-x86_64'): QemuInfo {
  const run = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (run.error || run.status !== 0) return { found: false, path };
  return { found: true, path, version: /version ([^\s]+)/.exec(run.stdout)?.[1] ?? run.stdout.split('\n')[0] };
}

async function calibrate(kvm: KvmProbe): Promise<Calibration> {
  if (kvm.kind === 'absent' || kvm.kind === 'no-access') return { ok: false, error: kvm.detail };
  try {
    const { calibrateGuestLoop } = await import('./calibration.js');
    const run = await calibrateGuestLoop({ targetMs: 250, timeoutMs: 20_000 });
    if (run.exit.kind !== 'hlt') return { ok: false, error: `calibration guest did not halt: ${run.exit.detail}` };
    return {
      ok: true,
      instructionsPerSecond: run.instructionsPerSecond,
      instructions: run.instructions,
      seconds: run.seconds,
    };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

async function probeTestHost(qemu: QemuInfo): Promise<{ available: boolean; reason: string }> {
  if (!qemu.found) return { available: false, reason: 'qemu-system-x86_64 not found' };
  try {
    const { testHostAvailable } = await import('../host/index.js');
    const result = testHostAvailable();
    return { available: result.ok, reason: result.reason };
  } catch (err) {
    return { available: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

export async function doctorReport(): Promise<DoctorReport> {
  const kvm = probeKvm();
  const qemu = probeQemu();
  const [calibration, testHost] = await Promise.all([calibrate(kvm), probeTestHost(qemu)]);
  const kernels = discoverKernels();
  const fast = isHardwareKvm(kvm) && calibration.ok && (calibration.instructionsPerSecond ?? 0) > HARDWARE_SPEED;
  const path = fast ? 'kvm' : testHost.available ? 'test-host' : 'none';
  const advice: string[] = [];
  if (kvm.kind === 'pvm') {
    advice.push(
      'This /dev/kvm is PVM: it cannot boot Linux guests. VM commands and KVM tests run inside the emulated KVM test host (QEMU TCG with AMD SVM): `ktstr-wasm host run -- CMD`; `npm test` does this automatically.',
    );
  } else if (kvm.kind === 'absent') {
    advice.push(
      'No /dev/kvm: load kvm_intel or kvm_amd if the CPU has vmx/svm, or use the emulated KVM test host (`ktstr-wasm host run -- CMD`).',
    );
  } else if (kvm.kind === 'no-access') {
    advice.push('Grant access to /dev/kvm (e.g. `sudo usermod -aG kvm $USER`, then log in again).');
  } else if (isHardwareKvm(kvm) && !fast) {
    advice.push(
      'KVM is loaded but the calibration guest did not reach hardware speed; check nested virtualisation settings.',
    );
  }
  if (!qemu.found) advice.push('Install QEMU for the test host: `sudo apt-get install qemu-system-x86`.');
  if (kernels.length === 0)
    advice.push('No kernel found: set KTSTR_KERNEL to a bzImage (a sched_ext kernel built with ktstr.kconfig).');
  if (path !== 'none' && kernels.length > 0)
    advice.push(
      path === 'kvm'
        ? "Ready: VM commands run on this machine's KVM."
        : 'Ready: VM commands run in the test host (slower, functionally real).',
    );
  return { kvm, calibration, qemu, testHost, kernels, path, advice };
}
