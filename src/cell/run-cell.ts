// One cell, host side: build its initramfs (agent base + plan), boot the VM with the cell's
// topology, follow the agent's framed messages on COM2, read the scheduler's struct_ops
// programs out of guest RAM while it runs (the introspection WASM), let the agent finish, and
// turn it all into a CellResult. The VM is torn down on every path (bootVm's guarantee); an
// abort ends it at once. This is the one cell engine: sweep cells, and later tests, run here.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { sharedLibraryClosure } from '../guest/elf-deps.js';
import {
  AgentImageCache,
  AGENT_START_MARKER,
  buildCellArchive,
  GUEST_TEST_DIR,
  schedulerCellFiles,
  schedulerGuestPath,
  type CellFile,
} from '../guest/agent-initramfs.js';
import { encodeFrame, FrameReader } from '../guest/protocol.js';
import { bulkCrc32 } from '../guest/bulk-crc32.js';
import {
  defaultSnapshotDir,
  handCell,
  planCellStart,
  saveCellSnapshot,
  type AttachedPart,
  type CellStart,
  type SnapshotTarget,
  type StartPoint,
} from './cell-start.js';
import { PLAN_VERSION, type AgentFacts, type AgentMessage, type AgentPlan, type CellMessage } from '../guest/plan.js';
import { withFileSource } from '../elf/file-source.js';
import { inspectGuest, inspectKernel, type InspectReport } from '../monitor/inspect.js';
import type { GuestKernel } from '../monitor/guest-kernel.js';
import { loadKernelImage, type KernelImage } from '../monitor/kernel-image.js';
import { nodeIntrospector } from '../monitor/wasm-file.js';
import {
  bootVm,
  DEFAULT_CMDLINE,
  PANIC_TEXT,
  ramLayout,
  keepGuestMemory,
  releaseGuestMemory,
  type BootVmResult,
  type LiveVm,
} from '../vmm/index.js';
import { reservedTop } from '../vmm/boot/index.js';
import { prestartVcpuThreads } from '../vmm/vcpu-thread-pool.js';
import { Topology } from '../vmm/topology/index.js';
import { collapseBytes, createCollapser } from '../collapse/index.js';
import { judgeCell, judgeUntilAttach, exitMessage, loadLog, verifierSummary } from './verdict.js';
import { checkTestFacts } from './test-facts-check.js';
import { checkFacts, factsFromRegion } from './facts-check.js';
import type { CellPhases, CellResult, ProgramReport } from './result.js';
import { schedulerView, writeSchedulerVar } from './scheduler-view.js';
import { DEFAULT_MONITOR_INTERVAL_MS, MonitorSession, emptyTimeline } from './monitor-session.js';
import { HostRequestHandler } from './host-request-handler.js';
import { DebugSlots } from './debug-slots.js';
import { CellDump, type KeepDumps } from './cell-dump.js';

/** What a cell needs; plain data, so it crosses to a worker thread. */
export interface CellSpec {
  id: string;
  scheduler: { name: string; binary: string | null; args: string[] };
  kernel: { label: string; image: string; vmlinux: string | null };
  topologyName: string;
  /** Topology spec string (e.g. 1n2l2c1t). */
  topology: string;
  memoryMiB: number;
  /** Why the cell cannot run; it then fails with kind 'setup' without a VM. */
  setupProblem: string | null;
  /** Print verifier logs uncollapsed. */
  raw: boolean;
  timeouts?: Partial<CellTimeouts>;
  /** The host monitor's sampling interval, ms (default 100); 0 turns the monitor off. */
  monitorIntervalMs?: number;
  /** Read the struct_ops programs' run counts on every n-th sample (default 10; a repro run: 1). */
  monitorProgramEvery?: number;
  /** A scheduler test to run in this cell (`ktstr-wasm test`) instead of the dispatch probe; absent: a sweep cell. */
  test?: CellTestSpec;
  /** Where failure bundles go (src/cell/failure-bundle.ts); absent: none. `keepDumps`: for which cells (default failures). */
  bundleDir?: string;
  keepDumps?: KeepDumps;
  /** Where the snapshot of this cell's machine is kept and found (default defaultSnapshotDir()); null: none (--no-snapshot). */
  snapshotDir?: string | null;
}

/** The test part of a cell: the test file's bundle and which test of it to run. */
export interface CellTestSpec {
  /** The test file's bundle (CommonJS, built by src/test/bundle.ts) on the host. */
  bundle: string;
  /** The test file as the user named it. */
  file: string;
  name: string;
  durationMs: number;
  /** Schedulers the body may switch to, by registry name: host binary and registry arguments. */
  schedulers: Record<string, { binary: string; args: string[] }>;
  /** A host executable run alongside the workers, with its arguments and its files (name relative to its directory -> content). */
  payload?: {
    binary: string;
    args: string[];
    files: Record<string, string>;
    cgroup: string | null;
    libraryPath?: string;
  };
}

/** Where a payload's binary and files land in the guest (its working directory). */
export const GUEST_PAYLOAD_DIR = '/ktstr/payload';

/** Where a test cell's bundle sits in the guest. */
export const GUEST_TEST_BUNDLE = `${GUEST_TEST_DIR}/test.cjs`;

export interface CellTimeouts {
  /** The whole VM run. */
  cellMs: number;
  attachMs: number;
  probeMs: number;
  stopMs: number;
}

export const DEFAULT_TIMEOUTS: CellTimeouts = { cellMs: 300_000, attachMs: 30_000, probeMs: 2_000, stopMs: 15_000 };
/** Guest RAM on top of the preset's: the agent's unpacked initramfs (Node) and its heap. */
export const AGENT_MEMORY_MIB = 320;
/** A periodic tick even on idle CPUs: the sched_ext watchdog checks from the tick. */
export const CELL_CMDLINE = `${DEFAULT_CMDLINE} quiet nohz=off`;

export type CellPhase = 'boot' | 'verify' | 'attach' | 'probe' | 'body' | 'stop' | 'done';
const AGENT_PHASES: readonly string[] = ['verify', 'attach', 'probe', 'body', 'stop'];

export interface CellHooks {
  onPhase?: (phase: CellPhase) => void;
  signal?: AbortSignal;
  /** Console bytes (for --verbose). */
  onConsole?: (chunk: Uint8Array) => void;
}

const images = new Map<string, KernelImage>();
function kernelImage(vmlinux: string): KernelImage {
  let image = images.get(vmlinux);
  if (image === undefined) {
    image = withFileSource(vmlinux, (source) => loadKernelImage(source)); // the sections it needs, not 40 MB
    images.clear(); // one kernel at a time per thread: a vmlinux's tables are large
    images.set(vmlinux, image);
  }
  return image;
}

let imageCache: AgentImageCache | undefined;

/** The shared region: its size (the agent's records, and the host's mailbox that also carries a cell's files), and where bootVm puts it for a RAM size (the top of low RAM). */
export const RING_MIB = 32;
function ringRange(memoryMiB: number): { guestPhysAddr: number; size: number } {
  const r = reservedTop({ lowSize: ramLayout(memoryMiB * 2 ** 20)[0].size }, RING_MIB * 2 ** 20);
  return { guestPhysAddr: r.addr, size: r.size };
}

function baseResult(spec: CellSpec): CellResult {
  return {
    id: spec.id,
    scheduler: spec.scheduler.name,
    kernel: spec.kernel.label,
    topology: spec.topologyName,
    passed: false,
    schedulerStatus: '',
    programs: [],
    guestPrograms: [],
    schedulerLog: '',
    workers: [],
    consoleTail: '',
    phases: {},
    wallMs: 0,
    hostRssBytes: null,
  };
}

/** Reads the scheduler's programs from the live guest's RAM (through the monitor's located kernel when it runs). */
async function readPrograms(vm: LiveVm, vmlinux: string, located: GuestKernel | null): Promise<ProgramReport[]> {
  let report: InspectReport;
  if (located !== null) {
    report = inspectGuest(located);
  } else {
    const sregs = await vm.readSregs(0);
    const intro = nodeIntrospector(vm.memory.memory);
    for (const r of vm.memory.regions) intro.addRegion(r.guestPhysAddr, r.size, r.offset);
    report = inspectKernel(intro, kernelImage(vmlinux), { cr3: sregs.cr3, cr4: sregs.cr4 });
  }
  return report.enumeration.programs.map((p) => ({
    id: p.id,
    name: p.name,
    verifiedInsns: p.verifiedInsns,
    runCount: p.stats === null ? null : Number(p.stats.cnt),
    runTimeNs: p.stats === null ? null : Number(p.stats.nsecs),
  }));
}

function collapseLog(text: string, raw: boolean): string {
  if (raw || text === '') return text;
  return Buffer.from(collapseBytes(Buffer.from(text, 'utf8'), (sink) => createCollapser('wasm', sink))).toString(
    'utf8',
  );
}

/** Where each CPU of a topology spec sits (node, LLC, core, thread). */
function cellPlaces(topology: string): { cpu: number; node: number; llc: number; core: number; thread: number }[] {
  return new Topology(topology).cpus.map((c) => ({
    cpu: c.cpu,
    node: c.node,
    llc: c.llc,
    core: c.core,
    thread: c.thread,
  }));
}

/** The shared region split in two: the lower half carries the agent's records (`ring`), the upper half the host's mailbox. */
function sharedHalves(ring: AgentPlan['ring']): { ring: AgentPlan['ring']; mailbox: AgentPlan['ring'] } {
  return ring === null
    ? { ring: null, mailbox: null }
    : {
        ring: { guestPhysAddr: ring.guestPhysAddr, size: ring.size / 2 },
        mailbox: { guestPhysAddr: ring.guestPhysAddr + ring.size / 2, size: ring.size / 2 },
      };
}

/** The agent's plan for a cell (its scheduler at its guest path, the cell's timeouts); `ring`: the shared region, null without one. */
export function cellPlan(spec: CellSpec, nonce: string, ring: AgentPlan['ring']): AgentPlan {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...spec.timeouts };
  return {
    version: PLAN_VERSION,
    nonce,
    cell: spec.id,
    scheduler:
      spec.scheduler.binary === null
        ? null
        : { name: spec.scheduler.name, path: schedulerGuestPath(spec.scheduler.binary), args: spec.scheduler.args },
    attachTimeoutMs: timeouts.attachMs,
    probeMs: timeouts.probeMs,
    stopTimeoutMs: timeouts.stopMs,
    hostReadTimeoutMs: 30_000,
    ...sharedHalves(ring),
    test:
      spec.test === undefined
        ? null
        : {
            bundle: GUEST_TEST_BUNDLE,
            file: spec.test.file,
            name: spec.test.name,
            scheduler: spec.scheduler.binary === null ? null : spec.scheduler.name,
            durationMs: spec.test.durationMs,
            places: cellPlaces(spec.topology),
            schedulers: Object.fromEntries(
              Object.entries(spec.test.schedulers).map(([name, e]) => [
                name,
                { path: schedulerGuestPath(e.binary), args: e.args },
              ]),
            ),
            payload:
              spec.test.payload === undefined
                ? null
                : {
                    argv: [`${GUEST_PAYLOAD_DIR}/${basename(spec.test.payload.binary)}`, ...spec.test.payload.args],
                    cgroup: spec.test.payload.cgroup,
                  },
          },
  };
}

/** A payload's files for the cell's archive: the binary, its shared libraries (at their paths) and its data files. */
function payloadFiles(p: CellTestSpec['payload']): CellFile[] {
  if (p === undefined) return [];
  const closure = sharedLibraryClosure([p.binary], p.libraryPath === undefined ? {} : { libraryPath: [p.libraryPath] });
  // staged libraries go where the guest's loader looks
  const guestPath = (f: string): string =>
    p.libraryPath !== undefined && f.startsWith(`${p.libraryPath}/`) ? `/lib/x86_64-linux-gnu/${basename(f)}` : f;
  if (closure.missing.length > 0)
    throw new Error(
      `payload ${p.binary}: shared libraries not found: ${closure.missing.map((m) => m.name).join(', ')}`,
    );
  const out: CellFile[] = [
    { guestPath: GUEST_PAYLOAD_DIR, data: '', directory: true },
    { guestPath: `${GUEST_PAYLOAD_DIR}/${basename(p.binary)}`, data: readFileSync(p.binary), mode: 0o755 },
  ];
  for (const f of [...closure.interpreters, ...closure.libraries.map((l) => l.path)])
    out.push({ guestPath: guestPath(f), data: readFileSync(f), mode: 0o755 });
  for (const [name, text] of Object.entries(p.files))
    out.push({ guestPath: `${GUEST_PAYLOAD_DIR}/${name}`, data: text });
  return out;
}

/** The scheduler binaries a cell's guest needs: the one under test, and those its test may switch to. */
function cellBinaries(spec: CellSpec): string[] {
  const own = spec.scheduler.binary === null ? [] : [spec.scheduler.binary];
  return [...own, ...Object.values(spec.test?.schedulers ?? {}).map((e) => e.binary)];
}

/** Starts the vCPU threads while the cell's start is planned and its initramfs prepared (a bad topology is reported by the boot). */
function prestartThreads(topology: string): void {
  let vcpus: number;
  try {
    vcpus = new Topology(topology).cpus.length;
  } catch {
    return;
  }
  prestartVcpuThreads(vcpus);
}

export async function runCell(spec: CellSpec, hooks: CellHooks = {}): Promise<CellResult> {
  const t0 = performance.now();
  const result = baseResult(spec);
  const finish = (): CellResult => {
    result.wallMs = performance.now() - t0;
    result.hostRssBytes = process.memoryUsage.rss();
    hooks.onPhase?.('done');
    return result;
  };
  if (spec.setupProblem !== null || (spec.scheduler.binary === null && spec.test === undefined)) {
    result.failure = {
      kind: 'setup',
      message: spec.setupProblem ?? `${spec.scheduler.name}: no scheduler binary for kernel ${spec.kernel.label}`,
    };
    result.schedulerStatus = 'NOT STARTED';
    return finish();
  }
  const timeouts = { ...DEFAULT_TIMEOUTS, ...spec.timeouts };
  const memoryMiB = spec.memoryMiB + AGENT_MEMORY_MIB;
  const ring = ringRange(memoryMiB);
  hooks.onPhase?.('boot');
  let start: CellStart;
  /** The cell's plan, and its files: all of them, or (schedulerPart) the test's alone, handed as its `body`. */
  let plan: AgentPlan;
  let archive: Buffer;
  /** A test cell's scheduler part (handed first; the machine may be saved with it attached); undefined: one hand-off. */
  let schedulerPart: AttachedPart | undefined;
  imageCache ??= new AgentImageCache();
  const startInputs: Parameters<typeof planCellStart>[0] = {
    machine: {
      kernelLabel: spec.kernel.label,
      kernelImage: spec.kernel.image,
      topology: spec.topology,
      memoryMiB,
      sharedRegionMiB: RING_MIB,
      cmdline: CELL_CMDLINE,
    },
    images: imageCache,
    snapshotDir: spec.snapshotDir === undefined ? defaultSnapshotDir() : spec.snapshotDir,
    ...sharedHalves(ring),
  };
  try {
    prestartThreads(spec.topology);
    const testFiles: CellFile[] =
      spec.test === undefined
        ? []
        : [{ guestPath: GUEST_TEST_BUNDLE, data: readFileSync(spec.test.bundle) }, ...payloadFiles(spec.test.payload)];
    if (spec.test !== undefined && spec.scheduler.binary !== null) {
      // every scheduler binary goes with the scheduler part, the ones the test may switch to
      // too (the same for every test of a kernel): a VM restored with the scheduler attached
      // has them all, and the test's own files are a small archive (its bundle, its payload)
      schedulerPart = {
        plan: { ...cellPlan(spec, '', ring), test: null, awaitBody: true },
        archive: await buildCellArchive(schedulerCellFiles(cellBinaries(spec))),
      };
      startInputs.attached = schedulerPart;
      archive = await buildCellArchive(testFiles);
    } else {
      archive = await buildCellArchive([...schedulerCellFiles(cellBinaries(spec)), ...testFiles]);
    }
    start = await planCellStart(startInputs);
    if (start.note !== undefined) result.snapshotNote = start.note;
    plan = cellPlan(spec, start.nonce, ring);
  } catch (e) {
    result.failure = {
      kind: 'setup',
      message: `cannot build the guest image: ${e instanceof Error ? e.message : String(e)}`,
    };
    result.schedulerStatus = 'NOT STARTED';
    return finish();
  }

  let nonce = start.nonce;
  /** When bootVm was called (its timings count from there). */
  let tBoot = performance.now();
  let reader = new FrameReader(nonce, start.agentSeq);
  result.start = start.restore !== undefined ? 'restored' : 'cold';
  if (start.restoredAt !== undefined) result.restoredAt = start.restoredAt;
  const phaseAt: Partial<
    Record<
      | 'hello'
      | 'ready'
      | 'handed'
      | 'verify'
      | 'attach'
      | 'attached'
      | 'bodyHanded'
      | 'probe'
      | 'body'
      | 'stop'
      | 'result',
      number
    >
  > = {};
  let facts: AgentFacts | null = null;
  let agentError: string | null = null;
  let corrupt = 0;
  let live: LiveVm | undefined;
  /** The VM has ended (a monitor started later would never be stopped). */
  let vmEnded = false;
  let reading: Promise<void> | undefined;
  let hostReadError: string | null = null;
  let hostSeq = start.hostSeq;
  const onAbort = (): void => live?.end('interrupted');
  const monitorInterval = spec.monitorIntervalMs ?? DEFAULT_MONITOR_INTERVAL_MS;
  const places = cellPlaces(spec.topology);
  let monitor: MonitorSession | null = null;
  /** The test body's requests (captures, writes, watches), once it makes one. */
  let requests: HostRequestHandler | null = null;
  /** The VM's hardware watchpoints, shared by the monitor and the body's ctx.watch. */
  let debugSlots: DebugSlots | null = null;
  const dump = new CellDump({
    bundleDir: spec.bundleDir,
    keepDumps: spec.keepDumps,
    vmlinux: spec.kernel.vmlinux,
    kernelImage,
    onConsole: hooks.onConsole,
    judgedLater: spec.test !== undefined,
  });
  hooks.signal?.addEventListener('abort', onAbort);

  /** Starts the host monitor once the agent is up (its hello; a restored VM: at once). */
  const startMonitor = (): void => {
    if (live !== undefined && !vmEnded && spec.kernel.vmlinux !== null && monitorInterval > 0 && monitor === null) {
      monitor = new MonitorSession(monitorInterval, places, spec.monitorProgramEvery);
      monitor.schedulerView = schedulerView;
      monitor.varWriter = writeSchedulerVar;
      try {
        debugSlots ??= new DebugSlots(live);
        void monitor.start(live, kernelImage(spec.kernel.vmlinux), debugSlots);
      } catch (e) {
        monitor.stop();
        result.monitor = emptyTimeline(
          monitorInterval,
          `monitor not started: ${e instanceof Error ? e.message : String(e)}`,
        );
        monitor = null;
      }
    }
  };

  const frame = (m: CellMessage): Uint8Array => encodeFrame(nonce, hostSeq++, m);
  /** Gives the waiting agent its cell, or a test cell's scheduler part (a failure to is the agent's: it cannot run). */
  const giveCell = (vm: LiveVm): void => {
    phaseAt.handed = performance.now();
    try {
      if (schedulerPart === undefined) handCell(vm, plan, archive, frame);
      else handCell(vm, { ...schedulerPart.plan, nonce }, schedulerPart.archive, frame);
    } catch (e) {
      agentError = `cannot hand the cell to the agent: ${e instanceof Error ? e.message : String(e)}`;
      vm.end(agentError);
    }
  };
  /** Gives the agent, its scheduler attached, the test. */
  const giveBody = (vm: LiveVm): void => {
    phaseAt.bodyHanded = performance.now();
    try {
      handCell(vm, plan, archive, frame, 'body');
    } catch (e) {
      agentError = `cannot hand the test to the agent: ${e instanceof Error ? e.message : String(e)}`;
      vm.end(agentError);
    }
  };
  /** Saves the machine where its agent waits (`point`), then goes on (`next`), whether or not the save worked. */
  const saveThen = (vm: LiveVm, target: SnapshotTarget, point: StartPoint, next: (vm: LiveVm) => void): void => {
    const vmlinux = spec.kernel.vmlinux;
    const at = { nonce, agentSeq: reader.expectedSeq, hostSeq, point };
    void saveCellSnapshot(vm, target, at, vmlinux === null ? null : kernelImage(vmlinux))
      .then(({ save: saved, freePages }) => {
        if (!saved.saved) return;
        if (result.start === 'cold') result.start = 'saved';
        result.snapshotSave ??= { pauseMs: saved.pauseMs, dataBytes: saved.dataBytes, freeBytes: saved.freeBytes };
        if (freePages !== null && 'reason' in freePages)
          result.snapshotNote = `saved with the guest's free pages: ${freePages.reason}`;
      })
      .catch((e: unknown) => {
        result.snapshotNote = `snapshot not saved: ${e instanceof Error ? e.message : String(e)}`;
      })
      .finally(() => next(vm));
  };

  const handle = (m: AgentMessage): void => {
    const now = performance.now();
    switch (m.type) {
      case 'ready': {
        phaseAt.ready = now;
        const vm = live;
        if (vm === undefined) break;
        if (start.save === undefined) giveCell(vm);
        else saveThen(vm, start.save, 'ready', giveCell);
        break;
      }
      case 'attached': {
        phaseAt.attached = now;
        const vm = live;
        if (vm === undefined || schedulerPart === undefined) break;
        if (start.saveAttached === undefined) giveBody(vm);
        else saveThen(vm, start.saveAttached, 'attached', giveBody);
        break;
      }
      case 'time-request':
        live?.app(encodeFrame(nonce, hostSeq++, { type: 'time', realtimeMs: Date.now() }));
        break;
      case 'hello':
        phaseAt.hello = now;
        startMonitor();
        break;
      case 'phase':
        if (!AGENT_PHASES.includes(m.phase)) break;
        if (
          result.guestClockSkewMs === undefined &&
          typeof m.wallClockMs === 'number' &&
          Number.isFinite(m.wallClockMs)
        ) {
          result.guestClockSkewMs = m.wallClockMs - Date.now();
        }
        phaseAt[m.phase] = now;
        hooks.onPhase?.(m.phase);
        break;
      case 'probed':
        if (live === undefined || spec.kernel.vmlinux === null) {
          live?.app(encodeFrame(nonce, hostSeq++, { type: 'continue' }));
          break;
        }
        reading = readPrograms(live, spec.kernel.vmlinux, (monitor as MonitorSession | null)?.kernel ?? null)
          .then((p) => {
            result.programs = p;
          })
          .catch((e: unknown) => {
            hostReadError = e instanceof Error ? e.message : String(e);
          })
          .finally(() => {
            live?.app(encodeFrame(nonce, hostSeq++, { type: 'continue' }));
          });
        break;
      case 'result': {
        phaseAt.result = now;
        let checked: AgentFacts | string;
        if ('record' in m) {
          const read = factsFromRegion(live, m.record);
          checked = typeof read === 'string' ? read : checkFacts(read.value);
        } else checked = checkFacts(m.facts);
        if (typeof checked === 'string') agentError = `the agent's report is malformed (${checked})`;
        else facts = checked;
        live?.app(encodeFrame(nonce, hostSeq++, { type: 'done' }));
        break;
      }
      case 'request': {
        const id = Number.isSafeInteger(m.id) ? m.id : -1;
        const reply = (error: string | null, bytes: Uint8Array = new Uint8Array(0)): void => {
          live?.app(
            encodeFrame(nonce, hostSeq++, { type: 'reply', id, length: bytes.length, crc: bulkCrc32(bytes), error }),
          );
        };
        const box = plan.mailbox;
        if (live === undefined || box == null) {
          reply('no host mailbox in this cell');
          break;
        }
        if (monitor === null) {
          reply('the host monitor is not running in this cell (no vmlinux, or --monitor-interval 0)');
          break;
        }
        const vm = live;
        requests ??= new HostRequestHandler(live, monitor, debugSlots!);
        const handler = requests;
        void (async () => {
          try {
            const json = JSON.stringify(await handler.answer(m.request));
            const answer = Buffer.from(json, 'utf8');
            if (answer.length > box.size)
              throw new Error(`the answer is ${answer.length} bytes, more than the mailbox's ${box.size}`);
            vm.memory.slice(box.guestPhysAddr, box.size).set(answer, 0);
            reply(null, answer);
          } catch (e) {
            reply((e instanceof Error ? e.message : String(e)).slice(0, 2000));
          }
        })();
        break;
      }
      case 'agent-error':
        agentError = typeof m.message === 'string' ? m.message.slice(0, 4096) : 'the agent failed (no message)';
        live?.app(encodeFrame(nonce, hostSeq++, { type: 'done' }));
        break;
    }
  };

  try {
    if (hooks.signal?.aborted) {
      result.failure = { kind: 'guest', message: 'interrupted before the VM started' };
      return finish();
    }
    let vm: BootVmResult | undefined;
    const boot = (): Promise<BootVmResult> =>
      bootVm({
        kernel: spec.kernel.image,
        initrd: start.initrd,
        restore: start.restore,
        cmdline: CELL_CMDLINE,
        topology: new Topology(spec.topology),
        memoryMiB,
        timeoutMs: timeouts.cellMs,
        markers: [AGENT_START_MARKER],
        sharedRegionMiB: RING_MIB,
        onStart: (v) => {
          live = v;
          if (start.restore !== undefined) {
            // a restored VM starts in the agent's wait for its cell (past its hello and ready),
            // or for its test (past its scheduler's attach)
            phaseAt.hello = phaseAt.ready = performance.now();
            if (start.restoredAt === 'attached') {
              // the test runs at once: the monitor (and its parse of the vmlinux) comes first
              startMonitor();
              giveBody(v);
            } else {
              // the agent unpacks its cell and verifies its scheduler first: the host parses
              // the vmlinux for the monitor (seconds under emulation, the first time in a
              // process) meanwhile, not while the agent waits for its cell
              giveCell(v);
              setImmediate(startMonitor);
            }
          }
          if (hooks.signal?.aborted) v.end('interrupted');
          // parse the vmlinux (symbols, BTF) while the guest boots, not when the agent waits for the read
          const vmlinux = spec.kernel.vmlinux;
          if (vmlinux !== null)
            setImmediate(() => {
              try {
                kernelImage(vmlinux);
              } catch {
                /* reported at the read */
              }
            });
        },
        onConsole: dump.onConsole,
        beforeStop: (end) => dump.beforeStop(live, end),
        onApp: (chunk) => {
          for (const ev of reader.feed(chunk)) {
            if (ev.kind === 'message') handle(ev.message as AgentMessage);
            else if (ev.kind === 'corrupt') corrupt++;
          }
        },
      });
    for (;;) {
      tBoot = performance.now();
      try {
        vm = await boot();
        break;
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        if (start.restore !== undefined && live === undefined) {
          // KVM refused the snapshot's state (another host CPU, say): boot this cell cold
          // instead, and save the machine afresh at its ready
          try {
            start = await planCellStart({ ...startInputs, refused: message });
            nonce = start.nonce;
            hostSeq = start.hostSeq;
            plan = cellPlan(spec, nonce, ring);
            reader = new FrameReader(nonce, start.agentSeq);
            result.start = 'cold';
            delete result.restoredAt;
            result.snapshotNote = start.note;
            continue;
          } catch {
            /* reported as the restore's failure below */
          }
        }
        // refused before the guest ran: an unusable kernel image, no /dev/kvm, too little memory
        result.failure = { kind: 'setup', message };
        result.schedulerStatus = 'NOT STARTED';
        return finish();
      }
    }
    vmEnded = true;
    await reading;
    if (monitor !== null) result.monitor = (monitor as MonitorSession).stop();
    const watches = (requests as HostRequestHandler | null)?.watchSummary() ?? [];
    if (watches.length > 0) result.watches = watches;
    const tEnd = performance.now();
    const consoleLines = vm.consoleTail.split('\n');
    const panicLine = consoleLines.find((l) => l.includes(PANIC_TEXT))?.trim() ?? null;
    const observed = facts as AgentFacts | null;
    const observation = {
      facts: observed,
      vmEnd: { reason: vm.reason, detail: vm.detail },
      agentError,
      consoleLine:
        panicLine ??
        consoleLines
          .filter((l) => l.trim() !== '')
          .slice(-1)[0]
          ?.trim() ??
        null,
    };
    if (spec.test === undefined) {
      const verdict = judgeCell(observation);
      result.passed = verdict.passed;
      result.failure = verdict.failure;
      result.schedulerStatus = verdict.schedulerStatus;
    } else {
      // a test cell: up to attach as a sweep cell; the test's checks are judged by the caller
      const early = judgeUntilAttach(observation, spec.scheduler.binary === null, 'the test body');
      if ('passed' in early) {
        result.passed = false;
        result.failure = early.failure;
        result.schedulerStatus = early.schedulerStatus;
      } else if (observed?.test == null) {
        result.passed = false;
        result.failure = { kind: 'guest', message: 'the test body never ran (the agent reported no test facts)' };
        result.schedulerStatus = early.status;
      } else {
        const checked = checkTestFacts(observed.test);
        result.passed = typeof checked !== 'string';
        if (typeof checked === 'string')
          result.failure = { kind: 'guest', message: `the agent's test report is malformed (${checked})` };
        else result.test = checked;
        result.schedulerStatus = early.status;
      }
    }
    if (observed !== null) {
      result.guestPrograms = observed.guestPrograms;
      result.workers = observed.probe?.workers ?? [];
      result.exitMessage = exitMessage(observed.output);
      const log = loadLog(observed.output);
      if (log !== null) result.verifier = verifierSummary(log);
      result.schedulerLog = collapseLog(observed.output, spec.raw);
    }
    const topology = result.monitor?.topology;
    if (topology != null && !topology.ok && (result.passed || result.failure?.kind === 'dispatch')) {
      result.passed = false;
      result.failure = {
        kind: 'topology',
        message: `the guest kernel's sched domains do not match topology ${spec.topology}: ${topology.problems[0]}${topology.problems.length > 1 ? ` (and ${topology.problems.length - 1} more)` : ''}`,
      };
    }
    if (hostReadError !== null) result.schedulerStatus += ` (host read of guest memory failed: ${hostReadError})`;
    if (corrupt > 0) result.schedulerStatus += ` (${corrupt} damaged frames ignored)`;
    if (!result.passed) result.consoleTail = consoleLines.slice(-40).join('\n');
    const p: CellPhases = result.phases;
    const span = (a: number | undefined, b: number | undefined): number | undefined =>
      a === undefined || b === undefined ? undefined : b - a;
    p.boot = span(t0, phaseAt.hello);
    p.ready = span(t0, phaseAt.ready);
    if (start.save !== undefined) p.save = span(phaseAt.ready, phaseAt.handed);
    if (start.saveAttached !== undefined) p.saveAttached = span(phaseAt.attached, phaseAt.bodyHanded);
    // the agent taking what it was handed last (files unpacked, RNG seeded, clock set) until its next phase
    p.handoff =
      phaseAt.bodyHanded !== undefined
        ? span(phaseAt.bodyHanded, phaseAt.body ?? phaseAt.result)
        : span(phaseAt.handed, phaseAt.verify ?? phaseAt.body ?? phaseAt.result);
    const agentStart = vm.timings.markers[AGENT_START_MARKER];
    p.agentReady =
      agentStart === undefined || phaseAt.hello === undefined ? undefined : phaseAt.hello - (tBoot + agentStart);
    p.prepare = tBoot - t0;
    p.vmSetup = vm.timings.setupMs;
    p.vmCreate = vm.timings.vmCreateMs;
    if (agentStart !== undefined) p.kernel = agentStart - vm.timings.setupMs - vm.timings.vmCreateMs;
    p.verify = span(
      phaseAt.verify,
      phaseAt.attach ?? phaseAt.attached ?? phaseAt.probe ?? phaseAt.body ?? phaseAt.result,
    );
    p.attach = span(
      phaseAt.attach ?? phaseAt.verify,
      phaseAt.attached ?? phaseAt.probe ?? phaseAt.body ?? phaseAt.result,
    );
    p.probe = span(phaseAt.probe, phaseAt.stop ?? phaseAt.result);
    p.body = span(phaseAt.body, phaseAt.stop ?? phaseAt.result);
    p.teardown = span(phaseAt.stop ?? phaseAt.result, tEnd);
    if (hooks.signal?.aborted && !result.passed) result.failure = { kind: 'guest', message: 'interrupted' };
    return finish();
  } finally {
    vmEnded = true;
    hooks.signal?.removeEventListener('abort', onAbort);
    const timeline = (monitor as MonitorSession | null)?.stop();
    dump.timeline = result.monitor ?? timeline ?? null;
    dump.keep(result, live); // a failure bundle (policy permitting) while the RAM is still there
    // the VM is gone and its result taken: with snapshots on, its RAM is kept for this
    // thread's next restore (src/vmm/memory-pool.ts); else it goes back now, not at the next GC
    if (live !== undefined) {
      if (startInputs.snapshotDir !== null) keepGuestMemory(live.memory);
      else releaseGuestMemory(live.memory);
    }
  }
}
