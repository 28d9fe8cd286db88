// The VM and vCPU state Vm/Vcpu can set they can also get, as a snapshot needs: each get
// after a set gives back what was set (irqchip, PIT, MSRs, FPU, LAPIC, CPUID), on a real
// KVM (the test host on this machine kind). No guest runs; every fd is closed afterwards.

import { closeIdleVcpuThreads } from '../../src/vmm/vcpu-thread-pool.js';
import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '../../src/kvm/kvm.js';
import { KVM_FPU, KVM_IRQCHIP, KVM_PIT_STATE2 } from '../../src/kvm/layout.js';
import { native } from '../../src/kvm/native.js';
import {
  bootFpu,
  bootMsrs,
  KVM_IDENTITY_MAP_ADDR,
  KVM_TSS_ADDR,
  MSR,
  pcGsiRoutes,
  withBootLints,
} from '../../src/vmm/kvm-setup.js';

const openFds = (): string[] => readdirSync('/proc/self/fd');

test('every set has a get that returns it', async () => {
  native();
  await closeIdleVcpuThreads(); // an earlier file's warm vCPU threads would end mid-count
  const before = openFds();
  const kvm = Kvm.open();
  try {
    const vm = kvm.createVm();
    vm.setTssAddr(KVM_TSS_ADDR);
    vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
    vm.createIrqchip();
    vm.setGsiRouting(pcGsiRoutes());
    vm.createPit2();
    const vcpu = vm.createVcpu(0);
    vcpu.setCpuid(kvm.supportedCpuid());

    const ioapic = vm.getIrqchip(2);
    assert.is(new DataView(ioapic.buffer).getUint32(KVM_IRQCHIP.offsets.chip_id, true), 2);
    const dv = new DataView(ioapic.buffer);
    const redir0 = KVM_IRQCHIP.offsets.chip + 24; // kvm_ioapic_state: base_address, ioregsel, id, irr, pad, then redirtbl
    dv.setBigUint64(redir0 + 8 * 5, 0x0000_0000_0001_0031n, true); // pin 5: masked, vector 0x31
    vm.setIrqchip(ioapic);
    assert.equal(vm.getIrqchip(2), ioapic, 'I/O APIC state round-trips');

    const pit = vm.getPit2();
    assert.is(pit.length, KVM_PIT_STATE2.size);
    vm.setPit2(pit);
    assert.equal(
      vm.getPit2().subarray(KVM_PIT_STATE2.offsets.flags),
      pit.subarray(KVM_PIT_STATE2.offsets.flags),
      'PIT flags round-trip',
    );

    vcpu.setMsrs(bootMsrs());
    const msrs = vcpu.getMsrs([MSR.IA32_MISC_ENABLE, MSR.IA32_MTRR_DEF_TYPE, MSR.LSTAR]);
    assert.equal(
      msrs.map(([i]) => i),
      [MSR.IA32_MISC_ENABLE, MSR.IA32_MTRR_DEF_TYPE, MSR.LSTAR],
    );
    assert.is(msrs[1][1], bootMsrs().find(([i]) => i === MSR.IA32_MTRR_DEF_TYPE)![1]);
    vcpu.setMsrs([[MSR.LSTAR, 0xffffffff81000000n]]);
    assert.equal(vcpu.getMsrs([MSR.LSTAR]), [[MSR.LSTAR, 0xffffffff81000000n]]);

    // KVM_GET_FPU leaves MXCSR out (KVM copies it in on set, never out on get): check the rest
    const fpuSet = bootFpu();
    new DataView(fpuSet.buffer).setUint16(KVM_FPU.offsets.fcw, 0x27f, true);
    fpuSet[KVM_FPU.offsets.xmm] = 0x5a;
    vcpu.setFpu(fpuSet);
    const fpu = vcpu.getFpu();
    assert.is(new DataView(fpu.buffer).getUint16(KVM_FPU.offsets.fcw, true), 0x27f);
    assert.is(fpu[KVM_FPU.offsets.xmm], 0x5a);
    vcpu.setFpu(bootFpu());
    assert.is(new DataView(vcpu.getFpu().buffer).getUint16(KVM_FPU.offsets.fcw, true), 0x37f);

    const lapic = withBootLints(vcpu.getLapic());
    vcpu.setLapic(lapic);
    const lvt = new DataView(vcpu.getLapic().buffer);
    assert.is((lvt.getUint32(0x350, true) >> 8) & 7, 7, 'LINT0 ExtINT');
    assert.is((lvt.getUint32(0x360, true) >> 8) & 7, 4, 'LINT1 NMI');

    const cpuid = vcpu.getCpuid();
    assert.ok(cpuid.nent > 0 && cpuid.find(0) !== undefined, 'leaf 0 is among the CPUID entries set');

    vm.irqLine(4, 1);
    vm.irqLine(4, 0);
  } finally {
    kvm.close();
  }
  assert.equal(openFds(), before, 'no fd left open');
});

test.run();
