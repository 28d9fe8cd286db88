// How a cell's VM starts. Every cell boots the agent's base image (no scheduler, no plan of its
// own: the same for every cell of a kernel, topology and memory size), whose agent says `ready`
// and waits; the host then hands it the cell (its plan and files through the mailbox:
// src/guest/agent/cell-handoff.ts). With snapshots on, the first cell of a machine saves the
// VM at that `ready` point, and later cells restore it instead of booting: they start in the
// agent's wait, a few hundred milliseconds in, rather than after a kernel boot. A test cell
// with a scheduler is handed in two parts: the scheduler (the agent starts it, waits for
// `enabled`, says `attached`), then the test (`body`). The machine is saved at that second
// wait too, keyed also by the scheduler part (its plan and files), so later tests of the same
// scheduler and arguments skip its load, verification and attach. A snapshot whose files fail
// their checks is removed and rebuilt, with one line saying so.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../paths.js';
import { ElfFile } from '../elf/file.js';
import { withFileSource } from '../elf/file-source.js';
import type { AgentImageCache } from '../guest/agent-initramfs.js';
import { PLAN_VERSION, type AgentPlan, type CellMessage } from '../guest/plan.js';
import { newNonce } from '../guest/protocol.js';
import { bulkCrc32 } from '../guest/bulk-crc32.js';
import type { InitrdInput } from '../vmm/boot/index.js';
import type { LiveVm, SnapshotSave } from '../vmm/index.js';
import type { FreePages } from '../monitor/free-pages.js';
import type { KernelImage } from '../monitor/kernel-image.js';
import { freePagesForSave } from './guest-free-pages.js';
import { SnapshotStore, type SnapshotKey, type StoredSnapshot } from '../vmm/snapshot/store.js';

/** Bumped when what a snapshot holds, or how a cell starts from one, changes: older snapshots are then not used. */
export const CELL_SNAPSHOT_FORMAT = 2;

/**
 * Where cells keep their snapshots unless told otherwise: beside the kernel cache
 * (`<cache>/snapshots`); inside the test host, whose files all live in its RAM, on /dev/shm
 * (a tmpfs of its own: the root file system's would fill up).
 */
export function defaultSnapshotDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KTSTR_IN_TEST_HOST === '1' ? '/dev/shm/ktstr-wasm-snapshots' : join(cacheRoot(env), 'snapshots');
}

/** How many snapshots a store keeps: 4, and inside the test host (RAM) 3 (a machine's at ready, and two schedulers' attached to it). */
export function snapshotsKept(env: NodeJS.ProcessEnv = process.env): number {
  return env.KTSTR_IN_TEST_HOST === '1' ? 3 : 4;
}

const NT_GNU_BUILD_ID = 3;

/** The GNU build ID of an ELF image (a vmlinux), hex; null for anything else (a bzImage) or an ELF without one. */
function elfBuildId(image: string): string | null {
  try {
    return withFileSource(image, (source) => {
      const note = new ElfFile(source, image).notes().find((n) => n.name === 'GNU' && n.type === NT_GNU_BUILD_ID);
      return note === undefined || note.desc.length < 8 ? null : Buffer.from(note.desc).toString('hex');
    });
  } catch {
    return null;
  }
}

const imageIds = new Map<string, string>();
/**
 * A kernel image's identity (remembered by path, size and time): a vmlinux's GNU build ID (the
 * linker's hash of what it linked; read from its notes, not its 40+ MB), else SHA-256 of the bytes.
 */
function kernelId(image: string): string {
  const st = statSync(image);
  const stamp = `${image}:${st.size}:${st.mtimeMs}`;
  let id = imageIds.get(stamp);
  if (id === undefined) {
    const buildId = elfBuildId(image);
    id =
      buildId !== null
        ? `build-id:${buildId}`
        : createHash('sha256').update(readFileSync(image)).digest('hex').slice(0, 32);
    imageIds.set(stamp, id);
  }
  return id;
}

/** What a cell's machine is made of; a snapshot serves only a cell whose key is this. */
export interface CellMachine {
  kernelLabel: string;
  kernelImage: string;
  topology: string;
  memoryMiB: number;
  sharedRegionMiB: number;
  cmdline: string;
}

export function cellSnapshotKey(m: CellMachine, agentKey: string): SnapshotKey {
  return {
    format: CELL_SNAPSHOT_FORMAT,
    kernel: m.kernelLabel,
    kernelId: kernelId(m.kernelImage),
    topology: m.topology,
    memoryMiB: m.memoryMiB,
    sharedRegionMiB: m.sharedRegionMiB,
    cmdline: m.cmdline,
    agent: agentKey,
    // the vCPUs' saved CPUID and XSAVE layout are this host CPU's
    hostCpu: cpus()[0]?.model ?? 'unknown',
  };
}

/**
 * A test cell's scheduler part, what the agent runs up to `attached`: its plan (with
 * awaitBody, without the test) and the archive of its files (the scheduler and its libraries).
 */
export interface AttachedPart {
  plan: AgentPlan;
  archive: Uint8Array;
}

/**
 * The key of a machine's snapshot with a scheduler attached: the machine's key, and a hash of
 * the scheduler part — every field of its plan but the per-cell ones (nonce, name, regions:
 * those are the base's), and its files' bytes. Another binary, argument or timeout: another key.
 */
export function attachedSnapshotKey(machineKey: SnapshotKey, part: AttachedPart): SnapshotKey {
  const { nonce: _nonce, cell: _cell, ring: _ring, mailbox: _mailbox, ...rest } = part.plan;
  const hash = createHash('sha256').update(JSON.stringify(rest)).update(part.archive).digest('hex');
  return { ...machineKey, attached: hash.slice(0, 32) };
}

/** The plan in a base image: the channel and regions, no cell (its agent waits for one). */
export function basePlan(nonce: string, ring: AgentPlan['ring'], mailbox: AgentPlan['mailbox']): AgentPlan {
  return {
    version: PLAN_VERSION,
    nonce,
    cell: 'base',
    scheduler: null,
    attachTimeoutMs: 0,
    probeMs: 0,
    stopTimeoutMs: 0,
    hostReadTimeoutMs: 0,
    ring,
    mailbox,
    test: null,
    awaitCell: true,
  };
}

/** Where in the agent a snapshot was saved: at `ready` (waiting for its cell) or `attached` (its scheduler up, waiting for the test). */
export type StartPoint = 'ready' | 'attached';

/** What a snapshot keeps beside the machine: the base's frame nonce, both sides' next frame numbers, and where the agent waits. */
type SnapshotExtra = {
  nonce: string;
  agentSeq: number;
  /** Absent in snapshots taken at ready before the attached point existed: 0. */
  hostSeq?: number;
  point?: StartPoint;
};

/** Where a save goes: the store and the key. */
export interface SnapshotTarget {
  store: SnapshotStore;
  key: SnapshotKey;
}

export interface CellStart {
  nonce: string;
  /** The number of the agent's next frame: 0 on a cold boot; after its `hello` and `ready` (and `attached`) in a restored VM. */
  agentSeq: number;
  /** The number of the host's next frame: 0, but for a VM restored at `attached` (it was handed its scheduler). */
  hostSeq: number;
  /** A cold boot's initrd (the base image and its plan), or… */
  initrd?: InitrdInput;
  /** …the snapshot to restore, and where in the agent it starts. */
  restore?: StoredSnapshot;
  restoredAt?: StartPoint;
  /** Save the VM here at the agent's `ready` (a cold boot with snapshots on). */
  save?: SnapshotTarget;
  /** Save the VM here at the agent's `attached` (a test cell's scheduler part, with snapshots on, not restored from it). */
  saveAttached?: SnapshotTarget;
  /** A snapshot that could not be used (removed; this cell rebuilds it). */
  note?: string;
}

/** A snapshot's agent state, when it has one that fits `point`. */
function agentState(
  snapshot: StoredSnapshot,
  point: StartPoint,
): { nonce: string; agentSeq: number; hostSeq: number } | null {
  const extra = (snapshot.state as { extra?: Partial<SnapshotExtra> }).extra;
  if (typeof extra?.nonce !== 'string' || !Number.isSafeInteger(extra.agentSeq)) return null;
  if ((extra.point ?? 'ready') !== point) return null;
  const hostSeq = extra.hostSeq ?? 0;
  if (!Number.isSafeInteger(hostSeq)) return null;
  return { nonce: extra.nonce, agentSeq: extra.agentSeq!, hostSeq };
}

/**
 * How this cell starts: restored from its machine's snapshot when `snapshotDir` holds a good
 * one (a test cell's with its scheduler attached first, when `attached` is given), else booted
 * cold; with snapshots on (`snapshotDir` not null), saving the points it passes that have none.
 */
export async function planCellStart(o: {
  machine: CellMachine;
  images: AgentImageCache;
  snapshotDir: string | null;
  ring: AgentPlan['ring'];
  mailbox: AgentPlan['mailbox'];
  /** A test cell's scheduler part: its attached snapshot is looked for, or saved. */
  attached?: AttachedPart;
  /** Why the snapshot planned before could not be restored (KVM refused its state): it is removed and rebuilt. */
  refused?: string;
}): Promise<CellStart> {
  const cold = async (): Promise<Pick<CellStart, 'nonce' | 'agentSeq' | 'hostSeq' | 'initrd'>> => {
    const nonce = newNonce();
    return { nonce, agentSeq: 0, hostSeq: 0, initrd: await o.images.initrd(null, basePlan(nonce, o.ring, o.mailbox)) };
  };
  if (o.snapshotDir === null) return cold();
  const store = new SnapshotStore(o.snapshotDir, snapshotsKept());
  const key = cellSnapshotKey(o.machine, o.images.baseKey(null));
  const attachedKey = o.attached === undefined ? undefined : attachedSnapshotKey(key, o.attached);
  const saveAttached = attachedKey === undefined ? {} : { saveAttached: { store, key: attachedKey } };
  if (o.refused !== undefined) {
    store.remove(key);
    if (attachedKey !== undefined) store.remove(attachedKey);
    return {
      ...(await cold()),
      save: { store, key },
      ...saveAttached,
      note: `snapshot not restored (${o.refused}): booted cold, rebuilt`,
    };
  }
  const ramBytes = o.machine.memoryMiB * 2 ** 20;
  const notes: string[] = [];
  /** The snapshot of `k` and its agent state saved at `point`; an unusable one is removed, with a note. */
  const openPoint = (
    k: SnapshotKey,
    point: StartPoint,
  ): Pick<CellStart, 'nonce' | 'agentSeq' | 'hostSeq' | 'restore'> | null => {
    const opened = store.open(k, ramBytes);
    if (opened.kind === 'ok') {
      const state = agentState(opened.snapshot, point);
      if (state !== null) return { ...state, restore: opened.snapshot };
      store.remove(k);
      notes.push(`snapshot ${opened.snapshot.id} had no agent state: rebuilt`);
    } else if (opened.kind === 'damaged') {
      notes.push(`snapshot ${store.dir(k)} was unusable (${opened.reason}): rebuilt`);
    }
    return null;
  };
  const note = (): { note?: string } => (notes.length === 0 ? {} : { note: notes.join('; ') });
  if (attachedKey !== undefined) {
    const restored = openPoint(attachedKey, 'attached');
    if (restored !== null) return { ...restored, restoredAt: 'attached' };
  }
  const restored = openPoint(key, 'ready');
  if (restored !== null) return { ...restored, restoredAt: 'ready', ...saveAttached, ...note() };
  return { ...(await cold()), save: { store, key }, ...saveAttached, ...note() };
}

/**
 * Saves the VM where its agent waits (`point`; the agent's and the host's next frames are
 * `agentSeq` and `hostSeq`), leaving out the guest's free pages when `kernel` is given; saved
 * false: another cell saved it first.
 */
export async function saveCellSnapshot(
  live: LiveVm,
  target: SnapshotTarget,
  at: { nonce: string; agentSeq: number; hostSeq: number; point: StartPoint },
  kernel: KernelImage | null,
): Promise<{ save: SnapshotSave; freePages: FreePages | null }> {
  const extra: SnapshotExtra = { ...at };
  let freePages: FreePages | null = null;
  const free =
    kernel === null
      ? undefined
      : await freePagesForSave(live, kernel, (found) => {
          freePages = found;
        });
  const result = await live.saveSnapshot(target.store, target.key, extra, free);
  return { save: result, freePages };
}

/**
 * Hands the waiting agent its cell (`kind` cell) or, its scheduler attached, its test (`body`):
 * the plan's JSON and the files' archive written into the mailbox (guest RAM), then the frame.
 * Throws when they do not fit the mailbox.
 */
export function handCell(
  live: LiveVm,
  plan: AgentPlan,
  archive: Uint8Array,
  frame: (m: CellMessage) => Uint8Array,
  kind: CellMessage['type'] = 'cell',
): void {
  const box = plan.mailbox;
  if (box == null) throw new Error('this cell has no mailbox to hand its plan through');
  const planBytes = Buffer.from(JSON.stringify(plan), 'utf8');
  const offset = planBytes.length;
  if (offset + archive.length > box.size) {
    throw new Error(
      `the cell's plan and files are ${((offset + archive.length) / 2 ** 20).toFixed(1)} MiB, more than the ${box.size / 2 ** 20} MiB mailbox`,
    );
  }
  const mem = live.memory.slice(box.guestPhysAddr, box.size);
  mem.set(planBytes, 0);
  mem.set(archive, offset);
  const message: CellMessage = {
    type: kind,
    plan: { length: planBytes.length, crc: bulkCrc32(planBytes) },
    archive: { offset, length: archive.length, crc: bulkCrc32(archive) },
    realtimeMs: Date.now(),
    seed: randomBytes(64).toString('hex'),
  };
  live.app(frame(message));
}
