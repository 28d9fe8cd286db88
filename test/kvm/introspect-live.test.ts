// Issue 5, live: our own VMM boots the sched_ext kernel (KASLR on) with scx_simple; while the
// guest runs, the host reads the vCPU's CR3/CR4, derives the kernel layout and enumerates the
// struct_ops programs straight out of the VM's shared guest RAM with the WASM core -- and must
// see the ids, names and verified_insns that the kernel reports inside the guest through
// BPF_OBJ_GET_INFO_BY_FD (the static helper in test/kvm/introspect-guest/). Also prints the
// live enumeration time (the benchmark's "enumeration on a live guest" figure).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpioWriter, MemorySink } from '../../src/guest/cpio.js';
import { sharedLibraryClosure } from '../../src/guest/elf-deps.js';
import { defaultKernelsDir, findOnPath } from '../../src/host/paths.js';
import { bytesSource } from '../../src/elf/file.js';
import { inspectKernel, type InspectReport } from '../../src/monitor/inspect.js';
import { loadKernelImage } from '../../src/monitor/kernel-image.js';
import { nodeIntrospector } from '../../src/monitor/wasm-file.js';
import { bootVm, DEFAULT_CMDLINE, type LiveVm } from '../../src/vmm/index.js';
import { appOutput, findBusybox, initScript } from '../../src/guest/shell-initramfs.js';
import { repoPath } from '../helpers/repo.js';
import { expectedObj } from './introspect-guest/guest-view.js';

const PREBUILT = '6.12.117-sched_ext';
const TIMEOUT_MS = 150_000;
const ENUM_RUNS = 200;

const GUEST_CMD = `
echo 1 > /proc/sys/kernel/bpf_stats_enabled
/sched/scx_simple >/tmp/scx.log 2>&1 &
i=0
while [ $i -lt 200 ]; do
  [ "$(cat /sys/kernel/sched_ext/state 2>/dev/null)" = enabled ] && break
  sleep 0.1; i=$((i + 1))
done
echo "state=$(cat /sys/kernel/sched_ext/state)"
i=0; while [ $i -lt 100 ]; do ls / >/dev/null; i=$((i + 1)); done
/sched/bpf-prog-info
echo LIVE_READY
sleep 60
`;

/** The VMM's shell initramfs (its /init runs /ktstr/cmd, output on COM2) plus scx_simple with
 * its library closure and the helper, both under /sched/. */
async function initramfs(exec: string, scx: string, helper: string): Promise<Buffer> {
  const busybox = findBusybox();
  const closure = sharedLibraryClosure([busybox, scx]);
  assert.equal(closure.missing, [], 'every library of scx_simple is found');
  const sink = new MemorySink();
  const w = new CpioWriter(sink);
  for (const d of ['/proc', '/sys', '/dev', '/tmp', '/root', '/ktstr', '/sched']) await w.directory(d);
  await w.hostPath(busybox, { as: '/bin/busybox' });
  for (const f of [...closure.interpreters, ...closure.libraries.map((l) => l.path)]) await w.hostPath(f);
  await w.hostPath(scx, { as: '/sched/scx_simple' });
  await w.hostPath(helper, { as: '/sched/bpf-prog-info' });
  await w.file('/init', initScript(), { mode: 0o755 });
  await w.file('/ktstr/cmd', exec + '\n', { mode: 0o644 });
  await w.finish();
  return sink.toBuffer();
}

function guestHelper(tmp: string): string {
  const gcc = findOnPath('gcc');
  if (gcc !== undefined) {
    const out = join(tmp, 'bpf-prog-info');
    execFileSync(gcc, ['-static', '-O2', '-o', out, repoPath('test/kvm/introspect-guest/bpf_prog_info.c')]);
    return out;
  }
  const prebuilt = repoPath('build/introspect-guest/bpf-prog-info');
  assert.ok(
    existsSync(prebuilt),
    'no gcc and no prebuilt helper (the host part of npm test builds build/introspect-guest/bpf-prog-info)',
  );
  return prebuilt;
}

test('live VM: the host reads the struct_ops programs the guest kernel reports, from guest RAM', async () => {
  assert.ok(existsSync('/dev/kvm'), '/dev/kvm is missing: run test/kvm/ inside the test host');
  const kernelsDir = defaultKernelsDir();
  const dir = kernelsDir === undefined ? undefined : join(kernelsDir, PREBUILT);
  assert.ok(dir !== undefined && existsSync(join(dir, 'bzImage')), `the prebuilt kernel ${PREBUILT} is missing`);
  const simple = join(dir, 'schedulers', 'scx_simple');
  assert.ok(existsSync(simple), 'scx_simple is missing');
  const image = loadKernelImage(bytesSource(readFileSync(join(dir, 'vmlinux'))));
  const tmp = mkdtempSync(join(tmpdir(), 'ktstr-live-'));
  try {
    const initrd = await initramfs(GUEST_CMD, simple, guestHelper(tmp));
    let com2 = '';
    let live: LiveVm | undefined;
    let reading: Promise<{ report: InspectReport; enumMicros: number }> | undefined;
    const read = async (vm: LiveVm): Promise<{ report: InspectReport; enumMicros: number }> => {
      try {
        const sregs = await vm.readSregs(0);
        const intro = nodeIntrospector(vm.memory.memory);
        for (const r of vm.memory.regions) intro.addRegion(r.guestPhysAddr, r.size, r.offset);
        const report = inspectKernel(intro, image, { cr3: sregs.cr3, cr4: sregs.cr4 });
        const idr = image.symbols.get('prog_idr')! + report.layout.kaslrOffset;
        const times: number[] = [];
        for (let i = 0; i < ENUM_RUNS; i++) {
          const t0 = performance.now();
          intro.structOpsPrograms(idr);
          times.push((performance.now() - t0) * 1000);
        }
        times.sort((a, b) => a - b);
        return { report, enumMicros: times[times.length >> 1] };
      } finally {
        vm.end('host read done');
      }
    };
    const r = await bootVm({
      kernel: join(dir, 'bzImage'),
      initrd,
      cmdline: `${DEFAULT_CMDLINE} quiet`,
      memoryMiB: 256,
      timeoutMs: TIMEOUT_MS,
      onStart: (vm) => {
        live = vm;
      },
      onApp: (c) => {
        com2 += Buffer.from(c).toString('latin1');
        if (reading === undefined && live !== undefined && com2.includes('LIVE_READY')) reading = read(live);
      },
    });
    const out = appOutput(com2).replace(/\r/g, '');
    const tail = `\n--- guest output ---\n${out.split('\n').slice(-30).join('\n')}\n--- console ---\n${r.consoleTail.split('\n').slice(-15).join('\n')}`;
    assert.ok(reading !== undefined, `the guest reached LIVE_READY (run ended: ${r.reason} ${r.detail})${tail}`);
    const { report, enumMicros } = await reading;
    assert.match(out, /^state=enabled$/m, `scx_simple attached${tail}`);
    const guest = [...out.matchAll(/^PROG id=(\d+) name=(\S*) verified_insns=(\d+) run_cnt=(\d+)/gm)].map((m) => [
      Number(m[1]),
      m[2],
      Number(m[3]),
    ]);
    assert.ok(guest.length >= 5, `the guest listed scx_simple's programs${tail}`);
    console.log(
      `  live: layout from ${report.layout.source} (kaslr 0x${report.layout.kaslrOffset.toString(16)}), ` +
        `${report.enumeration.programs.length} struct_ops programs, enumeration ${enumMicros.toFixed(1)} us (median of ${ENUM_RUNS})`,
    );
    assert.equal(
      report.enumeration.programs.map((p) => [p.id, p.name, p.verifiedInsns]),
      guest,
      'host view = guest kernel view',
    );
    assert.is(report.enumeration.activeObj, expectedObj(out), 'the active object name is the one the guest maps imply');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
