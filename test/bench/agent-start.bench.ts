// `npm run bench:agent`: what Node in the guest costs a cell. On the same kernel and
// topology (tiny-1llc, the prebuilt sched_ext kernel's vmlinux), alternating, N runs each:
//  - busybox: the `shell` initramfs (~2 MB), /init runs `true`; time to its /init marker;
//  - agent:   a sweep cell's initramfs (busybox + Node + the agent, ~90 MB); time to the
//             /init marker (the kernel has unpacked the big initramfs) and to the agent's
//             hello (Node started and read its plan), from the cell's own phase timings.
// Prints medians and what the Node part is of a cell's boot. Run it where KVM works (here:
// `ktstr-wasm host run -- npm run bench:agent`).

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultKernelsDir } from '../../src/host/paths.js';
import { bootVm } from '../../src/vmm/index.js';
import { buildShellInitramfs, INIT_MARKER } from '../../src/guest/shell-initramfs.js';
import { Topology } from '../../src/vmm/topology/index.js';
import { runCell, CELL_CMDLINE } from '../../src/cell/run-cell.js';
import { AgentImageCache } from '../../src/guest/agent-initramfs.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TOPOLOGY = '1n1l4c1t';
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};

const dir = join(defaultKernelsDir() ?? '', '6.12.117-sched_ext');
const vmlinux = join(dir, 'vmlinux');
const scx = join(dir, 'schedulers', 'scx_simple');
if (!existsSync(vmlinux) || !existsSync(scx)) {
  console.log(`bench:agent: SKIPPED — ${vmlinux} or ${scx} is missing`);
  process.exit(0);
}
if (!existsSync('/dev/kvm')) {
  console.log(
    'bench:agent: SKIPPED — no /dev/kvm here (run it inside the test host: ktstr-wasm host run -- npm run bench:agent)',
  );
  process.exit(0);
}

const busyboxInitrd = await buildShellInitramfs({ exec: 'true' });
const agentBytes = statSync(await new AgentImageCache().base(scx)).size;
const busybox: number[] = [];
const agentInit: number[] = [];
const agentHello: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const b = await bootVm({
    kernel: vmlinux,
    initrd: busyboxInitrd,
    cmdline: CELL_CMDLINE,
    topology: new Topology(TOPOLOGY),
    memoryMiB: 576,
    markers: [INIT_MARKER],
    timeoutMs: 180_000,
  });
  if (b.timings.markers[INIT_MARKER] !== undefined) busybox.push(b.timings.markers[INIT_MARKER]);
  const c = await runCell({
    id: 'bench/agent',
    scheduler: { name: 'scx_simple', binary: scx, args: [] },
    kernel: { label: '6.12.117-sched_ext', image: vmlinux, vmlinux },
    topologyName: TOPOLOGY,
    topology: TOPOLOGY,
    memoryMiB: 256,
    setupProblem: null,
    raw: false,
  });
  if (c.phases.boot !== undefined && c.phases.agentReady !== undefined) {
    agentHello.push(c.phases.boot);
    agentInit.push(c.phases.boot - c.phases.agentReady);
  }
  console.log(
    `run ${i + 1}: busybox /init ${b.timings.markers[INIT_MARKER]?.toFixed(0) ?? '?'} ms; agent /init ${agentInit.at(-1)?.toFixed(0) ?? '?'} ms, hello ${agentHello.at(-1)?.toFixed(0) ?? '?'} ms (${c.passed ? 'cell passed' : `cell failed: ${c.failure?.message}`})`,
  );
}
const mb = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
console.log(`\ninitramfs: busybox ${mb(busyboxInitrd.length)}, agent ${mb(agentBytes)} (+ the plan)`);
console.log(`medians of ${RUNS} (ms from bootVm() to the mark):`);
console.log(`  busybox /init           ${median(busybox).toFixed(0)}`);
console.log(
  `  agent /init             ${median(agentInit).toFixed(0)}   (the big initramfs: +${(median(agentInit) - median(busybox)).toFixed(0)} ms)`,
);
console.log(
  `  agent hello (Node up)   ${median(agentHello).toFixed(0)}   (Node start and the agent: +${(median(agentHello) - median(agentInit)).toFixed(0)} ms)`,
);
console.log(
  `  Node's share of the boot to agent-ready: ${(((median(agentHello) - median(busybox)) / median(agentHello)) * 100).toFixed(0)}%`,
);
