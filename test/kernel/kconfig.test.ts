// Issue 6: fragment parsing, merging onto a base and the dropped-option check; and the
// project's ktstr.kconfig itself: it parses, holds every group the issue lists, and each
// group has a comment saying why.

import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  configKernelVersion,
  droppedOptions,
  formatKconfig,
  KconfigError,
  mergeKconfig,
  parseKconfig,
  topologyConfigProblems,
} from '../../src/kernel/kconfig.js';
import { repoPath } from '../helpers/repo.js';

test('parseKconfig: set, unset, strings, comments; later lines win', () => {
  const v = parseKconfig('# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S="a b"\nCONFIG_N=12\n\nCONFIG_A=m\n');
  assert.equal(
    [...v],
    [
      ['CONFIG_A', 'm'],
      ['CONFIG_B', 'n'],
      ['CONFIG_S', '"a b"'],
      ['CONFIG_N', '12'],
    ],
  );
  assert.is(formatKconfig(v), 'CONFIG_A=m\n# CONFIG_B is not set\nCONFIG_S="a b"\nCONFIG_N=12\n');
});

test('parseKconfig: bad lines are errors naming the line', () => {
  assert.throws(
    () => parseKconfig('CONFIG_A=y\nFOO=bar\n', 'frag'),
    (e: unknown) => e instanceof KconfigError && /frag:2/.test((e as Error).message),
  );
  assert.throws(() => parseKconfig('CONFIG_A=\n'), /has no value/);
  assert.throws(() => parseKconfig('CONFIG_S="open\n'), /unterminated/);
});

test('mergeKconfig: the fragment overrides in place and appends new options', () => {
  const base = '# head\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n';
  const merged = mergeKconfig(base, parseKconfig('CONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n'));
  assert.is(merged, '# head\nCONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n');
});

test('droppedOptions: what Kconfig changed or left out; unset counts as absent', () => {
  const fragment = parseKconfig('CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n# CONFIG_D is not set\nCONFIG_E=y\n');
  const final = parseKconfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_E=m\n');
  assert.equal(droppedOptions(fragment, final), [
    { name: 'CONFIG_B', wanted: 'y', got: 'n' },
    { name: 'CONFIG_C', wanted: 'n', got: 'y' },
    { name: 'CONFIG_E', wanted: 'y', got: 'm' },
  ]);
  assert.equal(droppedOptions(fragment, parseKconfig(formatKconfig(fragment))), []);
});

test('configKernelVersion reads the .config header', () => {
  assert.is(
    configKernelVersion(
      '#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.12.117 Kernel Configuration\n#\n',
    ),
    '6.12.117',
  );
  assert.is(configKernelVersion('CONFIG_A=y\n'), undefined);
});

const REQUIRED_ON = [
  'SCHED_CLASS_EXT',
  'BPF_JIT',
  'BPF_SYSCALL',
  'DEBUG_INFO_BTF',
  'KPROBES',
  'FTRACE',
  'BPF_EVENTS',
  'SERIAL_8250_CONSOLE',
  'VIRTIO_MMIO',
  'VIRTIO_MMIO_CMDLINE_DEVICES',
  'VIRTIO_CONSOLE',
  'VIRTIO_BLK',
  'VIRTIO_NET',
  'BLK_DEV_INITRD',
  'DEVTMPFS',
  'DEVMEM',
  'SMP',
  'NUMA',
  'SCHED_MC',
  'CGROUPS',
  'CPUSETS',
  'CGROUP_SCHED',
  'KVM_GUEST',
  'PARAVIRT_TIME_ACCOUNTING',
  'SCHEDSTATS',
  'KALLSYMS_ALL',
  'IKCONFIG',
];
const REQUIRED_OFF = [
  'DEBUG_INFO_REDUCED',
  'DEBUG_INFO_BTF_MODULES',
  'STRICT_DEVMEM',
  'MODULES',
  'PROVE_LOCKING',
  'PSI',
  'SOUND',
  'DRM',
  'USB_SUPPORT',
  'WIRELESS',
  'VT',
  'IPV6',
  'BLK_DEV_LOOP',
];

test('ktstr.kconfig: every group of the issue, each under a comment', () => {
  const text = readFileSync(repoPath('ktstr.kconfig'), 'utf8');
  const v = parseKconfig(text, 'ktstr.kconfig');
  for (const o of REQUIRED_ON) assert.is(v.get(`CONFIG_${o}`), 'y', `CONFIG_${o}=y`);
  for (const o of REQUIRED_OFF) assert.is(v.get(`CONFIG_${o}`), 'n', `CONFIG_${o} off`);
  // groups are separated by blank lines; each starts with a "# --- why" comment
  const groups = text.split(/\n\s*\n/).filter((g) => /^(CONFIG_|# CONFIG_)/m.test(g));
  assert.ok(groups.length >= 10, `${groups.length} groups`);
  for (const g of groups) assert.match(g.trimStart(), /^# --- \S/, `group without a why-comment:\n${g}`);
});

test('ktstr.kconfig: DWARF is on (pahole needs it for BTF) and the prebuilt kernel config honours the sched_ext core', () => {
  const v = parseKconfig(readFileSync(repoPath('ktstr.kconfig'), 'utf8'));
  assert.is(v.get('CONFIG_DEBUG_INFO'), 'y');
});

test('topologyConfigProblems: NR_CPUS and x2APIC against the topology; the prebuilt kernel stops at 64 CPUs', () => {
  const ok = parseKconfig('CONFIG_NR_CPUS=256\nCONFIG_X86_X2APIC=y\n');
  assert.equal(topologyConfigProblems(ok, 252, true), []);
  const small = parseKconfig('CONFIG_NR_CPUS=64\n# CONFIG_X86_X2APIC is not set\n');
  assert.equal(topologyConfigProblems(small, 64, false), []);
  const p = topologyConfigProblems(small, 252, true);
  assert.is(p.length, 2);
  assert.match(p[0], /NR_CPUS=64 is below the 252 CPUs/);
  assert.match(p[1], /X86_X2APIC is off/);
  // the fragment itself asks for enough
  const frag = parseKconfig(readFileSync(repoPath('ktstr.kconfig'), 'utf8'));
  assert.equal(topologyConfigProblems(frag, 252, true), []);
});

test.run();
