// CPUID topology rewrite for both vendors: field-level checks of leaves 0x1, 0x4, 0xB/0x1F,
// 0x8000_0008/1D/1E, and a model of what Linux derives from them (topology_*.c, cacheinfo.c)
// compared with expectedSysfs().

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CpuidEntry } from '../../src/kvm/structs.js';
import {
  amdFamilyModelFix,
  cpuVendor,
  cpuidForVcpu,
  cpuidHook,
  familyModel,
  type Vendor,
} from '../../src/vmm/cpuid/index.js';
import { Topology, cpuList, expectedSysfs, resolveTopology } from '../../src/vmm/topology/index.js';

const vendorRegs = (s: string): { ebx: number; edx: number; ecx: number } => {
  const b = Buffer.from(s, 'latin1');
  return { ebx: b.readUInt32LE(0), edx: b.readUInt32LE(4), ecx: b.readUInt32LE(8) };
};
const E = (fn: number, index: number, flags: number, eax: number, ebx = 0, ecx = 0, edx = 0): CpuidEntry => ({
  function: fn,
  index,
  flags,
  eax: eax >>> 0,
  ebx: ebx >>> 0,
  ecx: ecx >>> 0,
  edx: edx >>> 0,
});

/** Roughly what KVM_GET_SUPPORTED_CPUID returns on an EPYC (family 17h model 1) host. */
function amdSupported(): CpuidEntry[] {
  const v = vendorRegs('AuthenticAMD');
  return [
    E(0, 0, 0, 0xd, v.ebx, v.ecx, v.edx),
    E(1, 0, 0, 0x00800f12, 0x00000800, 0xfed83203, 0x178bfbff),
    E(0xb, 0, 1, 0, 0, 0x100, 0),
    E(0xb, 1, 1, 0, 0, 0x201, 0),
    E(0xd, 0, 1, 0x7, 0x340, 0x340, 0),
    E(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
    E(0x40000001, 0, 0, 0x01007afb, 0, 0, 0),
    E(0x80000000, 0, 0, 0x8000001f, v.ebx, v.ecx, v.edx),
    E(0x80000001, 0, 0, 0x00800f12, 0, 0x000003f3, 0x2fd3fbff),
    E(0x80000006, 0, 0, 0, 0x02006400, 0x02006140, 0),
    E(0x80000008, 0, 0, 0x3030, 0, 0x0000, 0),
    E(0x8000001d, 0, 1, 0x00000121, 0x01c0003f, 0x3f, 0),
    E(0x8000001d, 1, 1, 0x00000122, 0x00c0003f, 0x3f, 0),
    E(0x8000001d, 2, 1, 0x00000143, 0x01c0003f, 0x3ff, 2),
    E(0x8000001d, 3, 1, 0x0003c163, 0x03c0003f, 0x3fff, 1),
    E(0x8000001d, 4, 1, 0),
    E(0x8000001e, 0, 0, 0, 0x100, 0, 0),
    E(0x80000026, 0, 1, 1, 2, 0x100, 0),
  ];
}

/** Roughly what KVM_GET_SUPPORTED_CPUID returns on a recent Intel host (max basic leaf 0x1F). */
function intelSupported(): CpuidEntry[] {
  const v = vendorRegs('GenuineIntel');
  return [
    E(0, 0, 0, 0x1f, v.ebx, v.ecx, v.edx),
    E(1, 0, 0, 0x000606a6, 0x00100800, 0xfffa3223, 0x0f8bfbff),
    E(4, 0, 1, 0x1c004121, 0x02c0003f, 0x3f, 0),
    E(4, 1, 1, 0x1c004122, 0x01c0003f, 0x3f, 0),
    E(4, 2, 1, 0x1c004143, 0x04c0003f, 0x3ff, 0),
    E(4, 3, 1, 0x1c07c163, 0x02c0003f, 0xbfff, 4),
    E(4, 4, 1, 0),
    E(0xb, 0, 1, 1, 2, 0x100, 0),
    E(0xb, 1, 1, 6, 64, 0x201, 0),
    E(0x1f, 0, 1, 1, 2, 0x100, 0),
    E(0x1f, 1, 1, 5, 32, 0x201, 0),
    E(0x1f, 2, 1, 6, 64, 0x502, 0),
    E(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
    E(0x80000000, 0, 0, 0x80000008, 0, 0, 0),
    E(0x80000001, 0, 0, 0, 0, 0x121, 0x2c100800),
    E(0x80000008, 0, 0, 0x3030, 0, 0, 0),
  ];
}

const order = (n: number): number => {
  let b = 0;
  while (1 << b < n) b++;
  return b;
};
function leaf(es: CpuidEntry[], fn: number, index = 0): CpuidEntry {
  const e = es.find((x) => x.function === fn && ((x.flags & 1) === 0 || x.index === index));
  if (!e) throw new Error(`no leaf 0x${fn.toString(16)}.${index}`);
  return e;
}

/** What the Linux kernel derives per CPU from its CPUID (a model of topology_*.c and cacheinfo.c). */
function linuxView(es: CpuidEntry[], vendor: Vendor): { apic: number; pkg: number; core: number; llc: number } {
  const maxBasic = leaf(es, 0).eax;
  const ext = maxBasic >= 0x1f ? 0x1f : 0xb;
  if (vendor === 'amd') {
    assert.ok(leaf(es, 0x80000001).ecx & (1 << 22), 'TOPOEXT set, so AMD parses leaf 0xB');
    const maxExt = leaf(es, 0x80000000).eax;
    assert.ok(maxExt >= 0x8000001e && maxExt < 0x80000026, 'no 0x8000_0026 to override 0xB');
  }
  const smt = leaf(es, ext, 0);
  const core = leaf(es, ext, 1);
  const end = leaf(es, ext, 2);
  assert.is((smt.ecx >> 8) & 0xff, 1, 'subleaf 0 is the SMT level');
  assert.is((core.ecx >> 8) & 0xff, 2, 'subleaf 1 is the core level');
  assert.is((end.ecx >> 8) & 0xff, 0, 'subleaf 2 ends the levels');
  const apic = smt.edx;
  assert.is(core.edx, apic);
  assert.is(end.edx, apic);
  const smtShift = smt.eax & 0x1f;
  const pkgShift = core.eax & 0x1f;
  let llcBits: number;
  if (vendor === 'intel') {
    const l3 = [0, 1, 2, 3, 4]
      .map((i) => leaf(es, 4, i))
      .find((e) => ((e.eax >> 5) & 7) === 3 && (e.eax & 0x1f) === 3)!;
    llcBits = order(((l3.eax >>> 14) & 0xfff) + 1);
  } else {
    assert.ok(leaf(es, 0x80000006).edx !== 0, 'an L3 is reported in 0x8000_0006 EDX');
    const { family, model } = familyModel(leaf(es, 1).eax);
    if (family === 0x17 && model <= 0x1f) llcBits = 3;
    else {
      const subs: CpuidEntry[] = [];
      for (let i = 0; ; i++) {
        const e = leaf(es, 0x8000001d, i);
        if ((e.eax & 0x1f) === 0) break;
        subs.push(e);
      }
      llcBits = order(((subs[subs.length - 1].eax >>> 14) & 0xfff) + 1);
      assert.is((subs[subs.length - 1].eax >> 5) & 7, 3, 'the last cache leaf is L3');
    }
  }
  return { apic, pkg: apic >>> pkgShift, core: apic >>> smtShift, llc: apic >>> llcBits };
}

function derivedSysfs(t: Topology, vendor: Vendor, supported: CpuidEntry[]): Record<string, string> {
  const views = t.cpus.map((c) => linuxView(cpuidForVcpu(supported, t, c.cpu), vendor));
  const out: Record<string, string> = { '/sys/devices/system/cpu/online': cpuList(t.cpus.map((c) => c.cpu)) };
  views.forEach((v, i) => {
    out[`/sys/devices/system/cpu/cpu${i}/topology/thread_siblings_list`] = cpuList(
      views.flatMap((o, j) =>
        o.pkg === v.pkg && o.core === v.core && (vendor === 'intel' || o.llc === v.llc) ? [j] : [],
      ),
    );
    out[`/sys/devices/system/cpu/cpu${i}/cache/index3/shared_cpu_list`] = cpuList(
      views.flatMap((o, j) => (o.llc === v.llc ? [j] : [])),
    );
  });
  // NUMA nodes come from SRAT (APIC ID -> proximity domain), which uses the same node per CPU.
  for (let n = 0; n < t.numaNodes; n++)
    out[`/sys/devices/system/node/node${n}/cpulist`] = cpuList(t.cpus.filter((c) => c.node === n).map((c) => c.cpu));
  // packages must equal nodes
  views.forEach((v, i) => assert.is(v.pkg, t.cpus[i].node, `cpu${i}: package = node`));
  return out;
}

test('cpuVendor reads leaf 0', () => {
  assert.is(cpuVendor(amdSupported()), 'amd');
  assert.is(cpuVendor(intelSupported()), 'intel');
  const v = vendorRegs('HygonGenuine');
  assert.throws(() => cpuVendor([E(0, 0, 0, 0xd, v.ebx, v.ecx, v.edx)]), /HygonGenuine/);
});

for (const name of [
  'tiny-1llc',
  'tiny-2llc',
  'odd-3llc',
  'smt-2llc',
  'numa2-4llc',
  'odd-7llc',
  'numa4-12llc',
  'max-cpu',
  'near-max-llc-nosmt',
]) {
  for (const vendor of ['amd', 'intel'] as const) {
    test(`${name} on ${vendor}: Linux derives exactly expectedSysfs`, () => {
      const t = resolveTopology(name).topology;
      assert.equal(derivedSysfs(t, vendor, vendor === 'amd' ? amdSupported() : intelSupported()), expectedSysfs(t));
    });
  }
}

test('smt-2llc on AMD: leaf fields', () => {
  const t = resolveTopology('smt-2llc').topology; // 1n2l2c2t, APIC IDs 0..7
  const es = cpuidForVcpu(amdSupported(), t, 5); // node 0, LLC 1, core 0, thread 1 -> APIC ID 0b101
  assert.is(t.cpus[5].apicId, 5);
  const l1 = leaf(es, 1);
  assert.is(l1.ebx >>> 24, 5, 'initial APIC ID');
  assert.is((l1.ebx >>> 16) & 0xff, 8, 'addressable IDs per package');
  assert.ok(l1.edx & (1 << 28), 'HTT');
  assert.is(l1.ebx & 0xffff, 0x0800, 'CLFLUSH size kept');
  assert.equal(familyModel(l1.eax), { family: 0x17, model: 0x20 });
  assert.equal(
    [leaf(es, 0xb, 0).eax, leaf(es, 0xb, 0).ebx, leaf(es, 0xb, 0).ecx, leaf(es, 0xb, 0).edx],
    [1, 2, 0x100, 5],
  );
  assert.equal(
    [leaf(es, 0xb, 1).eax, leaf(es, 0xb, 1).ebx, leaf(es, 0xb, 1).ecx, leaf(es, 0xb, 1).edx],
    [3, 8, 0x201, 5],
  );
  assert.not.ok(
    es.some((e) => e.function === 0x1f),
    'no 0x1F when the max basic leaf is below it',
  );
  const l8 = leaf(es, 0x80000008);
  assert.is(l8.ecx & 0xff, 7, 'NC = CPUs per package - 1');
  assert.is((l8.ecx >> 12) & 0xf, 3, 'ApicIdCoreIdSize');
  assert.is(l8.eax, 0x3030, 'address sizes kept');
  const e = leaf(es, 0x8000001e);
  assert.is(e.eax, 5, 'extended APIC ID');
  assert.is(e.ebx & 0xff, 2, 'core id: LLC 1, core 0 -> (1 << 1) | 0');
  assert.is((e.ebx >> 8) & 0xff, 1, 'threads per core - 1');
  assert.is(e.ecx & 0xff, 0, 'node id');
  assert.is((e.ecx >> 8) & 7, 0, 'one node per package');
  const sharing = [0, 1, 2, 3].map((i) => ((leaf(es, 0x8000001d, i).eax >>> 14) & 0xfff) + 1);
  assert.equal(sharing, [2, 2, 2, 4], 'L1d, L1i, L2 per core (2 threads), L3 per LLC (4 CPUs)');
  assert.is(leaf(es, 0x8000001d, 3).ecx, 0x3fff, 'L3 geometry kept from KVM');
  assert.is(leaf(es, 0x8000001d, 4).eax & 0x1f, 0, 'terminator');
  assert.not.ok(
    es.some((x) => x.function === 0x80000026),
    '0x8000_0026 dropped',
  );
  assert.is(leaf(es, 0x80000000).eax, 0x8000001f);
  assert.is(leaf(es, 0x80000001).ecx & 2, 0, 'CmpLegacy off');
  assert.not.ok(
    es.some((x) => x.function === 4),
    'no Intel leaf 4 on AMD',
  );
  assert.equal(
    leaf(es, 0x40000000),
    amdSupported().find((x) => x.function === 0x40000000),
    'hypervisor leaf untouched',
  );
  assert.equal(
    leaf(es, 0x40000001),
    amdSupported().find((x) => x.function === 0x40000001),
  );
});

test('smt-2llc on Intel: leaf fields', () => {
  const t = resolveTopology('smt-2llc').topology;
  const es = cpuidForVcpu(intelSupported(), t, 6);
  const l1 = leaf(es, 1);
  assert.is(l1.ebx >>> 24, 6);
  assert.is((l1.ebx >>> 16) & 0xff, 8);
  assert.is(l1.eax, 0x000606a6, 'Intel family/model untouched');
  for (const fn of [0xb, 0x1f]) {
    assert.equal(
      [leaf(es, fn, 0).eax, leaf(es, fn, 0).ebx, leaf(es, fn, 0).ecx, leaf(es, fn, 0).edx],
      [1, 2, 0x100, 6],
    );
    assert.equal(
      [leaf(es, fn, 1).eax, leaf(es, fn, 1).ebx, leaf(es, fn, 1).ecx, leaf(es, fn, 1).edx],
      [3, 8, 0x201, 6],
    );
    assert.equal(
      [leaf(es, fn, 2).eax, leaf(es, fn, 2).ebx, leaf(es, fn, 2).ecx & 0xff00, leaf(es, fn, 2).edx],
      [0, 0, 0, 6],
    );
  }
  const sharing = [0, 1, 2, 3].map((i) => ((leaf(es, 4, i).eax >>> 14) & 0xfff) + 1);
  assert.equal(sharing, [2, 2, 2, 4]);
  const coresPerPkg = [0, 1, 2, 3].map((i) => (leaf(es, 4, i).eax >>> 26) + 1);
  assert.equal(coresPerPkg, [4, 4, 4, 4], 'EAX[31:26] + 1 = core IDs per package (2 LLCs x 2 cores)');
  assert.equal(
    [0, 1, 2, 3].map((i) => [leaf(es, 4, i).eax & 0x1f, (leaf(es, 4, i).eax >> 5) & 7]),
    [
      [1, 1],
      [2, 1],
      [3, 2],
      [3, 3],
    ],
  );
  assert.is(leaf(es, 4, 3).ecx, 0xbfff, 'L3 geometry kept');
  assert.is(leaf(es, 4, 4).eax, 0);
  assert.not.ok(
    es.some((x) => x.function === 0x8000001e || x.function === 0x8000001d),
    'no AMD leaves on Intel',
  );
});

test('numa2-4llc on both vendors: node in the package bits', () => {
  const t = resolveTopology('numa2-4llc').topology; // 2n4l4c1t: smt 0, core 2, llc 1 bits -> package shift 3
  for (const [vendor, sup] of [
    ['amd', amdSupported()],
    ['intel', intelSupported()],
  ] as const) {
    const es = cpuidForVcpu(sup, t, 13); // node 1, LLC 3 (2nd in node 1), core 1
    assert.is(t.cpus[13].apicId, 13);
    const ext = vendor === 'intel' ? 0x1f : 0xb;
    assert.is(leaf(es, ext, 0).eax, 0, `${vendor}: no SMT bits`);
    assert.is(leaf(es, ext, 0).ebx, 1, `${vendor}: 1 thread per core`);
    assert.is(leaf(es, ext, 1).eax, 3, `${vendor}: package shift`);
    assert.is(leaf(es, ext, 1).ebx, 8, `${vendor}: 8 CPUs per package`);
    assert.is(leaf(es, 1).edx & (1 << 28), 1 << 28);
    if (vendor === 'amd') {
      assert.is(leaf(es, 0x8000001e).ecx & 0xff, 1, 'node id 1');
      assert.is(leaf(es, 0x8000001e).ebx & 0xff, 5, 'core id within package: LLC 1 << 2 | core 1');
      assert.is((leaf(es, 0x8000001e).ebx >> 8) & 0xff, 0);
      assert.is(((leaf(es, 0x8000001d, 3).eax >>> 14) & 0xfff) + 1, 4);
      assert.is(((leaf(es, 0x8000001d, 0).eax >>> 14) & 0xfff) + 1, 1);
      assert.is(leaf(es, 0x80000008).ecx & 0xff, 7);
    } else {
      assert.is(((leaf(es, 4, 3).eax >>> 14) & 0xfff) + 1, 4);
      assert.is(((leaf(es, 4, 2).eax >>> 14) & 0xfff) + 1, 1);
      assert.is((leaf(es, 4, 0).eax >>> 26) + 1, 8);
    }
  }
});

test('single CPU per package: HTT clear', () => {
  const t = new Topology('2n2l1c1t');
  const es = cpuidForVcpu(intelSupported(), t, 1);
  assert.is(leaf(es, 1).edx & (1 << 28), 0);
  assert.is(leaf(es, 0xb, 1).edx, 1);
});

test('AMD family/model fix: only family 17h models 0-0x1F move to 0x20', () => {
  assert.equal(familyModel(amdFamilyModelFix(0x00800f12)), { family: 0x17, model: 0x20 });
  assert.is(amdFamilyModelFix(0x00800f12) & 0xf, 2, 'stepping kept');
  assert.is(amdFamilyModelFix(0x00830f10), 0x00830f10, 'Zen2 model 0x31 untouched');
  assert.is(amdFamilyModelFix(0x00a00f11), 0x00a00f11, 'family 19h untouched');
});

test('supported entries are not modified; leaf 0 raised to 0xB when lower; cpuidHook maps APIC IDs', () => {
  const sup = amdSupported()
    .map((e) => (e.function === 0 ? { ...e, eax: 7 } : e))
    .filter((e) => e.function !== 0xb);
  const before = JSON.stringify(sup);
  const t = new Topology('1n3l3c1t');
  const es = cpuidForVcpu(sup, t, 4);
  assert.is(JSON.stringify(sup), before);
  assert.is(leaf(es, 0).eax, 0xb);
  assert.is(leaf(es, 0xb, 0).edx, 5);
  const hook = cpuidHook(t);
  assert.equal(hook(sup, 5), es);
  assert.throws(() => hook(sup, 3), /no APIC ID/);
  assert.throws(() => cpuidForVcpu(sup, t, 9), /outside the topology/);
});

test.run();
