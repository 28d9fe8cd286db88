// Issue 4, acceptance 2: for each declared topology the guest's sysfs shows exactly what the
// topology implies — /sys/devices/system/cpu/online, every CPU's thread_siblings_list and
// cache/index3/shared_cpu_list, and every NUMA node's cpulist (expectedSysfs). Our own VMM
// boots the shared sched_ext kernel with CPUID, APIC IDs and ACPI tables from the topology;
// the guest cats the files and the host compares them with the expectation. Runs where
// /dev/kvm is real (inside the emulated test host here).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findTestKernel } from '../helpers/test-kernel.js';
import { bootVm, DEFAULT_CMDLINE } from '../../src/vmm/index.js';
import { appOutput, buildShellInitramfs, INIT_MARKER } from '../../src/guest/shell-initramfs.js';
import { expectedSysfs, resolveTopology } from '../../src/vmm/topology/index.js';

const kernel = findTestKernel();
const PRESETS = (process.env.KTSTR_TOPOLOGY_PRESETS ?? 'tiny-1llc,tiny-2llc,odd-3llc,smt-2llc,numa2-4llc').split(',');
const SEP = '=== ';

/** Parses the guest's "=== path\ncontents" blocks. */
function parseDump(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const block of text.split(SEP).slice(1)) {
    const nl = block.indexOf('\n');
    out[block.slice(0, nl)] = block.slice(nl + 1).trim();
  }
  return out;
}

for (const name of PRESETS) {
  test(`${name}: guest sysfs topology equals the declared one`, async () => {
    if (!kernel) {
      console.log('  SKIPPED: no kernel (set KTSTR_KERNEL)');
      return;
    }
    const { topology } = resolveTopology(name);
    const expected = expectedSysfs(topology);
    const script = Object.keys(expected)
      .map((p) => `echo '${SEP}${p}'; cat ${p}`)
      .join('; ');
    const initrd = await buildShellInitramfs({ exec: `${script}; exit 0` });
    const r = await bootVm({
      kernel,
      initrd,
      topology,
      memoryMiB: 512,
      timeoutMs: 240_000,
      cmdline: `${DEFAULT_CMDLINE} quiet`,
      markers: [INIT_MARKER],
    });
    console.log(
      `  ${name} (${topology}, ${topology.numCpus} CPUs): ${r.reason} ${r.exitCode ?? ''}, /init at ${r.timings.markers[INIT_MARKER]?.toFixed(0) ?? '-'} ms, total ${r.timings.totalMs.toFixed(0)} ms`,
    );
    assert.is(r.reason, 'exit', `${r.detail}\n${r.consoleTail.slice(-3000)}`);
    assert.is(r.exitCode, 0);
    const seen = parseDump(appOutput(r.app));
    for (const [path, want] of Object.entries(expected)) {
      assert.is(seen[path], want, `${name}: ${path}`);
    }
  });
}

test.run();
