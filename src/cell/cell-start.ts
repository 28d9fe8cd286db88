// How a cell's VM starts. Every cell boots the agent's base image (no scheduler, no plan of its
// own: the same for every cell of a kernel, topology and memory size), whose agent says `ready`
// and waits; the host then hands it the cell (its plan and files through the mailbox:
// src/guest/agent/cell-handoff.ts). With snapshots on, the first cell of a machine saves the
// VM at that `ready` point, and later cells restore it instead of booting: they start in the
// agent's wait, a few hundred milliseconds in, rather than after a kernel boot. A snapshot
// whose files fail their checks is removed and rebuilt, with one line saying so.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../paths.js';
import { ElfFile } from '../elf/file.js';
import { withFileSource } from '../elf/file-source.js';
import type { AgentImageCache } from '../guest/agent-initramfs.js';
import { PLAN_VERSION, type AgentPlan, type CellMessage } from '../guest/plan.js';
import { crc32, newNonce } from '../guest/protocol.js';
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

/** How many snapshots a store keeps: 3, and inside the test host (RAM) 1. */
export function snapshotsKept(env: NodeJS.ProcessEnv = process.env): number {
  return env.KTSTR_IN_TEST_HOST === '1' ? 1 : 3;
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

/** What a snapshot keeps beside the machine: the base's frame nonce, and the agent's next frame number. */
type SnapshotExtra = {
  nonce: string;
  agentSeq: number;
};

export interface CellStart {
  nonce: string;
  /** The number of the agent's next frame: 0 on a cold boot; after its `hello` and `ready` in a restored VM. */
  agentSeq: number;
  /** A cold boot's initrd (the base image and its plan), or… */
  initrd?: InitrdInput;
  /** …the snapshot to restore. */
  restore?: StoredSnapshot;
  /** Save the VM here at the agent's `ready` (a cold boot with snapshots on). */
  save?: { store: SnapshotStore; key: SnapshotKey };
  /** A snapshot that could not be used (removed; this cell rebuilds it). */
  note?: string;
}

/**
 * How this cell starts: restored from its machine's snapshot when `snapshotDir` holds a good
 * one, else booted cold (saving one when `snapshotDir` is set; null: snapshots off).
 */
export async function planCellStart(o: {
  machine: CellMachine;
  images: AgentImageCache;
  snapshotDir: string | null;
  ring: AgentPlan['ring'];
  mailbox: AgentPlan['mailbox'];
  /** Why the snapshot planned before could not be restored (KVM refused its state): it is removed and rebuilt. */
  refused?: string;
}): Promise<CellStart> {
  const cold = async (): Promise<Pick<CellStart, 'nonce' | 'agentSeq' | 'initrd'>> => {
    const nonce = newNonce();
    return { nonce, agentSeq: 0, initrd: await o.images.initrd(null, basePlan(nonce, o.ring, o.mailbox)) };
  };
  if (o.snapshotDir === null) return cold();
  const store = new SnapshotStore(o.snapshotDir, snapshotsKept());
  const key = cellSnapshotKey(o.machine, o.images.baseKey(null));
  if (o.refused !== undefined) {
    store.remove(key);
    return {
      ...(await cold()),
      save: { store, key },
      note: `snapshot not restored (${o.refused}): booted cold, rebuilt`,
    };
  }
  const opened = store.open(key, o.machine.memoryMiB * 2 ** 20);
  if (opened.kind === 'ok') {
    const extra = (opened.snapshot.state as { extra?: Partial<SnapshotExtra> }).extra;
    if (typeof extra?.nonce === 'string' && Number.isSafeInteger(extra.agentSeq)) {
      return { nonce: extra.nonce, agentSeq: extra.agentSeq!, restore: opened.snapshot };
    }
    store.remove(key);
    return {
      ...(await cold()),
      save: { store, key },
      note: `snapshot ${opened.snapshot.id} had no agent state: rebuilt`,
    };
  }
  const note =
    opened.kind === 'damaged' ? `snapshot ${store.dir(key)} was unusable (${opened.reason}): rebuilt` : undefined;
  return { ...(await cold()), save: { store, key }, note };
}

/**
 * Saves the VM at the agent's `ready` (the agent's next frame is `agentSeq`), leaving out the
 * guest's free pages when `kernel` is given; saved false: another cell saved it first.
 */
export async function saveCellSnapshot(
  live: LiveVm,
  save: NonNullable<CellStart['save']>,
  nonce: string,
  agentSeq: number,
  kernel: KernelImage | null,
): Promise<{ save: SnapshotSave; freePages: FreePages | null }> {
  const extra: SnapshotExtra = { nonce, agentSeq };
  let freePages: FreePages | null = null;
  const free =
    kernel === null
      ? undefined
      : await freePagesForSave(live, kernel, (found) => {
          freePages = found;
        });
  const result = await live.saveSnapshot(save.store, save.key, extra, free);
  return { save: result, freePages };
}

/**
 * Hands the waiting agent its cell: the plan's JSON and the files' archive written into the
 * mailbox (guest RAM), then the `cell` frame. Throws when they do not fit the mailbox.
 */
export function handCell(
  live: LiveVm,
  plan: AgentPlan,
  archive: Uint8Array,
  frame: (m: CellMessage) => Uint8Array,
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
    type: 'cell',
    plan: { length: planBytes.length, crc: crc32(planBytes) },
    archive: { offset, length: archive.length, crc: crc32(archive) },
    realtimeMs: Date.now(),
    seed: randomBytes(64).toString('hex'),
  };
  live.app(frame(message));
}
