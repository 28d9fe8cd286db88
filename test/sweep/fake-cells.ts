// Realistic CellResults for the sweep output tests (no VM): scx-ktstr on four presets of one
// kernel with ktstr_init's verified_insns growing with the LLC count (nr_llcs in .rodata), the
// fixture's verify rejection (ktstr_broken), and scx-ktstr on a second, stock kernel without
// sched_ext (a setup failure: the scheduler is mixed across kernels on that topology).

import type { CellResult, ProgramReport } from '../../src/cell/result.js';
import { SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, type SweepResult } from '../../src/sweep/result.js';

export const KERNEL = '6.12.117-sched_ext';
export const STOCK_KERNEL = '6.12.118+deb12-cloud-amd64';

/** Presets as presets/x86.json has them: CPUs and LLCs. */
export const PRESETS = [
  { name: 'tiny-1llc', cpus: 4, llcs: 1 },
  { name: 'tiny-2llc', cpus: 4, llcs: 2 },
  { name: 'odd-3llc', cpus: 9, llcs: 3 },
  { name: 'smt-2llc', cpus: 8, llcs: 2 },
] as const;

export type PresetName = (typeof PRESETS)[number]['name'];

const preset = (name: PresetName) => PRESETS.find((p) => p.name === name)!;

/** scx-ktstr's struct_ops programs; ktstr_init walks one more DSQ creation per LLC. */
function ktstrPrograms(llcs: number): ProgramReport[] {
  return [
    { id: 31, name: 'ktstr_select_cp', verifiedInsns: 39, runCount: 812, runTimeNs: 162_400 },
    { id: 32, name: 'ktstr_enqueue', verifiedInsns: 74, runCount: 1204, runTimeNs: 301_000 },
    { id: 33, name: 'ktstr_dispatch', verifiedInsns: 102, runCount: 2174, runTimeNs: 4_130_600 },
    { id: 34, name: 'ktstr_init', verifiedInsns: 2296 + 31 * (llcs - 1), runCount: 1, runTimeNs: 52_000 },
  ];
}

export function passedCell(topology: PresetName, over: Partial<CellResult> = {}): CellResult {
  const p = preset(topology);
  const programs = ktstrPrograms(p.llcs);
  return {
    id: `sweep/scx-ktstr/${KERNEL}/${topology}`,
    scheduler: 'scx-ktstr',
    kernel: KERNEL,
    topology,
    passed: true,
    schedulerStatus: `attached (state enabled, ops ktstr); dispatched on ${p.cpus} CPUs; unregistered on SIGINT (exit code 0)`,
    programs,
    guestPrograms: programs.map((g) => ({ ...g })),
    schedulerLog: 'ktstr: loaded, nr_cpus=' + p.cpus + '\n',
    exitMessage: 'EXIT: unregistered from user space',
    workers: Array.from({ length: p.cpus }, (_, cpu) => ({
      cpu,
      iterations: 5767 + cpu * 13,
      cpuTimeNs: 1.9e9,
      policy: 7,
    })),
    consoleTail: '',
    phases: { boot: 2100, agentReady: 640, verify: 180, attach: 95, probe: 2000, teardown: 310 },
    wallMs: 12_406,
    hostRssBytes: 412 * 2 ** 20,
    ...over,
  };
}

/** The four healthy cells of scx-ktstr on KERNEL, in matrix order. */
export const healthy: CellResult[] = PRESETS.map((p) => passedCell(p.name));

/** ktstr_broken (--verify-loop) rejected on tiny-1llc, as the seed's "A real rejection". */
export const rejected: CellResult = {
  id: `sweep/ktstr_broken/${KERNEL}/tiny-1llc`,
  scheduler: 'ktstr_broken',
  kernel: KERNEL,
  topology: 'tiny-1llc',
  passed: false,
  failure: { kind: 'verify', message: "R1 invalid mem access 'scalar'" },
  schedulerStatus: 'NOT ATTACHED — scheduler process exited during BPF load/startup',
  programs: [],
  guestPrograms: [],
  verifier: {
    processedInsns: 186,
    insnLimit: 1_000_000,
    totalStates: 7,
    peakStates: 7,
    maxStatesPerInsn: 0,
    markRead: 0,
  },
  schedulerLog: [
    "Global function ktstr_dispatch() doesn't return scalar. Only those are supported.",
    '--- 8x of the following 25 lines ---',
    '; u64 t = bpf_ktime_get_ns(); @ main.bpf.c:453',
    '--- end repeat ---',
    '192: (63) *(u32 *)(r1 +0) = r2',
    "R1 invalid mem access 'scalar'",
    'processed 186 insns (limit 1000000) max_states_per_insn 0 total_states 7 peak_states 7 mark_read 0',
    '',
  ].join('\n'),
  workers: [],
  consoleTail: '',
  phases: { boot: 2050, agentReady: 610, verify: 240, teardown: 150 },
  wallMs: 3_940,
  hostRssBytes: null,
};

/** scx-ktstr on tiny-1llc of the stock kernel: no sched_ext there. */
export const stockSetupFailure: CellResult = {
  id: `sweep/scx-ktstr/${STOCK_KERNEL}/tiny-1llc`,
  scheduler: 'scx-ktstr',
  kernel: STOCK_KERNEL,
  topology: 'tiny-1llc',
  passed: false,
  failure: { kind: 'setup', message: 'kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT is not set)' },
  schedulerStatus: 'not started',
  programs: [],
  guestPrograms: [],
  schedulerLog: '',
  workers: [],
  consoleTail: '',
  phases: {},
  wallMs: 2,
  hostRssBytes: null,
};

export function sweepResult(cells: CellResult[], over: Partial<SweepResult> = {}): SweepResult {
  return {
    schema: SWEEP_SCHEMA,
    version: SWEEP_SCHEMA_VERSION,
    tool: '0.1.0',
    startedAt: '2026-12-04T03:00:00.000Z',
    wallMs: 13_100,
    shard: null,
    matrix: cells.map((c) => c.id),
    cells,
    interrupted: false,
    ...over,
  };
}
