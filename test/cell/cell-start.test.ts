// How a cell starts, without KVM: cold with a save when its machine has no snapshot; restored
// (with the base's nonce and the agent's next frame number) when it has a good one; cold with
// one line when the snapshot is damaged, has no agent state or KVM refused it; cold without a save when
// snapshots are off. Every field of the machine is in the key. A test cell's scheduler part:
// restored at `attached` when that snapshot stands, else from `ready` or cold, saving it; its
// key follows the part's plan and files, not the per-cell fields. handCell writes the plan and
// the files into the mailbox and sends a frame saying where they are.

import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  attachedSnapshotKey,
  cellSnapshotKey,
  handCell,
  planCellStart,
  type AttachedPart,
  type CellMachine,
} from '../../src/cell/cell-start.js';
import type { AgentImageCache } from '../../src/guest/agent-initramfs.js';
import type { AgentPlan, CellMessage } from '../../src/guest/plan.js';
import { crc32 } from '../../src/guest/protocol.js';
import { GuestMemory } from '../../src/vmm/memory.js';
import type { LiveVm } from '../../src/vmm/index.js';
import { encodeState } from '../../src/vmm/snapshot/state-file.js';
import { RAM_FILE, SnapshotStore, STATE_FILE } from '../../src/vmm/snapshot/store.js';

const root = mkdtempSync(join(tmpdir(), 'ktstr-cell-start-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const kernelImage = join(root, 'bzImage');
writeFileSync(kernelImage, 'not really a kernel');
const machine: CellMachine = {
  kernelLabel: '6.12',
  kernelImage,
  topology: '1n1l2c1t',
  memoryMiB: 1,
  sharedRegionMiB: 16,
  cmdline: 'quiet',
};
const images = {
  baseKey: () => 'agent-1',
  initrd: async (_s: unknown, plan: AgentPlan) => ['base.cpio', Buffer.from(JSON.stringify(plan))],
} as unknown as AgentImageCache;
const regions = { ring: { guestPhysAddr: 0x1000, size: 0x800 }, mailbox: { guestPhysAddr: 0x2000, size: 0x1000 } };

test('no snapshot: cold, with a save; its base plan waits for a cell', async () => {
  const dir = join(root, 'a');
  const s = await planCellStart({ machine, images, snapshotDir: dir, ...regions });
  assert.is(s.restore, undefined);
  assert.ok(s.save !== undefined);
  assert.is(s.agentSeq, 0);
  assert.is(s.note, undefined);
  const plan = JSON.parse((s.initrd as [string, Buffer])[1].toString()) as AgentPlan;
  assert.is(plan.awaitCell, true);
  assert.is(plan.nonce, s.nonce);
  assert.equal(plan.mailbox, regions.mailbox);
  assert.is(plan.scheduler, null);
});

test('snapshots off: cold without a save', async () => {
  const s = await planCellStart({ machine, images, snapshotDir: null, ...regions });
  assert.is(s.save, undefined);
  assert.ok(s.initrd !== undefined);
});

const saveFake = (store: SnapshotStore, extra: unknown) =>
  store.save(cellSnapshotKey(machine, 'agent-1'), (staging) => {
    writeFileSync(join(staging, RAM_FILE), Buffer.alloc(2 ** 20));
    writeFileSync(join(staging, STATE_FILE), encodeState({ extra } as never));
  });

test('a good snapshot is restored with its nonce and the agent frame number; a damaged one is rebuilt with a note', async () => {
  const dir = join(root, 'b');
  const store = new SnapshotStore(dir);
  await saveFake(store, { nonce: 'abcd', agentSeq: 2 });
  const s = await planCellStart({ machine, images, snapshotDir: dir, ...regions });
  assert.ok(s.restore !== undefined);
  assert.is(s.nonce, 'abcd');
  assert.is(s.agentSeq, 2);
  assert.is(s.initrd, undefined);

  const other = await planCellStart({
    machine: { ...machine, topology: '1n1l4c1t' },
    images,
    snapshotDir: dir,
    ...regions,
  });
  assert.is(other.restore, undefined, 'another topology is another machine');

  writeFileSync(join(store.dir(cellSnapshotKey(machine, 'agent-1')), RAM_FILE), 'short');
  const damaged = await planCellStart({ machine, images, snapshotDir: dir, ...regions });
  assert.is(damaged.restore, undefined);
  assert.ok(damaged.save !== undefined);
  assert.match(damaged.note ?? '', /unusable \(its RAM file is 5 bytes, 1048576 expected.*\): rebuilt/);

  await saveFake(store, null);
  const noAgent = await planCellStart({ machine, images, snapshotDir: dir, ...regions });
  assert.is(noAgent.restore, undefined);
  assert.match(noAgent.note ?? '', /had no agent state: rebuilt/);
});

test('a snapshot KVM refused to restore: removed, the cell boots cold and saves anew, with a note', async () => {
  const dir = join(root, 'refused');
  const store = new SnapshotStore(dir);
  await saveFake(store, { nonce: 'abcd', agentSeq: 2 });
  assert.ok((await planCellStart({ machine, images, snapshotDir: dir, ...regions })).restore !== undefined);
  const s = await planCellStart({
    machine,
    images,
    snapshotDir: dir,
    ...regions,
    refused: 'KVM_SET_XSAVE: Invalid argument',
  });
  assert.is(s.restore, undefined);
  assert.ok(s.initrd !== undefined && s.save !== undefined, 'cold, saving');
  assert.is(s.agentSeq, 0);
  assert.not.equal(s.nonce, 'abcd', 'a fresh nonce');
  assert.match(s.note ?? '', /^snapshot not restored \(KVM_SET_XSAVE: Invalid argument\): booted cold, rebuilt$/);
  assert.is(store.list().length, 0, 'the refused snapshot is gone');
});

test('the key changes with every field of the machine and the agent', () => {
  const base = JSON.stringify(cellSnapshotKey(machine, 'agent-1'));
  for (const change of [
    { kernelLabel: 'x' },
    { topology: '2n1l1c1t' },
    { memoryMiB: 2 },
    { sharedRegionMiB: 8 },
    { cmdline: 'loud' },
  ]) {
    assert.not.equal(
      JSON.stringify(cellSnapshotKey({ ...machine, ...change }, 'agent-1')),
      base,
      JSON.stringify(change),
    );
  }
  assert.not.equal(JSON.stringify(cellSnapshotKey(machine, 'agent-2')), base);
  writeFileSync(kernelImage, 'another kernel');
  assert.not.equal(JSON.stringify(cellSnapshotKey(machine, 'agent-1')), base, 'the kernel bytes');
});

test("a vmlinux's identity is its GNU build ID (from its notes); an image without one is hashed", () => {
  // Node's own binary is an ELF with a GNU build ID, as a vmlinux is; the expected ID is
  // found in its bytes as the note itself: namesz 4, descsz 20, type 3 (NT_GNU_BUILD_ID), "GNU\0"
  const node = realpathSync(process.execPath);
  const id = String(cellSnapshotKey({ ...machine, kernelImage: node }, 'agent-1').kernelId);
  const image = readFileSync(node);
  const header = Buffer.from([4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0x47, 0x4e, 0x55, 0]);
  const at = image.indexOf(header);
  assert.ok(at >= 0, 'a GNU build-ID note in the node binary');
  assert.is(id, `build-id:${image.subarray(at + 16, at + 36).toString('hex')}`);
  const copy = join(root, 'elf-copy');
  // the same ELF with one byte changed outside its notes: still the same build ID (it names the build)
  image[image.length - 1] ^= 1;
  writeFileSync(copy, image);
  assert.is(String(cellSnapshotKey({ ...machine, kernelImage: copy }, 'agent-1').kernelId), id);
  // not an ELF: SHA-256 of the bytes
  assert.match(String(cellSnapshotKey(machine, 'agent-1').kernelId), /^[0-9a-f]{32}$/);
});

test('handCell: plan and files in the mailbox, a frame saying where; too big is an error', () => {
  const memory = new GuestMemory(2 ** 20);
  const sent: CellMessage[] = [];
  const live = { memory, app: () => 0 } as unknown as LiveVm;
  const plan = { version: 1, mailbox: regions.mailbox } as unknown as AgentPlan;
  const archive = Uint8Array.of(1, 2, 3, 4);
  handCell(live, plan, archive, (m) => {
    sent.push(m);
    return new Uint8Array(0);
  });
  const m = sent[0];
  const planBytes = memory.read(regions.mailbox.guestPhysAddr, m.plan.length);
  assert.equal(JSON.parse(Buffer.from(planBytes).toString()), plan);
  assert.is(m.plan.crc, crc32(planBytes));
  assert.equal([...memory.read(regions.mailbox.guestPhysAddr + m.archive.offset, 4)], [1, 2, 3, 4]);
  assert.is(m.archive.crc, crc32(archive));
  assert.match(m.seed, /^[0-9a-f]{128}$/);
  assert.ok(Math.abs(m.realtimeMs - Date.now()) < 5000);
  assert.throws(
    () => handCell(live, plan, new Uint8Array(0x1000), () => new Uint8Array(0)),
    /more than the .* MiB mailbox/,
  );
});

const part = (args: string[], binary = 'scheduler bytes'): AttachedPart => ({
  plan: {
    version: 1,
    nonce: 'n1',
    cell: 'test/one',
    scheduler: { name: 'scx-ktstr', path: '/sched/scx_ktstr', args },
    attachTimeoutMs: 30_000,
    probeMs: 2000,
    stopTimeoutMs: 15_000,
    hostReadTimeoutMs: 30_000,
    ...regions,
    test: null,
    awaitBody: true,
  },
  archive: Buffer.from(binary),
});
const machineKey = (): ReturnType<typeof cellSnapshotKey> => cellSnapshotKey(machine, 'agent-1');

test('the attached key: the machine key and the scheduler part; not the per-cell fields', () => {
  const a = attachedSnapshotKey(machineKey(), part([]));
  assert.equal({ ...a, attached: undefined }, { ...machineKey(), attached: undefined }, 'the machine key within');
  const same = part([]);
  same.plan = { ...same.plan, nonce: 'n2', cell: 'test/two', ring: null, mailbox: null };
  assert.is(attachedSnapshotKey(machineKey(), same).attached, a.attached, 'nonce, cell name and regions aside');
  assert.is.not(attachedSnapshotKey(machineKey(), part(['--starve-cgroup', 'b'])).attached, a.attached, 'arguments');
  assert.is.not(attachedSnapshotKey(machineKey(), part([], 'other bytes')).attached, a.attached, 'the binary');
  const slower = part([]);
  slower.plan = { ...slower.plan, attachTimeoutMs: 1 };
  assert.is.not(attachedSnapshotKey(machineKey(), slower).attached, a.attached, 'a timeout');
});

test('a test cell: restored at attached when that snapshot stands, else from ready saving it, else cold saving both', async () => {
  const dir = join(root, 'attached');
  const attached = part([]);
  const cold = await planCellStart({ machine, images, snapshotDir: dir, ...regions, attached });
  assert.ok(
    cold.initrd !== undefined && cold.save !== undefined && cold.saveAttached !== undefined,
    'cold, saving both',
  );
  assert.is(cold.hostSeq, 0);
  assert.equal(cold.saveAttached?.key, attachedSnapshotKey(machineKey(), attached));

  const store = new SnapshotStore(dir, 3);
  await saveFake(store, { nonce: 'abcd', agentSeq: 2, hostSeq: 0, point: 'ready' });
  const fromReady = await planCellStart({ machine, images, snapshotDir: dir, ...regions, attached });
  assert.is(fromReady.restoredAt, 'ready');
  assert.is(fromReady.save, undefined);
  assert.ok(fromReady.saveAttached !== undefined, 'saves the attached point');

  const key = attachedSnapshotKey(machineKey(), attached);
  await store.save(key, (staging) => {
    writeFileSync(join(staging, RAM_FILE), Buffer.alloc(2 ** 20));
    writeFileSync(
      join(staging, STATE_FILE),
      encodeState({ extra: { nonce: 'beef', agentSeq: 5, hostSeq: 2, point: 'attached' } } as never),
    );
  });
  const fromAttached = await planCellStart({ machine, images, snapshotDir: dir, ...regions, attached });
  assert.is(fromAttached.restoredAt, 'attached');
  assert.is(fromAttached.nonce, 'beef');
  assert.is(fromAttached.agentSeq, 5);
  assert.is(fromAttached.hostSeq, 2, "the host's frames go on from the saving host's");
  assert.is(fromAttached.saveAttached, undefined);

  const other = await planCellStart({ machine, images, snapshotDir: dir, ...regions, attached: part(['-v']) });
  assert.is(other.restoredAt, 'ready', 'other arguments: from ready');

  // a state saved at ready under the attached key is not an attached point: rebuilt
  store.remove(key);
  await store.save(key, (staging) => {
    writeFileSync(join(staging, RAM_FILE), Buffer.alloc(2 ** 20));
    writeFileSync(join(staging, STATE_FILE), encodeState({ extra: { nonce: 'beef', agentSeq: 5 } } as never));
  });
  const wrong = await planCellStart({ machine, images, snapshotDir: dir, ...regions, attached });
  assert.is(wrong.restoredAt, 'ready');
  assert.match(wrong.note ?? '', /had no agent state: rebuilt/);

  const refused = await planCellStart({ machine, images, snapshotDir: dir, ...regions, attached, refused: 'EINVAL' });
  assert.ok(refused.save !== undefined && refused.saveAttached !== undefined);
  assert.is(store.list().length, 0, 'both points removed');
});

test.run();
