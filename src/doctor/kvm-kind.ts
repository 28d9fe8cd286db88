// What this machine's /dev/kvm is: absent, not accessible, PVM (software emulation of
// non-PVM guests), or hardware-accelerated (kvm_intel / kvm_amd).

import { accessSync, constants, existsSync, readFileSync } from 'node:fs';

export type KvmKind = 'absent' | 'no-access' | 'pvm' | 'intel' | 'amd' | 'unknown';

export interface KvmProbe {
  kind: KvmKind;
  device: string;
  /** Loaded KVM vendor modules (kvm_intel, kvm_amd, kvm_pvm). */
  modules: string[];
  /** CPU virtualisation flag seen in /proc/cpuinfo (vmx or svm), if any. */
  cpuFlag?: 'vmx' | 'svm';
  detail: string;
}

const VENDOR_MODULES = ['kvm_intel', 'kvm_amd', 'kvm_pvm'];

function cpuVirtFlag(): 'vmx' | 'svm' | undefined {
  try {
    const text = readFileSync('/proc/cpuinfo', 'latin1');
    const flags = /^flags\s*:(.*)$/m.exec(text)?.[1].split(/\s+/) ?? [];
    if (flags.includes('vmx')) return 'vmx';
    if (flags.includes('svm')) return 'svm';
  } catch {
    // no /proc: not Linux, or a restricted sandbox
  }
  return undefined;
}

export function probeKvm(device = '/dev/kvm', sysModule = '/sys/module'): KvmProbe {
  const modules = VENDOR_MODULES.filter((m) => existsSync(`${sysModule}/${m}`));
  const cpuFlag = cpuVirtFlag();
  const base = { device, modules, cpuFlag };
  if (!existsSync(device)) {
    return {
      ...base,
      kind: 'absent',
      detail: `${device} does not exist (no KVM module loaded, or a container without the device)`,
    };
  }
  try {
    accessSync(device, constants.R_OK | constants.W_OK);
  } catch {
    return {
      ...base,
      kind: 'no-access',
      detail: `${device} exists but this user cannot open it read-write (add the user to the kvm group)`,
    };
  }
  if (modules.includes('kvm_pvm')) {
    return {
      ...base,
      kind: 'pvm',
      detail:
        'kvm_pvm: PVM emulates guests that are not PVM-enabled instruction by instruction; Linux guests fail in early boot',
    };
  }
  if (modules.includes('kvm_intel'))
    return { ...base, kind: 'intel', detail: 'kvm_intel: hardware virtualisation (VMX)' };
  if (modules.includes('kvm_amd')) return { ...base, kind: 'amd', detail: 'kvm_amd: hardware virtualisation (SVM)' };
  return { ...base, kind: 'unknown', detail: `${device} exists but no known vendor module is loaded` };
}

/** True when KVM runs Linux guests at hardware speed here. */
export function isHardwareKvm(probe: KvmProbe): boolean {
  return probe.kind === 'intel' || probe.kind === 'amd';
}
