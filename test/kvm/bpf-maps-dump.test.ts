// Issue 15, real data: QEMU with KVM boots the shared sched_ext kernel twice, once with
// scx_qmap and once with scx_ktstr; /init also creates hash, lru_hash, percpu_hash, array and
// a 5000-element hash map with bpftool. Debian's bpftool dumps every map in the guest
// (`map show -j`, `map dump -j id N`), then the host takes `dump-guest-memory` over QMP and
// reads the same maps out of the dump with openMaps() -- and through `ktstr-wasm inspect
// --maps --json` -- and the two views must agree (bpf-maps-guest/compare.ts says what may move
// between bpftool's read and the dump). Needs build/bpf-maps-guest/root, which the host test
// test/introspect/bpf-maps-stage.test.ts stages.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultKernelsDir, findOnPath } from '../../src/host/paths.js';
import { loadCoreFile } from '../../src/monitor/dump-file.js';
import { GuestKernel, openMaps, bytesSource, loadKernelImage } from '../../src/monitor/index.js';
import { SCX_KTSTR_BINARY, scxKtstrTestBuildDir } from '../../src/kernel/scx-ktstr.js';
import { repoPath } from '../helpers/repo.js';
import { compareWithBpftool } from './bpf-maps-guest/compare.js';
import { BIG_ENTRIES, CREATED, STAGE_DIR, bigValue, buildInitramfs, runGuest } from './bpf-maps-guest/guest-run.js';

const KERNEL_LABEL = '6.12.117-sched_ext';
const RUN_TIMEOUT_MS = 300_000;

const t0 = performance.now();
function progress(what: string): void {
  process.stderr.write(`  [${((performance.now() - t0) / 1000).toFixed(1)} s] ${what}\n`);
}

const kernelsDir = defaultKernelsDir();
const kernelDir = kernelsDir === undefined ? undefined : join(kernelsDir, KERNEL_LABEL);

function ktstrBinary(): string {
  const candidates = [
    join(kernelDir!, 'schedulers', SCX_KTSTR_BINARY),
    join(scxKtstrTestBuildDir(KERNEL_LABEL), SCX_KTSTR_BINARY),
  ];
  const found = candidates.find((p) => existsSync(p));
  assert.ok(
    found !== undefined,
    `scx_ktstr not built for ${KERNEL_LABEL}: looked at ${candidates.join(', ')} (test/scheduler/scx-ktstr-build.test.ts builds it)`,
  );
  return found;
}

for (const scheduler of ['qmap', 'ktstr'] as const) {
  test(`scx_${scheduler}: every BPF map read from a QEMU dump equals what bpftool printed in the guest`, async () => {
    assert.ok(existsSync('/dev/kvm'), '/dev/kvm is missing: run test/kvm/ inside the test host');
    assert.ok(
      kernelDir !== undefined && existsSync(join(kernelDir, 'bzImage')),
      `the prebuilt kernel ${KERNEL_LABEL} is missing`,
    );
    const qemu = findOnPath('qemu-system-x86_64');
    assert.ok(qemu !== undefined, 'qemu-system-x86_64 not found');
    const stage = repoPath(STAGE_DIR);
    assert.ok(
      existsSync(join(stage, 'usr/sbin/bpftool')),
      `${STAGE_DIR} has no bpftool: run dist/test/introspect/bpf-maps-stage.test.js on the host first`,
    );
    const tmp = mkdtempSync(join(tmpdir(), 'ktstr-maps-'));
    try {
      const initrd = join(tmp, 'initrd.cpio');
      await buildInitramfs(initrd, { stage, ktstr: ktstrBinary() }, scheduler);
      const core = join(tmp, 'guest.core');
      progress(`scx_${scheduler}: booting QEMU`);
      const run = await runGuest({
        qemu,
        accel: 'kvm',
        cpu: 'host',
        bzImage: join(kernelDir, 'bzImage'),
        initrd,
        cores: [core],
        socket: join(tmp, 'qmp.sock'),
        timeoutMs: RUN_TIMEOUT_MS,
        onProgress: progress,
      });
      const tail = `\n--- guest output ---\n${run.output
        .split('\n')
        .filter((l) => !l.startsWith('@@'))
        .slice(-30)
        .join('\n')}`;
      assert.match(run.output, /BATCH_EXIT=0/, `bpftool batch created the test maps${tail}`);
      assert.match(run.output, /PHASE0\.state=enabled/, `scx_${scheduler} attached${tail}`);
      const phase = run.phases[0];
      assert.ok(
        phase !== undefined && phase.show.length > 0 && existsSync(core),
        `bpftool listed maps and QEMU dumped${tail}`,
      );

      progress('reading the dump');
      const kernel = loadKernelImage(bytesSource(readFileSync(join(kernelDir, 'vmlinux'))));
      const image = loadCoreFile(core);
      const cpu0 = image.dump!.cpus[0];
      const guest = GuestKernel.open(image.intro, kernel, {
        vmcoreinfo: image.dump!.vmcoreinfo,
        cr3: cpu0.cr3,
        cr4: cpu0.cr4,
      });
      let t = performance.now();
      const maps = openMaps(guest);
      const enumerateMs = performance.now() - t;
      assert.equal(maps.problems, [], 'every map_idr entry is a readable map');
      const names = maps.maps().map((m) => m.name);
      for (const want of [...Object.keys(CREATED), 'big', '.rodata', '.bss', '.data']) {
        assert.ok(
          names.some((n) => n === want || n.endsWith(want)),
          `map ${want} found (have ${names.join(', ')})`,
        );
      }

      const c = compareWithBpftool(maps, phase.show, phase.dumps);
      console.log(`  ${c.notes.join('\n  ')}`);
      assert.equal(c.failures, [], 'the dump agrees with bpftool');
      const compared = c.notes.map((n) => n.split(' ')[0]);
      for (const want of [...Object.keys(CREATED)])
        assert.ok(compared.includes(want), `${want} was compared with bpftool`);
      assert.ok(
        compared.some((n) => n.endsWith('.rodata')),
        'the .rodata map was compared with bpftool',
      );

      // the big hash map (not sent over the console): its contents are known
      const big = maps.map('big');
      t = performance.now();
      const dump = big.entries();
      const bigMs = performance.now() - t;
      assert.is(dump.entries.length, BIG_ENTRIES);
      assert.equal(dump.problems, []);
      const seen = new Set<number>();
      for (const e of dump.entries) {
        const k = new DataView(e.key.buffer, e.key.byteOffset, 4).getUint32(0, true);
        assert.is(
          new DataView(e.value!.buffer, e.value!.byteOffset, 8).getBigUint64(0, true),
          bigValue(k),
          `big[${k}]`,
        );
        seen.add(k);
      }
      assert.is(seen.size, BIG_ENTRIES, 'every key once');
      console.log(
        `  map_idr: ${maps.maps().length} maps in ${enumerateMs.toFixed(1)} ms; big (hash, ${BIG_ENTRIES} of ${big.info.maxEntries}): ${bigMs.toFixed(1)} ms`,
      );

      // rendered fields through the map BTF
      const ro = maps.map('.rodata');
      const [knob, want] =
        scheduler === 'qmap'
          ? ['slice_ns', 20_000_000] // scx_qmap's default
          : ['nr_llcs', Number(/attached \((\d+) LLCs?\)/.exec(run.output)?.[1] ?? -1)]; // what scx_ktstr printed
      assert.is(ro.field(knob), want, `${ro.name}: ${knob}`);

      progress('the same through examples/introspect/maps-dump.mjs');
      const example = execFileSync(
        process.execPath,
        [repoPath('examples', 'introspect', 'maps-dump.mjs'), join(kernelDir, 'vmlinux'), core],
        { encoding: 'utf8', maxBuffer: 64 << 20 },
      );
      assert.ok(
        example.includes(`\n  .rodata.${knob} = ${want}\n`),
        `the example prints .rodata.${knob} = ${want}:\n${example.slice(0, 2000)}`,
      );

      progress('the same through ktstr-wasm inspect --maps --json');
      const json = execFileSync(
        process.execPath,
        [
          repoPath('bin', 'ktstr-wasm'),
          'inspect',
          '--maps',
          '--vmlinux',
          join(kernelDir, 'vmlinux'),
          '--core',
          core,
          '--json',
        ],
        { encoding: 'utf8', maxBuffer: 64 << 20 },
      );
      const parsed = JSON.parse(json) as {
        maps: { id: number; name: string; entries?: { key_hex: string; value_hex?: string }[] }[];
      };
      assert.equal(
        parsed.maps.map((m) => [m.id, m.name]),
        maps.maps().map((m) => [m.id, m.name]),
      );
      const small = parsed.maps.find((m) => m.name === 'h_small')!;
      assert.equal(small.entries!.map((e) => [e.key_hex, e.value_hex]).sort(), [
        ['01000000', '1111000000000000'],
        ['02000000', '2222000000000000'],
        ['07000000', '07000000efbeadde'],
      ]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test.run();
