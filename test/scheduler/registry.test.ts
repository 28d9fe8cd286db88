// Issue 6: the scheduler registry (ktstr.config.json) and which kernels and topologies a
// scheduler accepts: exact versions, ranges (.. and ..=), labels/paths, constraints.

import { basename } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  kernelAccepted,
  kernelSpecMatches,
  parseKernelSpec,
  KernelSpecError,
} from '../../src/scheduler/kernel-match.js';
import { loadRegistry, parseRegistry, RegistryError, topologyRejections } from '../../src/scheduler/registry.js';

const k = (version: string, label = version) => ({ label, version });

test('version specs: exact, and a series prefix', () => {
  const exact = parseKernelSpec('6.14.2');
  assert.ok(kernelSpecMatches(exact, k('6.14.2')));
  assert.not.ok(kernelSpecMatches(exact, k('6.14.20')));
  const series = parseKernelSpec('6.12');
  assert.ok(kernelSpecMatches(series, k('6.12.117', '6.12.117-sched_ext')));
  assert.not.ok(kernelSpecMatches(series, k('6.1.5')));
});

test('ranges: a..b excludes b, a..=b includes it; bounds are prefixes', () => {
  const half = parseKernelSpec('6.14..6.16');
  const incl = parseKernelSpec('6.14..=6.16');
  const cases: Array<[string, boolean, boolean]> = [
    ['6.13.9', false, false],
    ['6.14', true, true],
    ['6.14.2', true, true],
    ['6.15.0', true, true],
    ['6.16', false, true],
    ['6.16.3', false, true],
    ['6.17.0', false, false],
    ['7.0', false, false],
  ];
  for (const [v, inHalf, inIncl] of cases) {
    assert.is(kernelSpecMatches(half, k(v)), inHalf, `${v} in 6.14..6.16`);
    assert.is(kernelSpecMatches(incl, k(v)), inIncl, `${v} in 6.14..=6.16`);
  }
  // the seed's example: 6.14.2, 6.15.0, 6.17.0 -> the third is filtered out
  assert.equal(
    ['6.14.2', '6.15.0', '6.17.0'].filter((v) => kernelAccepted([half], k(v))),
    ['6.14.2', '6.15.0'],
  );
  assert.not.ok(kernelSpecMatches(half, { label: 'no-version' }));
  assert.throws(
    () => parseKernelSpec('6.16..6.14'),
    (e: unknown) => e instanceof KernelSpecError && /empty/.test((e as Error).message),
  );
  assert.throws(() => parseKernelSpec('6.14..latest'), /both ends/);
});

test('labels and paths match by sanitised label; an empty list accepts all', () => {
  const byLabel = parseKernelSpec('my kernel');
  assert.ok(kernelSpecMatches(byLabel, { label: 'my-kernel' }));
  const byPath = parseKernelSpec('/home/me/kernels/6.12.117-sched_ext');
  assert.ok(kernelSpecMatches(byPath, { label: '6.12.117-sched_ext', version: '6.12.117' }));
  assert.not.ok(kernelSpecMatches(byPath, { label: 'other' }));
  assert.ok(kernelAccepted([], { label: 'anything' }));
});

test('topology constraints', () => {
  const facts = { numaNodes: 1, llcs: 2, cpus: 4, threadsPerCore: 1 };
  assert.equal(topologyRejections({}, facts), []);
  assert.equal(topologyRejections({ minLlcs: 2, maxCpus: 4 }, facts), []);
  assert.equal(topologyRejections({ maxLlcs: 1, minCpus: 8, minNumaNodes: 2, requiresSmt: true }, facts), [
    '2 LLCs > max 1',
    '4 CPUs < min 8',
    '1 NUMA nodes < min 2',
    'no SMT (requiresSmt)',
  ]);
});

test('parseRegistry validates and names the offending field', () => {
  const ok = parseRegistry(
    {
      schedulers: [
        {
          name: 'a',
          binary: 'scx_a',
          args: ['--x'],
          kernels: ['6.12..=6.13', 'lbl'],
          topology: { minCpus: 2, requiresSmt: true },
        },
        { name: 'b', binary: './bin/b' },
      ],
    },
    '/cfg/ktstr.config.json',
  );
  assert.is(ok.schedulers.length, 2);
  assert.is(ok.schedulers[1].binary, '/cfg/bin/b');
  assert.equal(ok.schedulers[1].args, []);
  assert.equal(ok.schedulers[0].topology, { minCpus: 2, requiresSmt: true });
  const bad: Array<[unknown, RegExp]> = [
    [{}, /expected \{"schedulers"/],
    [{ schedulers: [{ binary: 'x' }] }, /schedulers\[0\]\.name/],
    [
      {
        schedulers: [
          { name: 'a', binary: 'x' },
          { name: 'a', binary: 'y' },
        ],
      },
      /declared twice/,
    ],
    [{ schedulers: [{ name: 'a', binary: 'x', kernels: ['6.16..6.14'] }] }, /schedulers\[0\]\.kernels: .*empty/],
    [{ schedulers: [{ name: 'a', binary: 'x', topology: { minLlcs: 0 } }] }, /topology\.minLlcs/],
    [
      { schedulers: [{ name: 'a', binary: 'x', topology: { minCpus: 4, maxCpus: 2 } }] },
      /minCpus 4 is above maxCpus 2/,
    ],
    [{ schedulers: [{ name: 'a', binary: 'x', topology: { llcs: 2 } }] }, /unknown key 'llcs'/],
    [{ schedulers: [{ name: 'a', binary: 'x', args: '--x' }] }, /args: must be an array/],
    [{ schedulers: [{ name: 'a', binary: 'x', extra: 1 }] }, /unknown key 'extra'/],
  ];
  for (const [doc, re] of bad)
    assert.throws(
      () => parseRegistry(doc, 'r.json'),
      (e: unknown) => e instanceof RegistryError && re.test((e as Error).message),
      JSON.stringify(doc),
    );
});

test('ktstr.config.json loads: the tree examples and scx-ktstr, all accepting 6.12.117', () => {
  const reg = loadRegistry();
  const names = reg.schedulers.map((s) => s.name);
  for (const n of ['scx_simple', 'scx_qmap', 'scx_central', 'scx_flatcg', 'scx-ktstr']) assert.ok(names.includes(n), n);
  for (const s of reg.schedulers) assert.ok(kernelAccepted(s.kernels, k('6.12.117', '6.12.117-sched_ext')), s.name);
});

test('the failing fixtures: scx_ktstr with one failure knob each, on one-LLC topologies only', () => {
  const reg = loadRegistry();
  const fixtures: Record<string, string[]> = {
    ktstr_broken: ['--verify-loop'],
    ktstr_stall: ['--stall'],
    ktstr_crash: ['--crash-after', '3'],
    ktstr_panic: ['--panic-after', '1'],
  };
  const oneLlc = { numaNodes: 1, llcs: 1, cpus: 4, threadsPerCore: 1 };
  const threeLlcs = { numaNodes: 1, llcs: 3, cpus: 9, threadsPerCore: 1 };
  for (const [name, args] of Object.entries(fixtures)) {
    const s = reg.schedulers.find((e) => e.name === name);
    assert.ok(s, `${name} is declared`);
    assert.is(basename(s!.binary), 'scx_ktstr', name);
    assert.equal(s!.args, args, name);
    assert.match(s!.description ?? '', /fails on purpose/, name);
    assert.equal(s!.topology, { maxLlcs: 1 }, name);
    assert.equal(topologyRejections(s!.topology, oneLlc), [], `${name} runs on tiny-1llc`);
    assert.equal(topologyRejections(s!.topology, threeLlcs), ['3 LLCs > max 1'], `${name} skips odd-3llc`);
  }
  // the working scheduler has no constraint: it runs on every preset
  assert.equal(topologyRejections(reg.schedulers.find((e) => e.name === 'scx-ktstr')!.topology, threeLlcs), []);
});

test.run();
