// Topology spec parsing, the presets, the APIC ID layout and the sysfs view the guest must show.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Topology,
  TopologyError,
  cpuList,
  expectedSysfs,
  loadPresets,
  parseTopology,
  resolveTopology,
  MAX_CPUS,
} from '../../src/vmm/topology/index.js';
import { repoRoot } from '../helpers/repo.js';

function throwsWith(spec: string, re: RegExp): void {
  try {
    parseTopology(spec);
  } catch (e) {
    assert.instance(e, TopologyError);
    assert.match((e as Error).message, re, `${spec}: ${(e as Error).message}`);
    assert.match(
      (e as Error).message,
      spec.trim() === '' ? /empty/ : new RegExp(`"${spec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`),
    );
    return;
  }
  assert.unreachable(`${spec} parsed`);
}

test('parseTopology: good specs', () => {
  assert.equal(parseTopology('1n2l2c2t'), { numaNodes: 1, llcs: 2, coresPerLlc: 2, threadsPerCore: 2 });
  assert.equal(parseTopology(' 4n12l8c2t '), { numaNodes: 4, llcs: 12, coresPerLlc: 8, threadsPerCore: 2 });
  assert.equal(parseTopology('1N1L4C1T'), { numaNodes: 1, llcs: 1, coresPerLlc: 4, threadsPerCore: 1 });
});

test('parseTopology: each bad part is named', () => {
  throwsWith('1n3l2c', /missing the threads per core part/);
  throwsWith('2n3l1c1t', /3 LLCs cannot split evenly across 2 NUMA nodes/);
  throwsWith('1n0l2c1t', /LLCs part .* is 0/);
  throwsWith('0n1l2c1t', /NUMA nodes part .* is 0/);
  throwsWith('1n1l0c1t', /cores per LLC part .* is 0/);
  throwsWith('1n1l1c0t', /threads per core part .* is 0/);
  throwsWith('1n2c2t', /missing the LLCs part .* before "2c2t"/);
  throwsWith('1nl2c2t', /LLCs part .* has no number/);
  throwsWith('1n2l2c2', /threads per core part .* "2" lacks its "t" suffix/);
  throwsWith('1n2l2c2tx', /unexpected "x" after the threads part/);
  throwsWith('1n2x2c2t', /unexpected "2x" where the LLCs part/);
  throwsWith('', /empty/);
  throwsWith('1n16l16c1t', /256 CPUs, more than the 252/);
  throwsWith('1n1l1c253t', /threads per core part .* 253 is larger than the 252-CPU limit/);
  throwsWith('1n2l1c127t', /254 CPUs, more than the 252/);
  throwsWith('1n1l1c999t', /larger than the 252-CPU limit/);
});

test('all 24 presets parse and match presets/x86.json', () => {
  const raw = JSON.parse(readFileSync(join(repoRoot(), 'presets', 'x86.json'), 'utf8')) as {
    presets: Array<{ name: string; topology: string; cpus: number }>;
  };
  const presets = loadPresets();
  assert.is(presets.length, 24);
  assert.is(raw.presets.length, 24);
  for (const p of raw.presets) {
    const { topology, preset } = resolveTopology(p.name);
    assert.is(preset?.name, p.name);
    assert.is(topology.numCpus, p.cpus, p.name);
    assert.is(topology.toString(), p.topology);
    assert.ok(topology.numCpus <= MAX_CPUS);
    assert.equal(new Set(topology.cpus.map((c) => c.apicId)).size, p.cpus, `${p.name}: APIC IDs unique`);
    assert.is(topology.cpus[0].apicId, 0, 'the boot CPU has APIC ID 0');
  }
  assert.is(resolveTopology('1n2l2c2t').topology.numCpus, 8);
  assert.throws(() => resolveTopology('no-such-preset'), /unknown topology "no-such-preset".*tiny-1llc/);
});

test('APIC ID layout: bit fields thread | core | LLC | node', () => {
  const t = new Topology('1n3l3c1t');
  assert.equal(t.layout, {
    smtBits: 0,
    coreBits: 2,
    llcBits: 2,
    nodeBits: 0,
    coreShift: 0,
    llcShift: 2,
    packageShift: 4,
  });
  assert.equal(
    t.cpus.map((c) => c.apicId),
    [0, 1, 2, 4, 5, 6, 8, 9, 10],
  );
  const s = new Topology('2n4l4c1t');
  assert.equal(s.layout.packageShift, 3);
  assert.equal(
    s.cpus.map((c) => c.apicId),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  );
  assert.equal(
    s.cpus.map((c) => c.node),
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
  );
  const m = new Topology('4n12l8c2t');
  assert.equal(m.layout, {
    smtBits: 1,
    coreBits: 3,
    llcBits: 2,
    nodeBits: 2,
    coreShift: 1,
    llcShift: 4,
    packageShift: 6,
  });
  const last = m.cpus[m.numCpus - 1];
  assert.equal(last, {
    cpu: 191,
    node: 3,
    package: 3,
    llc: 11,
    llcInNode: 2,
    core: 7,
    thread: 1,
    apicId: (3 << 6) | (2 << 4) | (7 << 1) | 1,
  });
  assert.not.ok(m.needsX2apic);
  const max = new Topology('1n14l9c2t');
  assert.is(max.maxApicId, (13 << 5) | (8 << 1) | 1);
  assert.ok(max.needsX2apic);
});

test('cpuList: Linux list format', () => {
  assert.is(cpuList([0, 1, 2, 3, 8, 9, 10, 11]), '0-3,8-11');
  assert.is(cpuList([5]), '5');
  assert.is(cpuList([0, 1]), '0-1');
  assert.is(cpuList([0, 2, 4]), '0,2,4');
  assert.is(cpuList([3, 1, 2]), '1-3');
});

const ONLINE = '/sys/devices/system/cpu/online';
const sib = (n: number): string => `/sys/devices/system/cpu/cpu${n}/topology/thread_siblings_list`;
const l3 = (n: number): string => `/sys/devices/system/cpu/cpu${n}/cache/index3/shared_cpu_list`;
const node = (n: number): string => `/sys/devices/system/node/node${n}/cpulist`;

function byHand(
  cpus: number,
  threads: string[],
  llcs: string[],
  nodes: string[],
  online: string,
): Record<string, string> {
  const out: Record<string, string> = { [ONLINE]: online };
  for (let i = 0; i < cpus; i++) {
    out[sib(i)] = threads[i];
    out[l3(i)] = llcs[i];
  }
  nodes.forEach((n, k) => {
    out[node(k)] = n;
  });
  return out;
}

test('expectedSysfs: tiny-1llc (1n1l4c1t)', () => {
  assert.equal(
    expectedSysfs(resolveTopology('tiny-1llc').topology),
    byHand(4, ['0', '1', '2', '3'], ['0-3', '0-3', '0-3', '0-3'], ['0-3'], '0-3'),
  );
});

test('expectedSysfs: tiny-2llc (1n2l2c1t)', () => {
  assert.equal(
    expectedSysfs(resolveTopology('tiny-2llc').topology),
    byHand(4, ['0', '1', '2', '3'], ['0-1', '0-1', '2-3', '2-3'], ['0-3'], '0-3'),
  );
});

test('expectedSysfs: odd-3llc (1n3l3c1t)', () => {
  assert.equal(
    expectedSysfs(resolveTopology('odd-3llc').topology),
    byHand(
      9,
      ['0', '1', '2', '3', '4', '5', '6', '7', '8'],
      ['0-2', '0-2', '0-2', '3-5', '3-5', '3-5', '6-8', '6-8', '6-8'],
      ['0-8'],
      '0-8',
    ),
  );
});

test('expectedSysfs: smt-2llc (1n2l2c2t)', () => {
  assert.equal(
    expectedSysfs(resolveTopology('smt-2llc').topology),
    byHand(
      8,
      ['0-1', '0-1', '2-3', '2-3', '4-5', '4-5', '6-7', '6-7'],
      ['0-3', '0-3', '0-3', '0-3', '4-7', '4-7', '4-7', '4-7'],
      ['0-7'],
      '0-7',
    ),
  );
});

test('expectedSysfs: numa2-4llc (2n4l4c1t)', () => {
  const llc = [
    '0-3',
    '0-3',
    '0-3',
    '0-3',
    '4-7',
    '4-7',
    '4-7',
    '4-7',
    '8-11',
    '8-11',
    '8-11',
    '8-11',
    '12-15',
    '12-15',
    '12-15',
    '12-15',
  ];
  assert.equal(
    expectedSysfs(resolveTopology('numa2-4llc').topology),
    byHand(
      16,
      Array.from({ length: 16 }, (_, i) => String(i)),
      llc,
      ['0-7', '8-15'],
      '0-15',
    ),
  );
});

test('expectedSysfs extended: package = node', () => {
  const e = expectedSysfs(new Topology('2n4l2c2t'), { extended: true });
  assert.is(e['/sys/devices/system/cpu/cpu0/topology/core_siblings_list'], '0-7');
  assert.is(e['/sys/devices/system/cpu/cpu9/topology/core_siblings_list'], '8-15');
  assert.is(e['/sys/devices/system/cpu/cpu9/topology/physical_package_id'], '1');
  assert.is(e['/sys/devices/system/cpu/cpu9/topology/core_cpus_list'], '8-9');
});

test.run();
