// The sweep matrix (src/sweep/matrix.ts) over the real registry and presets and fake kernel
// directories: scheduler, kernel and topology selection and their order, each scheduler's
// kernel and topology filters, the usage errors (exit 2) and the setup problems a cell keeps.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelCache } from '../../src/kernel/cache.js';
import { defaultKernelsDir } from '../../src/kernel/discover.js';
import { loadRegistry, parseRegistry } from '../../src/scheduler/registry.js';
import {
  buildMatrix,
  listMatrixText,
  MatrixError,
  type MatrixCell,
  type MatrixRequest,
} from '../../src/sweep/matrix.js';
import { loadPresets } from '../../src/vmm/topology/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'ktstr-matrix-'));
const shared = join(tmp, 'kernels');
const registry = loadRegistry();
const declared = registry.schedulers.map((s) => s.name);
const ALL_SCHEDULERS = ['scx_simple', 'scx_qmap', 'scx_central', 'scx_flatcg', 'scx_ktstr'];

interface FakeKernel {
  version: string;
  sched_ext?: boolean;
  nrCpus?: number;
  x2apic?: boolean;
  /** Binaries in schedulers/; null: no schedulers/ directory. */
  schedulers?: string[] | null;
}

function kconfig(k: FakeKernel): string {
  return [
    '#',
    `# Linux/x86 ${k.version} Kernel Configuration`,
    '#',
    k.sched_ext === false ? '# CONFIG_SCHED_CLASS_EXT is not set' : 'CONFIG_SCHED_CLASS_EXT=y',
    `CONFIG_NR_CPUS=${k.nrCpus ?? 64}`,
    k.x2apic ? 'CONFIG_X86_X2APIC=y' : '# CONFIG_X86_X2APIC is not set',
    '',
  ].join('\n');
}

function kernelDir(dir: string, k: FakeKernel): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bzImage'), 'bz');
  writeFileSync(join(dir, 'config'), kconfig(k));
  const bins = k.schedulers === undefined ? ALL_SCHEDULERS : k.schedulers;
  if (bins !== null) {
    mkdirSync(join(dir, 'schedulers'));
    for (const b of bins) writeFileSync(join(dir, 'schedulers', b), '#!/bin/sh\n', { mode: 0o755 });
  }
  return dir;
}

/** A bzImage whose setup header names `release` (kernel_version at 0x20e). */
function fakeBzImage(path: string, release: string): string {
  const b = Buffer.alloc(0x400);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x20f, 0x206);
  b.writeUInt16LE(0x100, 0x20e);
  b.write(`${release} (builder@host) #1 SMP\0`, 0x300, 'latin1');
  writeFileSync(path, b);
  return path;
}

const ext = kernelDir(join(shared, '6.12.117-ext'), { version: '6.12.117' });
const stock = kernelDir(join(shared, '6.12.50-stock'), {
  version: '6.12.50',
  sched_ext: false,
  schedulers: ['scx_simple'],
});
kernelDir(join(shared, '6.12.80-small'), { version: '6.12.80', nrCpus: 8, schedulers: null });
kernelDir(join(shared, '6.14.2-ext'), { version: '6.14.2', nrCpus: 512, x2apic: true });
kernelDir(join(shared, '6.15.0-ext'), { version: '6.15.0' });
kernelDir(join(shared, '6.17.0-ext'), { version: '6.17.0' });
writeFileSync(join(shared, 'README.md'), 'not a kernel');
// the same label as 6.12.117-ext, somewhere else: a different kernel
const twin = kernelDir(join(tmp, 'elsewhere', '6.12.117-ext'), { version: '6.12.117' });
// a bare image, as /boot holds one: version from its header, config-<release> beside it
mkdirSync(join(tmp, 'boot'));
const vmlinuz = fakeBzImage(join(tmp, 'boot', 'vmlinuz-6.12.99-custom'), '6.12.99-custom');
writeFileSync(join(tmp, 'boot', 'config-6.12.99-custom'), kconfig({ version: '6.12.99', sched_ext: false }));

const resolveOptions = { cache: new KernelCache(join(tmp, 'cache')), sharedDir: shared, env: {} as NodeJS.ProcessEnv };

function matrix(o: Partial<MatrixRequest>): MatrixCell[] {
  return buildMatrix({ registry, schedulers: [], kernels: [], presets: [], topologies: [], resolveOptions, ...o });
}

function usageError(o: Partial<MatrixRequest>, re: RegExp): string {
  try {
    matrix(o);
  } catch (e) {
    assert.instance(e, MatrixError);
    assert.match((e as Error).message, re);
    return (e as Error).message;
  }
  assert.unreachable(`no MatrixError (wanted ${re})`);
  return '';
}

const ids = (cells: MatrixCell[]): string[] => cells.map((c) => c.id);

test('no flags: every declared scheduler, one auto-discovered kernel, every preset it accepts', () => {
  const skipped: string[] = [];
  const cells = matrix({ onSkip: (id) => skipped.push(id) });
  // the fake kernel has NR_CPUS=64 and no x2APIC: the presets it cannot run are left out and reported
  const presets = loadPresets().filter((p) => p.cpus <= 64);
  assert.equal(
    [...new Set(cells.map((c) => c.scheduler.name))],
    registry.schedulers.filter((s) => !s.fixture).map((s) => s.name),
    'registry order, fixtures only when named',
  );
  assert.equal([...new Set(cells.map((c) => c.kernel.label))], ['6.12.117-ext'], 'the first prebuilt kernel');
  assert.is(cells[0].kernel.via, 'auto');
  const simple = cells.filter((c) => c.scheduler.name === 'scx_simple');
  assert.equal(
    simple.map((c) => c.topologyName),
    presets.map((p) => p.name),
    'presets file order',
  );
  assert.ok(skipped.includes('sweep/scx_simple/6.12.117-ext/max-cpu'), 'max-cpu left out, and said so');
  assert.not.ok(cells.some((x) => x.topologyName === 'max-cpu'));
  assert.not.ok(
    cells.some((c) => c.scheduler.fixture),
    'no fixture in a default sweep',
  );
  const broken = matrix({ schedulers: ['ktstr_broken'] });
  assert.equal(
    broken.map((c) => c.topologyName),
    presets.filter((p) => p.llcs === 1).map((p) => p.name),
    'maxLlcs 1',
  );
  const central = cells.filter((c) => c.scheduler.name === 'scx_central');
  assert.ok(central.every((c) => c.topology.numCpus >= 2));
  const c = simple.find((x) => x.topologyName === 'smt-2llc')!;
  assert.is(c.id, 'sweep/scx_simple/6.12.117-ext/smt-2llc');
  assert.is(c.topology.toString(), '1n2l2c2t');
  assert.is(c.memoryMiB, 512);
  assert.is(c.binary, join(ext, 'schedulers', 'scx_simple'));
  assert.is(c.setupProblem, null);
  assert.ok(c.cost > 8 && c.cost > simple.find((x) => x.topologyName === 'tiny-1llc')!.cost, 'cost grows with vCPUs');
});

test('--scheduler narrows (registry order kept); an unknown name lists the declared ones', () => {
  const cells = matrix({ schedulers: ['scx-ktstr', 'scx_simple', 'scx_simple'], presets: ['tiny-1llc'] });
  assert.equal(ids(cells), ['sweep/scx_simple/6.12.117-ext/tiny-1llc', 'sweep/scx-ktstr/6.12.117-ext/tiny-1llc']);
  const msg = usageError({ schedulers: ['scx_nope'] }, /unknown scheduler 'scx_nope'/);
  for (const n of declared) assert.ok(msg.includes(n), `${n} listed: ${msg}`);
});

test('an empty registry is a usage error', () => {
  const empty = parseRegistry({ schedulers: [] }, '/x/empty.json');
  assert.throws(
    () => buildMatrix({ registry: empty, schedulers: [], kernels: [], presets: [], topologies: [], resolveOptions }),
    (e: unknown) => e instanceof MatrixError && /empty\.json declares no schedulers/.test((e as Error).message),
  );
});

test("--kernel: resolved like shell's, in the given order; the same kernel twice is one kernel", () => {
  const cells = matrix({
    schedulers: ['scx_simple'],
    kernels: ['6.12.50-stock', '6.12.117-ext', ext, '6.12.117'],
    presets: ['tiny-1llc'],
  });
  assert.equal(ids(cells), ['sweep/scx_simple/6.12.50-stock/tiny-1llc', 'sweep/scx_simple/6.12.117-ext/tiny-1llc']);
  assert.ok(cells.every((c) => c.kernel.via === 'spec'));
  assert.is(cells[1].kernel.version, '6.12.117');
});

test('--kernel: unknown spec, missing path, and two kernels with one label are usage errors', () => {
  usageError({ kernels: ['nope'] }, /unknown kernel 'nope'.*known kernels: 6\.12\.117-ext/);
  usageError({ kernels: ['7.0'] }, /no kernel with version 7\.0/);
  usageError({ kernels: [join(tmp, 'missing', 'bzImage')] }, /no such file or directory/);
  usageError({ kernels: ['6.12.117-ext', twin] }, /different kernels with the same label '6\.12\.117-ext'/);
});

test('no --kernel: KTSTR_KERNEL before auto-discovery; nothing known is a usage error', () => {
  const cells = matrix({
    schedulers: ['scx_simple'],
    presets: ['tiny-1llc'],
    resolveOptions: { ...resolveOptions, env: { KTSTR_KERNEL: '6.12.50-stock' } },
  });
  assert.equal(ids(cells), ['sweep/scx_simple/6.12.50-stock/tiny-1llc']);
  assert.is(cells[0].kernel.via, 'KTSTR_KERNEL');
  usageError({ resolveOptions: { ...resolveOptions, sharedDir: join(tmp, 'none') } }, /no kernels are known/);
});

test("each scheduler's kernels filter the set; matching none is an error naming specs and labels", () => {
  const cells = matrix({ schedulers: ['scx-ktstr'], kernels: ['6.14.2-ext', '6.12.117-ext'], presets: ['tiny-1llc'] });
  assert.equal(ids(cells), ['sweep/scx-ktstr/6.12.117-ext/tiny-1llc'], '6.14.2 is outside 6.12..6.13');
  const msg = usageError(
    { schedulers: ['scx-ktstr'], kernels: ['6.14.2-ext'] },
    /scheduler scx-ktstr declares kernels \[6\.12\.\.6\.13\]/,
  );
  assert.match(msg, /6\.14\.2-ext \(version 6\.14\.2\)/);
  usageError({ kernels: ['6.14.2-ext'] }, /scheduler scx_simple declares kernels \[6\.12\]/);
});

test('the seed\'s example: kernels = ["6.14..6.16"] over 6.14.2, 6.15.0, 6.17.0', () => {
  const reg = parseRegistry(
    { schedulers: [{ name: 'ranged', binary: 'scx_simple', kernels: ['6.14..6.16'] }] },
    join(tmp, 'r.json'),
  );
  const cells = buildMatrix({
    registry: reg,
    schedulers: [],
    kernels: ['6.14.2', '6.15.0', '6.17.0'],
    presets: ['tiny-1llc', 'tiny-2llc'],
    topologies: [],
    resolveOptions,
  });
  assert.equal(ids(cells), [
    'sweep/ranged/6.14.2-ext/tiny-1llc',
    'sweep/ranged/6.14.2-ext/tiny-2llc',
    'sweep/ranged/6.15.0-ext/tiny-1llc',
    'sweep/ranged/6.15.0-ext/tiny-2llc',
  ]);
});

test("topologies: positional presets in file order, --topology specs extend, a preset's spec is the preset", () => {
  const cells = matrix({
    schedulers: ['scx_simple'],
    presets: ['smt-2llc', 'tiny-1llc'],
    topologies: ['1n3l1c1t', '1n2l2c1t', '1n3l1c1t'],
  });
  assert.equal(
    cells.map((c) => c.topologyName),
    ['tiny-1llc', 'tiny-2llc', 'smt-2llc', '1n3l1c1t'],
  );
  const spec = cells[3];
  assert.is(spec.id, 'sweep/scx_simple/6.12.117-ext/1n3l1c1t');
  assert.is(spec.memoryMiB, 256, 'max(cpus x 64, 256) for a spec');
  assert.is(spec.topology.numCpus, 3);
  assert.equal(
    matrix({ schedulers: ['scx_simple'], topologies: ['odd-3llc'] }).map((c) => c.topologyName),
    ['odd-3llc'],
    '--topology takes a preset name',
  );
});

test('topologies: unknown preset and bad spec are usage errors', () => {
  const msg = usageError({ presets: ['huge-99llc'] }, /unknown topology preset 'huge-99llc'/);
  for (const p of loadPresets()) assert.ok(msg.includes(p.name));
  usageError({ topologies: ['1n3l'] }, /invalid topology "1n3l"/);
  usageError({ topologies: ['2n3l1c1t'] }, /cannot split evenly/);
});

test('topology constraints: a scheduler left with nothing is skipped, unless named or alone', () => {
  const all = matrix({ topologies: ['1n1l1c1t'] });
  assert.not.ok(
    all.some((c) => c.scheduler.name === 'scx_central'),
    'scx_central needs 2 CPUs',
  );
  assert.ok(all.some((c) => c.scheduler.name === 'scx_simple'));
  const msg = usageError(
    { schedulers: ['ktstr_broken'], presets: ['odd-3llc'] },
    /^scheduler ktstr_broken accepts no topology of \[odd-3llc\]: 3 LLCs > max 1$/,
  );
  assert.ok(msg);
  usageError(
    { schedulers: ['scx_simple', 'scx_central'], topologies: ['1n1l1c1t'] },
    /scheduler scx_central accepts no topology of \[1n1l1c1t\]: 1 CPUs < min 2/,
  );
  usageError(
    { schedulers: ['ktstr_broken'], presets: ['odd-3llc', 'smt-2llc'] },
    /\[odd-3llc, smt-2llc\]: odd-3llc: 3 LLCs > max 1; smt-2llc: 2 LLCs > max 1/,
  );
  const reg = parseRegistry(
    {
      schedulers: [
        { name: 'one', binary: 'scx_simple', topology: { maxLlcs: 1 } },
        { name: 'smt', binary: 'scx_simple', topology: { requiresSmt: true } },
      ],
    },
    join(tmp, 'r.json'),
  );
  assert.throws(
    () =>
      buildMatrix({
        registry: reg,
        schedulers: [],
        kernels: [],
        presets: ['odd-3llc'],
        topologies: [],
        resolveOptions,
      }),
    (e: unknown) =>
      e instanceof MatrixError &&
      /no scheduler accepts any of the topologies: scheduler one accepts no topology of \[odd-3llc\]: 3 LLCs > max 1; scheduler smt accepts no topology of \[odd-3llc\]: no SMT \(requiresSmt\)/.test(
        (e as Error).message,
      ),
  );
});

test('setup problems stay in the matrix: no sched_ext, missing binary, no schedulers/', () => {
  const cells = matrix({
    schedulers: ['scx_simple', 'scx-ktstr'],
    kernels: ['6.12.50-stock', '6.12.80-small'],
    presets: ['tiny-1llc'],
  });
  const by = new Map(cells.map((c) => [c.id, c]));
  assert.is(cells.length, 4);
  const simpleStock = by.get('sweep/scx_simple/6.12.50-stock/tiny-1llc')!;
  assert.is(simpleStock.setupProblem, 'kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT is not set)');
  assert.is(simpleStock.binary, join(stock, 'schedulers', 'scx_simple'));
  assert.is(simpleStock.cost, 0);
  const ktstrStock = by.get('sweep/scx-ktstr/6.12.50-stock/tiny-1llc')!;
  assert.is(ktstrStock.binary, null);
  assert.match(
    ktstrStock.setupProblem!,
    /^kernel has no sched_ext \(CONFIG_SCHED_CLASS_EXT is not set\); scx-ktstr: .*scx_ktstr not found/,
  );
  const small = by.get('sweep/scx_simple/6.12.80-small/tiny-1llc')!;
  assert.is(small.binary, null);
  assert.match(small.setupProblem!, /no schedulers\/ directory to find scx_simple/);
});

test('setup problems: a kernel config that cannot run the topology (NR_CPUS, x2APIC)', () => {
  const cells = matrix({
    schedulers: ['scx_simple'],
    kernels: ['6.12.117-ext'],
    presets: ['tiny-1llc', 'odd-3llc', 'max-cpu'],
  });
  assert.is(cells[0].setupProblem, null);
  assert.is(cells[1].setupProblem, null, 'NR_CPUS=64 runs 9 CPUs');
  assert.match(
    cells[2].setupProblem!,
    /^kernel 6\.12\.117-ext cannot run topology 1n14l9c2t \(252 CPUs\): CONFIG_NR_CPUS=64 is below the 252 CPUs.*CONFIG_X86_X2APIC is off/,
  );
  const small = buildMatrix({
    registry: parseRegistry({ schedulers: [{ name: 'p', binary: '/bin/sh' }] }, join(tmp, 'r.json')),
    schedulers: [],
    kernels: ['6.12.80-small'],
    presets: ['tiny-1llc', 'odd-3llc'],
    topologies: [],
    resolveOptions,
  });
  assert.is(small[0].setupProblem, null, 'a path binary needs no schedulers/');
  assert.is(small[0].binary, '/bin/sh');
  assert.match(small[1].setupProblem!, /CONFIG_NR_CPUS=8 is below the 9 CPUs/);
  const missing = buildMatrix({
    registry: parseRegistry({ schedulers: [{ name: 'gone', binary: join(tmp, 'no', 'sched') }] }, join(tmp, 'r.json')),
    schedulers: [],
    kernels: [],
    presets: ['tiny-1llc'],
    topologies: [],
    resolveOptions,
  });
  assert.is(missing[0].binary, null);
  assert.match(missing[0].setupProblem!, /gone: .*no\/sched not found/);
});

test('a bare image path: version from its setup header, config-<release> beside it', () => {
  const cells = matrix({ schedulers: ['scx-ktstr'], kernels: [vmlinuz], presets: ['tiny-1llc'] });
  assert.is(cells.length, 1, 'accepted by 6.12..6.13 through the header version');
  assert.is(cells[0].kernel.version, '6.12.99');
  assert.is(cells[0].kernel.config, join(tmp, 'boot', 'config-6.12.99-custom'));
  assert.match(cells[0].setupProblem!, /^kernel has no sched_ext/);
  // an image without a header has no version: a versioned scheduler rejects it, loudly
  const plain = join(tmp, 'boot', 'plain.img');
  writeFileSync(plain, 'not a bzImage');
  usageError({ schedulers: ['scx_simple'], kernels: [plain] }, /declares kernels \[6\.12\].*\(version unknown\)/);
});

test('listMatrixText: one line per cell with vCPUs, memory and the setup problem', () => {
  const cells = matrix({
    schedulers: ['scx_simple'],
    kernels: ['6.12.117-ext', '6.12.50-stock'],
    presets: ['tiny-1llc', 'medium-4llc'],
  });
  const lines = listMatrixText(cells).split('\n');
  assert.is(lines.pop(), '', 'ends with a newline');
  assert.is(lines.length, 4);
  assert.match(lines[0], /^sweep\/scx_simple\/6\.12\.117-ext\/tiny-1llc +4 vCPUs +256 MiB$/);
  assert.match(lines[1], /^sweep\/scx_simple\/6\.12\.117-ext\/medium-4llc +32 vCPUs +2048 MiB$/);
  assert.match(lines[2], /6\.12\.50-stock\/tiny-1llc +4 vCPUs +256 MiB +setup: kernel has no sched_ext/);
  assert.is(new Set(lines.map((l) => l.indexOf('vCPU'))).size, 1, 'columns line up');
});

test('the real prebuilt kernel, auto-discovered', () => {
  const dir = defaultKernelsDir({});
  if (dir === undefined) return; // no prebuilt kernels on this machine
  const cells = buildMatrix({
    registry,
    schedulers: ['scx_simple'],
    kernels: [],
    presets: ['tiny-1llc'],
    topologies: [],
    resolveOptions: { cache: new KernelCache(join(tmp, 'cache')), env: {} },
  });
  assert.is(cells.length, 1);
  const c = cells[0];
  assert.is(c.id, `sweep/scx_simple/${c.kernel.label}/tiny-1llc`);
  assert.ok(c.kernel.version?.startsWith('6.12.'), c.kernel.version);
  assert.is(c.binary, join(dir, c.kernel.label, 'schedulers', 'scx_simple'));
  assert.is(c.setupProblem, null);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
