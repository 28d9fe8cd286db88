// Snapshot state on a real KVM (run inside the test host): a vCPU that ran a raw 64-bit
// image is saved whole (vcpu-state.ts) and restored into a fresh VM's vCPU. Every blob and
// MSR reads back equal there (the TSC only moves forward by the time since the restore), the
// VM's irqchips and PIT read back equal and its kvmclock continues from the saved value; and
// a restored vCPU resumes the guest where it stopped, with its XMM register and an MSR the
// guest wrote intact. An MSR KVM refuses to read is skipped. Every fd is closed afterwards.

import { closeIdleVcpuThreads } from '../../src/vmm/vcpu-thread-pool.js';
import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  KVM_CAP,
  KVM_CLOCK,
  KVM_EXIT,
  KVM_MP_STATES,
  KVM_VCPUEVENT,
  KVM_X86_SHADOW_INT,
} from '../../src/kvm/constants.js';
import { Kvm, type Vcpu, type Vm } from '../../src/kvm/kvm.js';
import {
  KVM_DEBUGREGS,
  KVM_IRQCHIP,
  KVM_PIT_STATE2,
  KVM_VCPU_EVENTS,
  KVM_XCR,
  KVM_XCRS,
} from '../../src/kvm/layout.js';
import { native } from '../../src/kvm/native.js';
import type { KvmCpuid2, MsrEntry } from '../../src/kvm/structs.js';
import {
  MSR_IA32_TSC,
  MSR_IA32_TSC_DEADLINE,
  restoreVcpuState,
  restoreVmState,
  saveVcpuState,
  saveVmState,
  type VcpuState,
  type VmState,
} from '../../src/kvm/vcpu-state.js';
import { CR4_OSFXSR, CR4_OSXMMEXCPT } from '../../src/kvm/x86.js';
import { bootRegs, bootSregs } from '../../src/vmm/boot/entry-state.js';
import { RAW_LAYOUT, writeRawImage } from '../../src/vmm/boot/raw-image.js';
import {
  bootMsrs,
  KVM_IDENTITY_MAP_ADDR,
  KVM_PIT_SPEAKER_DUMMY,
  KVM_TSS_ADDR,
  MSR,
  pcGsiRoutes,
  vcpuCpuid,
} from '../../src/vmm/kvm-setup.js';
import { GuestMemory } from '../../src/vmm/memory.js';

const CR4_OSXSAVE = 1n << 18n;
const CPUID_1_ECX_XSAVE = 1 << 26;
const XMM_PATTERN = 0x0123456789abcdefn;
const LSTAR_VALUE = 0xffffffff81000000n;
const RBX_MAGIC = 0x6b7473747273746en;
const FIRST_PORT = 0x80;
const SECOND_PORT = 0x81;

const u64le = (v: bigint): number[] => Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
const u32le = (v: number): number[] => Array.from({ length: 4 }, (_, i) => (v >>> (8 * i)) & 0xff);

/**
 * Part 1 puts a pattern in XMM3, writes LSTAR, sets RBX and exits with OUT 0x80; part 2
 * (after a restore) reads XMM3 into RSI and LSTAR into RDI, then exits with OUT 0x81.
 */
const GUEST_CODE = Uint8Array.from([
  ...[0x48, 0xb8, ...u64le(XMM_PATTERN)], //            mov rax, XMM_PATTERN
  ...[0x66, 0x48, 0x0f, 0x6e, 0xd8], //                 movq xmm3, rax
  ...[0xb9, ...u32le(MSR.LSTAR)], //                    mov ecx, LSTAR
  ...[0xb8, ...u32le(Number(LSTAR_VALUE & 0xffffffffn))], // mov eax, low
  ...[0xba, ...u32le(Number(LSTAR_VALUE >> 32n))], //   mov edx, high
  ...[0x0f, 0x30], //                                   wrmsr
  ...[0x48, 0xbb, ...u64le(RBX_MAGIC)], //              mov rbx, RBX_MAGIC
  ...[0xe6, FIRST_PORT], //                             out 0x80, al
  ...[0x66, 0x48, 0x0f, 0x7e, 0xd8], //                 movq rax, xmm3
  ...[0x48, 0x89, 0xc6], //                             mov rsi, rax
  ...[0xb9, ...u32le(MSR.LSTAR)], //                    mov ecx, LSTAR
  ...[0x0f, 0x32], //                                   rdmsr
  ...[0x48, 0xc1, 0xe2, 0x20], //                       shl rdx, 32
  ...[0x48, 0x09, 0xd0], //                             or rax, rdx
  ...[0x48, 0x89, 0xc7], //                             mov rdi, rax
  ...[0xe6, SECOND_PORT], //                            out 0x81, al
  0xf4, //                                              hlt
]);

interface TestVm {
  vm: Vm;
  vcpu: Vcpu;
  memory: GuestMemory;
}

const openFds = (): string[] => readdirSync('/proc/self/fd');

/** A VM as the VMM builds it (in-kernel irqchip, PIT, 2 MiB of RAM at 0) with vCPU 0, nothing set on it. */
function createTestVm(kvm: Kvm): TestVm {
  const memory = new GuestMemory(RAW_LAYOUT.ramSize, (b) => native().sharedBufferAddress(b));
  const vm = kvm.createVm();
  vm.setTssAddr(KVM_TSS_ADDR);
  vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
  vm.createIrqchip();
  vm.setGsiRouting(pcGsiRoutes());
  vm.createPit2(KVM_PIT_SPEAKER_DUMMY);
  const r = memory.regions[0];
  vm.mapMemory({ slot: 0, guestPhysAddr: 0, memory: memory.memory, offset: r.offset, size: r.size });
  return { vm, vcpu: vm.createVcpu(0), memory };
}

/** Boots the raw image on vCPU 0 with SSE and XSAVE on, runs it to its first OUT and completes that exit. */
function runFirstPart(kvm: Kvm, t: TestVm): void {
  const supported = kvm.supportedCpuid();
  const cpuid: KvmCpuid2 = vcpuCpuid(supported, 0, undefined, { tscDeadline: true });
  t.vcpu.setCpuid(cpuid);
  t.vcpu.setMsrs(bootMsrs());
  const boot = writeRawImage(t.memory, GUEST_CODE);
  const sregs = bootSregs(t.vcpu.getSregs(), boot);
  const xsave = ((cpuid.find(1)?.ecx ?? 0) & CPUID_1_ECX_XSAVE) !== 0;
  sregs.set('cr4', sregs.get('cr4') | CR4_OSFXSR | CR4_OSXMMEXCPT | (xsave ? CR4_OSXSAVE : 0n));
  t.vcpu.setSregs(sregs);
  t.vcpu.setRegs(bootRegs(boot));
  if (xsave) {
    // XCR0: x87 and SSE, and AVX when KVM offers it
    const xcrs = t.vcpu.getXcrs();
    const v = new DataView(xcrs.buffer);
    const xcr0 = 3n | (BigInt(supported.find(0xd, 0)?.eax ?? 0) & 4n);
    v.setUint32(KVM_XCRS.offsets.nr_xcrs, 1, true);
    v.setUint32(KVM_XCRS.offsets.xcrs + KVM_XCR.offsets.xcr, 0, true);
    v.setBigUint64(KVM_XCRS.offsets.xcrs + KVM_XCR.offsets.value, xcr0, true);
    t.vcpu.setXcrs(xcrs);
  }
  expectOut(t.vcpu, FIRST_PORT);
  t.vcpu.completePendingExit();
}

function expectOut(vcpu: Vcpu, port: number): void {
  const reason = vcpu.runOnce();
  const exit = vcpu.run.exit();
  const where = `rip=0x${vcpu.getRegs().get('rip').toString(16)}`;
  assert.is(
    reason,
    KVM_EXIT.KVM_EXIT_IO,
    `guest exit ${JSON.stringify(exit, (_, x) => (typeof x === 'bigint' ? `${x}` : x))} at ${where}`,
  );
  assert.ok(exit.kind === 'io-out' && exit.port === port, `OUT to 0x${port.toString(16)}, not ${JSON.stringify(exit)}`);
}

/** Copies guest RAM, as a snapshot's RAM file would. */
function copyRam(from: GuestMemory, to: GuestMemory): void {
  to.write(0, from.read(0, RAW_LAYOUT.ramSize));
}

/** Offsets (up to 8) where two blobs differ, for a readable failure. */
function byteDiff(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  const at: string[] = [];
  for (let i = 0; i < a.length && at.length < 8; i++) if (a[i] !== b[i]) at.push(`+${i}: ${a[i]} vs ${b[i]}`);
  return at.join(', ');
}

function msrDiff(a: readonly MsrEntry[], b: readonly MsrEntry[], skip: ReadonlySet<number>): string[] {
  const bm = new Map(b);
  const out: string[] = [];
  for (const [i, v] of a) {
    if (skip.has(i)) continue;
    if (!bm.has(i)) out.push(`0x${i.toString(16)} missing`);
    else if (bm.get(i) !== v) out.push(`0x${i.toString(16)}: 0x${v.toString(16)} vs 0x${bm.get(i)!.toString(16)}`);
  }
  return out;
}

/**
 * MSRs that count time, so read back a little later than saved: the TSC, and the Hyper-V
 * partition reference time (derived from the kvmclock) and VP runtime (100 ns units).
 */
const COUNTER_MSRS = new Map<number, { name: string; perMs: (s: VcpuState) => number }>([
  [MSR_IA32_TSC, { name: 'IA32_TSC', perMs: (s) => s.tscKhz }],
  [0x40000020, { name: 'HV_X64_MSR_TIME_REF_COUNT', perMs: () => 10_000 }],
  [0x40000010, { name: 'HV_X64_MSR_VP_RUNTIME', perMs: () => 10_000 }],
]);

const msrValue = (s: VcpuState, index: number): bigint | undefined => s.msrs.find(([i]) => i === index)?.[1];

/** PIT channels without count_load_time (KVM_SET_PIT2 reloads the count and restamps it), and the flags. */
function pitComparable(pit: Uint8Array): Uint8Array {
  const parts: number[] = [];
  for (let ch = 0; ch < 3; ch++) parts.push(...pit.subarray(24 * ch, 24 * ch + 16));
  parts.push(...pit.subarray(KVM_PIT_STATE2.offsets.flags, KVM_PIT_STATE2.offsets.flags + 4));
  return Uint8Array.from(parts);
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

test('a saved vCPU and VM read back equal after restore into a fresh VM', async () => {
  native();
  await closeIdleVcpuThreads(); // an earlier file's warm vCPU threads would end mid-count
  const before = openFds();
  const kvm = Kvm.open();
  try {
    const msrList = kvm.msrIndexList();
    assert.ok(msrList.includes(MSR_IA32_TSC), 'the MSR index list has IA32_TSC');

    const a = createTestVm(kvm);
    runFirstPart(kvm, a);

    // An MSR KVM refuses is skipped and the read goes on past it (unless kvm.ignore_msrs reads it as 0)
    const BOGUS_MSR = 0x4b564dff;
    const partial = a.vcpu.getReadableMsrs([MSR.LSTAR, BOGUS_MSR, MSR_IA32_TSC]);
    assert.equal(
      partial.msrs.map(([i]) => i).filter((i) => i !== BOGUS_MSR),
      [MSR.LSTAR, MSR_IA32_TSC],
    );
    assert.ok(partial.refused.length === 1 ? partial.refused[0] === BOGUS_MSR : partial.msrs.length === 3);

    // State beyond what the guest set, so each part of the restore has something to carry:
    const dbg = a.vcpu.getDebugregs();
    const dv = new DataView(dbg.buffer);
    dv.setBigUint64(KVM_DEBUGREGS.offsets.db, 0x123000n, true);
    dv.setBigUint64(KVM_DEBUGREGS.offsets.dr7, 0x401n, true); // L0: DR0 as an execute breakpoint
    a.vcpu.setDebugregs(dbg);
    const lapic = a.vcpu.getLapic();
    const lv = new DataView(lapic.buffer);
    lv.setUint32(0xf0, 0x1ff, true); // SVR: APIC software-enabled
    lv.setUint32(0x320, 0xec | (2 << 17), true); // LVTT: vector 0xec, TSC-deadline mode
    a.vcpu.setLapic(lapic);
    const tscKhz = a.vcpu.getTscKhz();
    const deadline = a.vcpu.getMsrs([MSR_IA32_TSC])[0][1] + BigInt(tscKhz) * 1000n * 3600n;
    a.vcpu.setMsrs([[MSR_IA32_TSC_DEADLINE, deadline]]);
    const ioapic = a.vm.getIrqchip(2);
    new DataView(ioapic.buffer).setBigUint64(KVM_IRQCHIP.offsets.chip + 24 + 8 * 5, 0x1_0031n, true); // pin 5: masked, vector 0x31
    a.vm.setIrqchip(ioapic);
    a.vcpu.setMpState(KVM_MP_STATES.KVM_MP_STATE_HALTED);
    const ev = a.vcpu.getVcpuEvents();
    const evv = new DataView(ev.buffer);
    const E = KVM_VCPU_EVENTS.offsets;
    ev[E['nmi.pending']] = 1;
    ev[E['interrupt.shadow']] = KVM_X86_SHADOW_INT.KVM_X86_SHADOW_INT_MOV_SS;
    evv.setUint32(
      E.flags,
      KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_SHADOW,
      true,
    );
    a.vcpu.setVcpuEvents(ev);

    const sa = saveVcpuState(msrList, a.vcpu);
    const va: VmState = saveVmState(a.vm);
    console.log(
      `  saved: ${sa.msrs.length} MSRs (${sa.refusedMsrs.length} of ${msrList.length} refused: ` +
        `${sa.refusedMsrs.map((i) => `0x${i.toString(16)}`).join(' ')}), XSAVE ${sa.xsave.length} bytes, ` +
        `TSC ${sa.tscKhz} kHz, MP state ${sa.mpState}, clock flags 0x${va.clock.flags.toString(16)}`,
    );
    // what was set on A is in its saved state
    assert.is(msrValue(sa, MSR.LSTAR), LSTAR_VALUE, 'LSTAR as the guest wrote it');
    assert.is(msrValue(sa, MSR_IA32_TSC_DEADLINE), deadline, 'TSC deadline armed');
    assert.is(sa.mpState, KVM_MP_STATES.KVM_MP_STATE_HALTED);
    assert.is(sa.vcpuEvents[E['nmi.pending']], 1, 'NMI pending');
    // SVM has one shadow bit and reports it as MOV_SS | STI; VMX keeps the two apart
    assert.ok(sa.vcpuEvents[E['interrupt.shadow']] & KVM_X86_SHADOW_INT.KVM_X86_SHADOW_INT_MOV_SS, 'interrupt shadow');

    sleepMs(300); // the kvmclock must not count this
    const b = createTestVm(kvm);
    copyRam(a.memory, b.memory);
    restoreVcpuState(b.vcpu, sa);
    restoreVmState(b.vm, va);
    const sb = saveVcpuState(msrList, b.vcpu);
    const vb = saveVmState(b.vm);

    const mismatches: string[] = [];
    assert.equal(sb.cpuid, sa.cpuid, 'CPUID');
    assert.is(sb.tscKhz, sa.tscKhz, 'TSC kHz');
    for (const k of ['regs', 'sregs', 'xsave', 'xcrs', 'debugregs', 'lapic', 'vcpuEvents'] as const) {
      const d = byteDiff(sa[k], sb[k]);
      if (d !== '') mismatches.push(`${k}: ${d}`);
    }
    if (sb.mpState !== sa.mpState) mismatches.push(`mpState ${sa.mpState} vs ${sb.mpState}`);
    mismatches.push(...msrDiff(sa.msrs, sb.msrs, new Set(COUNTER_MSRS.keys())).map((m) => `MSR ${m}`));
    if (sb.msrs.length !== sa.msrs.length) mismatches.push(`MSR count ${sa.msrs.length} vs ${sb.msrs.length}`);
    va.irqchips.forEach((chip, i) => {
      const d = byteDiff(chip, vb.irqchips[i]);
      if (d !== '') mismatches.push(`irqchip ${i}: ${d}`);
    });
    const pd = byteDiff(pitComparable(va.pit), pitComparable(vb.pit));
    if (pd !== '') mismatches.push(`PIT: ${pd}`);
    assert.equal(mismatches, [], `state read back after restore differs:\n    ${mismatches.join('\n    ')}`);

    // Counters continue from the saved value: less than the 300 ms slept between save and restore on
    const clockStep = vb.clock.clock - va.clock.clock;
    const steps: string[] = [`kvmclock +${Number(clockStep) / 1e6} ms`];
    assert.ok(clockStep >= 0n && clockStep < 250_000_000n, 'the kvmclock continues from the saved value');
    for (const [index, { name, perMs }] of COUNTER_MSRS) {
      const was = msrValue(sa, index);
      if (was === undefined) continue;
      const step = msrValue(sb, index)! - was;
      const ms = Number(step) / perMs(sa);
      steps.push(`${name} +${ms.toFixed(1)} ms`);
      assert.ok(step >= 0n && ms < 250, `${name} continues from the saved value (+${ms} ms)`);
    }
    console.log(`  after restore: ${steps.join(', ')} (300 ms slept between save and restore)`);

    const realtime =
      (va.clock.flags & KVM_CLOCK.KVM_CLOCK_REALTIME) !== 0 &&
      (b.vm.checkExtension(KVM_CAP.KVM_CAP_ADJUST_CLOCK) & KVM_CLOCK.KVM_CLOCK_REALTIME) !== 0;
    if (realtime) {
      restoreVmState(b.vm, va, { advanceClockByRealtime: true });
      const step = b.vm.getClock().clock - va.clock.clock;
      console.log(`  with KVM_CLOCK_REALTIME: kvmclock +${step} ns`);
      assert.ok(step >= 300_000_000n, 'KVM_CLOCK_REALTIME adds the time since the save');
    } else console.log('  KVM_CLOCK_REALTIME not offered: not checked');
  } finally {
    kvm.close();
  }
  assert.equal(openFds(), before, 'no fd left open');
});

test('a restored vCPU resumes the guest where it stopped', async () => {
  await closeIdleVcpuThreads(); // an earlier file's warm vCPU threads would end mid-count
  const before = openFds();
  const kvm = Kvm.open();
  try {
    const a = createTestVm(kvm);
    runFirstPart(kvm, a);
    const rip = a.vcpu.getRegs().get('rip');
    const sa = saveVcpuState(kvm, a.vcpu);
    const va = saveVmState(a.vm);
    const b = createTestVm(kvm);
    copyRam(a.memory, b.memory);
    a.vm.close();
    restoreVcpuState(b.vcpu, sa);
    restoreVmState(b.vm, va);
    assert.is(b.vcpu.getRegs().get('rip'), rip, 'RIP past the first OUT');
    expectOut(b.vcpu, SECOND_PORT);
    const r = b.vcpu.getRegs();
    assert.is(r.get('rsi'), XMM_PATTERN, 'XMM3 (XSAVE state) survived');
    assert.is(r.get('rdi'), LSTAR_VALUE, 'LSTAR (an MSR the guest wrote) survived');
    assert.is(r.get('rbx'), RBX_MAGIC, 'RBX survived');
  } finally {
    kvm.close();
  }
  assert.equal(openFds(), before, 'no fd left open');
});

test.run();
