// What the host tells the guest agent (the plan, /ktstr/plan.json in the cell's initramfs) and
// what the agent reports back (the messages of docs/guest-protocol.md). Plain data on both
// sides; the host judges the facts (src/cell/verdict.ts), the agent only observes.

import type { BulkRecord } from './ring.js';
import type { CheckOverrides } from '../test-api/options.js';
import type { CpuPlaceData } from '../test-api/topology.js';
import type { RunRecord } from '../test-api/record.js';
import type { WatchMode } from '../test-api/capture.js';

/** One struct_ops BPF program of the scheduler, as read from guest memory (by the agent or by the host). */
export interface ProgramReport {
  id: number;
  name: string;
  verifiedInsns: number;
  /** Run count and total run time summed over CPUs (bpf_stats_enabled); null when not read. */
  runCount: number | null;
  runTimeNs: number | null;
}

/** One probe worker (one per online CPU, SCHED_EXT). */
export interface ProbeWorkerReport {
  /** The CPU it was pinned to. */
  cpu: number;
  /** Spin iterations counted after attach, within the probe window. */
  iterations: number;
  /** Its thread's CPU time over the probe window, ns. */
  cpuTimeNs: number;
  /** Its scheduling policy as the kernel reported it after the switch (7 = SCHED_EXT). */
  policy: number;
  /** Its thread id in the guest (the host monitor sees it as the running task of its CPU); absent from older agents. */
  tid?: number;
}

export const PLAN_VERSION = 1;
/** Where the plan sits in the guest. */
export const PLAN_PATH = '/ktstr/plan.json';

export interface AgentPlan {
  version: number;
  /** The frame nonce of this cell (src/guest/protocol.ts). */
  nonce: string;
  cell: string;
  /** The scheduler to run, at its guest path; null: no scheduler (the kernel's own EEVDF). */
  scheduler: { name: string; path: string; args: string[] } | null;
  /** How long the scheduler may take to reach `enabled` after it starts. */
  attachTimeoutMs: number;
  /** Length of the dispatch probe after attach. */
  probeMs: number;
  /** How long the scheduler may take to exit after SIGINT. */
  stopTimeoutMs: number;
  /** How long the agent waits for the host's `continue` after `probed`. */
  hostReadTimeoutMs: number;
  /** The shared bulk-data region (src/guest/ring.ts), as a guest physical range; null: none. */
  ring: { guestPhysAddr: number; size: number } | null;
  /** The host's mailbox (replies to the agent's requests, written by the host into guest RAM); null: none. */
  mailbox?: { guestPhysAddr: number; size: number } | null;
  /** A scheduler test to run instead of the dispatch probe (after attach; at once under EEVDF); null: a sweep cell. */
  test: TestPlan | null;
  /**
   * The plan of a cell's base image: the agent says `ready` and waits for the host's `cell`
   * message (its real plan, and its files in the mailbox) — the quiet point where the host
   * saves a snapshot, and where a VM restored from it starts.
   */
  awaitCell?: boolean;
  /**
   * A test cell's scheduler part: once the scheduler is enabled, the agent says `attached`
   * and waits for the host's `body` message (the test, its files) — a second quiet point,
   * where the host may save a snapshot of the machine with this scheduler attached.
   */
  awaitBody?: boolean;
}

/** The test a cell runs (`ktstr-wasm test`). */
export interface TestPlan {
  /** The test file's bundle at its guest path. */
  bundle: string;
  /** The test file as the user named it (for messages). */
  file: string;
  name: string;
  /** Registry name of the scheduler under test; null: EEVDF. */
  scheduler: string | null;
  durationMs: number;
  /** The VM's CPUs by place, as the host declared them. */
  places: CpuPlaceData[];
  /** Schedulers the body may switch to (replace/attach), by registry name: guest path and registry arguments. */
  schedulers: Record<string, { path: string; args: string[] }>;
  /** A binary run alongside every `ctx.run` (its files are in the cell's archive under PAYLOAD_DIR); null: none. */
  payload: { argv: string[]; cgroup: string | null } | null;
}

/** What the agent saw of a test (the host judges it, src/test/judge.ts). */
export interface TestFacts {
  runs: { record: RunRecord; checks: CheckOverrides | null }[];
  /** The body threw (not a skip): its message and stack (source-mapped to the test file). */
  error: { message: string; stack: string } | null;
  skipped: string | null;
  bodyMs: number;
  logs: string[];
  /** sched_ext state, and whether the scheduler process still ran, when the body ended. */
  stateAtEnd?: string;
  schedulerAlive?: boolean;
  /** The body detached or replaced the scheduler on purpose. */
  detachedOnPurpose?: boolean;
}

/** The scheduler's process as the agent saw it end (or not). */
export interface ProcessEnd {
  code: number | null;
  signal: string | null;
}

/** Everything the agent observed in one cell; the host decides pass or fail from it. */
export interface AgentFacts {
  /** /sys/kernel/sched_ext exists. */
  schedExt: boolean;
  /** The plan could not be carried out at all (binary missing, spawn failed, ...). */
  setupError: string | null;
  /** ms from the scheduler's start until its struct_ops programs were first seen loaded (null: never). */
  verifyMs: number | null;
  /** ms from the scheduler's start until state read `enabled`, or enable_seq showed it had been (null: never). */
  attachMs: number | null;
  /** /sys/kernel/sched_ext/state when the attach wait ended (not `enabled` with an attachMs: it attached and ended at once). */
  stateAtAttach: string;
  /** /sys/kernel/sched_ext/root/ops once attached. */
  ops: string;
  /** Set when the scheduler process ended before the probe (before or right after attaching). */
  endedBeforeAttach: ProcessEnd | null;
  probe: {
    workers: ProbeWorkerReport[];
    ms: number;
    /** state at the end of the probe window. */
    stateAfter: string;
    /** The scheduler process still ran at the end of the probe. */
    schedulerAlive: boolean;
  } | null;
  stop: {
    /** How the process ended: after SIGINT, or by itself earlier (the kernel ended it). */
    end: ProcessEnd | null;
    timedOut: boolean;
    stateAfter: string;
    ms: number;
  } | null;
  /** The scheduler's struct_ops programs as the guest kernel reports them (before stop). */
  guestPrograms: ProgramReport[];
  /** The scheduler's stdout and stderr, merged, bounded (head and tail kept). */
  output: string;
  /** Bytes of output dropped from the middle to stay bounded. */
  outputDropped: number;
  /** The test's facts, for a test cell (null otherwise or when it never ran). */
  test: TestFacts | null;
}

/** Agent -> host message types. */
export type AgentMessage =
  | { type: 'hello'; node: string; kernel: string; cpus: number; uptimeMs: number }
  /** A base image's agent is up and waits for its cell (`cell`): the snapshot point. */
  | { type: 'ready' }
  /** The scheduler of a plan with awaitBody is enabled; the agent waits for the test (`body`): the second snapshot point. */
  | { type: 'attached' }
  /** The agent asks for the host's wall clock (answered `time`) to set the guest's. */
  | { type: 'time-request' }
  /** `wallClockMs`: the guest's wall clock as the first phases start (the host compares it with its own). */
  | { type: 'phase'; phase: 'verify' | 'attach' | 'probe' | 'body' | 'stop'; atMs: number; wallClockMs?: number }
  /** The probe is done and the scheduler still runs: the host reads guest memory now, then sends `continue`. */
  | { type: 'probed' }
  /** The plan is done: its facts inline, or (`record`) as JSON in the shared region, which the host reads from guest RAM. */
  | { type: 'result'; facts: AgentFacts }
  | { type: 'result'; record: BulkRecord }
  | { type: 'agent-error'; message: string }
  /** A request to the host (a test body's capture or write); the host answers `reply` with the same id. */
  | { type: 'request'; id: number; request: HostRequest };

/** What a test body may ask of the host. */
export type HostRequest =
  | { kind: 'capture'; label: string }
  | { kind: 'write-var'; name: string; value: number | string }
  | { kind: 'watch'; target: string; onWrite: WatchMode }
  | { kind: 'watch-hits'; id: number }
  | { kind: 'unwatch'; id: number };

/** Host -> agent message types. */
/** `done`: the host has the result; the agent may power off (its tty output is not lost in flight). */
/** `reply`: the answer to request `id`: `length` bytes of JSON at the start of the mailbox (CRC-32 `crc`), or `error`. */
export type HostMessage =
  | { type: 'continue' }
  | { type: 'done' }
  | { type: 'reply'; id: number; length: number; crc: number; error: string | null }
  /** The host's wall clock, ms since the epoch, as it answers `time-request`. */
  | { type: 'time'; realtimeMs: number }
  | CellMessage;

/**
 * The host hands a waiting agent its cell through the mailbox (COM2's receive side holds only
 * 4 KiB): the plan as JSON at offset 0 (`plan`: its length and CRC-32; nonce, ring and mailbox
 * stay the base's), then the cell's files as a cpio archive at `archive.offset` (length 0:
 * none); with them the host's wall clock (ms since the epoch) for the guest's clock, and
 * random bytes (hex) for its RNG — sibling VMs restored from one snapshot would otherwise
 * share both.
 */
export type CellMessage = {
  /** `cell`: the plan the waiting base agent runs; `body`: the test an `attached` agent runs next (its plan's test part). */
  type: 'cell' | 'body';
  plan: { length: number; crc: number };
  archive: { offset: number; length: number; crc: number };
  realtimeMs: number;
  seed: string;
};
