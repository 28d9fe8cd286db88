// What one cell produces: the plain-data result of one VM run (verify, attach, dispatch
// probe, stop), as the sweep's reporters, its JSON file and `sweep merge` read it. Nothing
// here runs anything; every field is JSON-safe (no bigint, no undefined inside arrays).

import type { ProgramReport, ProbeWorkerReport, TestFacts } from '../guest/plan.js';
import type { WatchSummary } from '../test-api/capture.js';
import type { MonitorTimeline } from './monitor-session.js';
import type { ReproReport } from './repro.js';

/** Reported by the guest agent; defined with the rest of its messages (src/guest/plan.ts). */
export type { ProgramReport, ProbeWorkerReport };

/** Why a cell failed, by kind (the sweep's reporters group and print these). */
export type FailureKind =
  | 'verify' // the verifier rejected a program: its message
  | 'attach' // the scheduler died or never reached `enabled` within its window
  | 'dispatch' // attached, but no worker made forward progress (the watchdog's message when it fired)
  | 'crash' // scx_bpf_error / the scheduler's exit kind and text after attach
  | 'guest' // the guest kernel panicked, triple-faulted, hung or ended early: console tail
  | 'setup' // kernel or binary missing, kernel without sched_ext, bad plan
  | 'topology'; // the guest kernel's sched domains do not match the declared topology (a VMM bug)

export const FAILURE_KINDS: readonly FailureKind[] = [
  'verify',
  'attach',
  'dispatch',
  'crash',
  'guest',
  'setup',
  'topology',
];

export interface CellFailure {
  kind: FailureKind;
  /** One line: what went wrong (the verifier's message, the exit text, the panic line). */
  message: string;
}

/** The verifier's summary line of a rejected load (from the forwarded log). */
export interface VerifierSummary {
  processedInsns: number;
  insnLimit: number | null;
  totalStates: number | null;
  peakStates: number | null;
  maxStatesPerInsn: number | null;
  markRead: number | null;
}

/** Where a cell's time went, ms (absent: the cell did not reach that phase). */
export interface CellPhases {
  /** Host: initramfs, VM and vCPU threads, kernel boot, until the agent said hello. */
  boot?: number;
  /** Within boot: the cell's images and snapshot looked up or built, before the VM. */
  prepare?: number;
  /** Within boot: guest RAM, the kernel and initramfs loaded into it (a restore: the snapshot's RAM mapped). */
  vmSetup?: number;
  /** Within boot: the VM and its vCPUs created, their threads started. */
  vmCreate?: number;
  /** Within boot: from the vCPUs' start to /init (the kernel's boot and the initramfs unpacked; a cold boot only). */
  kernel?: number;
  /** Agent start to ready (Node start in the guest, plan read). */
  agentReady?: number;
  /** Host: from the cell's start until its agent waited for the cell (booted, or restored from the snapshot). */
  ready?: number;
  /** Saving the machine's snapshot at ready (a cell that saved one). */
  save?: number;
  /** Saving the machine's snapshot with the scheduler attached (a test cell that saved one). */
  saveAttached?: number;
  /** The agent taking its cell, or a test cell's test (files unpacked, RNG seeded, wall clock set), until its next phase began. */
  handoff?: number;
  /** Scheduler start until its programs were loaded (or rejected). */
  verify?: number;
  /** Until /sys/kernel/sched_ext/state read `enabled`. */
  attach?: number;
  /** The dispatch probe. */
  probe?: number;
  /** A test cell's body (cgroups, workers, runs). */
  body?: number;
  /** Stop: SIGINT, unregister, power-off, VM torn down. */
  teardown?: number;
}

export interface CellResult {
  /** `sweep/<scheduler>/<kernel label>/<preset>`. */
  id: string;
  scheduler: string;
  kernel: string;
  topology: string;
  passed: boolean;
  failure?: CellFailure;
  /** One line for a person: "attached (state enabled, ops ktstr)" or "NOT ATTACHED — ...". */
  schedulerStatus: string;
  /** The scheduler's struct_ops programs, read by the host from guest memory (empty when none loaded). */
  programs: ProgramReport[];
  /** The same programs as the guest kernel reports them (BPF_OBJ_GET_INFO_BY_FD in the agent). */
  guestPrograms: ProgramReport[];
  verifier?: VerifierSummary;
  /** The scheduler's output (the verifier log collapsed unless --raw). */
  schedulerLog: string;
  /** The scheduler's exit message (e.g. "EXIT: unregistered from user space"). */
  exitMessage?: string;
  workers: ProbeWorkerReport[];
  /** The last lines of the guest console when the guest failed (else empty). */
  consoleTail: string;
  phases: CellPhases;
  /** How the VM started: booted ('cold'), booted and saved as its machine's snapshot ('saved'), or restored from a snapshot ('restored'). */
  start?: 'cold' | 'saved' | 'restored';
  /** Where a restored VM started: the agent waiting for its cell ('ready'), or a test cell's scheduler attached, waiting for the test ('attached'). */
  restoredAt?: 'ready' | 'attached';
  /** What saving the (first) snapshot cost: the guest's pause, the RAM data written, the free pages left out (bytes). */
  snapshotSave?: { pauseMs: number; dataBytes: number; freeBytes: number };
  /** What went wrong with the snapshot (unusable and rebuilt, or not saved): one line for the user. */
  snapshotNote?: string;
  /** The guest's wall clock minus the host's as the cell's first phase began, ms (the agent sets the guest's clock from the host's, to the millisecond, when it takes the cell). */
  guestClockSkewMs?: number;
  /** Wall time of the cell, ms. */
  wallMs: number;
  /** Host resident set size after the cell's VM was torn down, bytes (null when unknown). */
  hostRssBytes: number | null;
  /** The auto-repro run of a crashed cell (src/cell/repro.ts). */
  repro?: ReproReport;
  /** The host monitor's timeline: runqueue samples, sched domains and their topology check, sched_ext exit info. */
  monitor?: MonitorTimeline;
  /** The hardware watches the test body set (ctx.watch), with their first hits. */
  watches?: WatchSummary[];
  /** A test cell's facts from the guest (checked), for the test's judge (src/test/judge.ts). */
  test?: TestFacts;
  /** The failure bundle's directory (src/cell/failure-bundle.ts), when one was written. */
  bundle?: string;
  /** Why the bundle the policy asked for could not be written. */
  bundleError?: string;
}
