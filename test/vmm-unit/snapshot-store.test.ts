// Snapshot files without KVM: the state file keeps KVM blobs and 64-bit values and catches
// damage; the RAM file is written sparse and copied back (a write to the restored memory never
// reaches the file); the store makes an entry appear only whole, refuses a damaged
// one (removing it, so it is rebuilt), and a saver killed half-way leaves no entry.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../src/kvm/native.js';
import { GuestMemory } from '../../src/vmm/memory.js';
import { copyRamFile, refreshRamFile, writeRamFile } from '../../src/vmm/snapshot/ram-file.js';
import { decodeState, encodeState, SnapshotStateError } from '../../src/vmm/snapshot/state-file.js';
import { RAM_FILE, SnapshotStore, snapshotId, STATE_FILE } from '../../src/vmm/snapshot/store.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'ktstr-snapshot-unit-'));
  dirs.push(d);
  return d;
};
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('state file: blobs and 64-bit values come back as they were; damage and other formats are refused', () => {
  const state = {
    vcpus: [{ regs: Uint8Array.of(1, 2, 255), tsc: 0xffff_ffff_ffff_fff0n, mp: 3 }],
    name: 'x',
    none: null,
  };
  const text = encodeState(state);
  const back = decodeState(text) as typeof state;
  assert.equal([...back.vcpus[0].regs], [1, 2, 255]);
  assert.ok(back.vcpus[0].regs instanceof Uint8Array);
  assert.is(back.vcpus[0].tsc, 0xffff_ffff_ffff_fff0n);
  assert.is(back.vcpus[0].mp, 3);
  assert.is(back.none, null);
  assert.throws(() => decodeState(text.replace('"mp":3', '"mp":4')), /checksum mismatch/);
  assert.throws(() => decodeState(text.replace('"format":1', '"format":9')), /format 9/);
  assert.throws(
    () => decodeState('garbage'),
    (e: unknown) => e instanceof SnapshotStateError,
  );
  assert.throws(
    () => decodeState(''),
    (e: unknown) => e instanceof SnapshotStateError,
  );
});

test('RAM file: written sparse, copied back (the copy changes, the file does not)', () => {
  const dir = tempDir();
  const n = native();
  const memory = new GuestMemory(8 * 2 ** 20, (b) => n.sharedBufferAddress(b));
  memory.write(0x1000, Uint8Array.of(0xaa, 0xbb));
  memory.write(0x700000, new Uint8Array(70_000).fill(7));
  const path = join(dir, 'ram');
  const { bytes, dataBytes, extents } = writeRamFile(path, memory);
  assert.is(bytes, 8 * 2 ** 20);
  assert.is(dataBytes, 3 * 64 * 1024, 'three 64 KiB blocks hold data');
  assert.equal(
    extents,
    [
      [0, 64 * 1024],
      [0x700000, 2 * 64 * 1024],
    ],
    'two runs of data: the adjacent blocks merged',
  );
  assert.throws(() => writeRamFile(path, memory), /EEXIST/, 'never overwrites');
  const restored = new GuestMemory(8 * 2 ** 20, (b) => n.sharedBufferAddress(b));
  copyRamFile(path, restored, extents);
  assert.equal([...restored.read(0x1000, 2)], [0xaa, 0xbb]);
  assert.is(restored.read(0x700000 + 69_999, 1)[0], 7);
  assert.is(restored.read(0x400000, 1)[0], 0);
  restored.write(0x1000, Uint8Array.of(0x11));
  assert.is(restored.read(0x1000, 1)[0], 0x11);
  assert.is(readFileSync(path)[0x1000], 0xaa, 'the write stayed in the copy');
  const other = new GuestMemory(4 * 2 ** 20, (b) => n.sharedBufferAddress(b));
  assert.throws(() => copyRamFile(path, other, extents), /truncated or not this VM's/);
  const fresh = (): GuestMemory => new GuestMemory(8 * 2 ** 20, (b) => n.sharedBufferAddress(b));
  for (const bad of [
    [8 * 2 ** 20 - 4096, 8192],
    [-1, 10],
    [0, 0],
    [1.5, 2],
  ] as [number, number][])
    assert.throws(() => copyRamFile(path, fresh(), [bad]), /does not fit guest RAM/, `extent ${bad}`);
});

test('RAM file: the pages named free are left out (holes), the rest of their blocks kept', () => {
  const dir = tempDir();
  const n = native();
  const memory = new GuestMemory(8 * 2 ** 20, (b) => n.sharedBufferAddress(b));
  memory.write(0, new Uint8Array(256 * 1024).fill(5)); // four 64 KiB blocks of data
  memory.write(0x500000, new Uint8Array(4096).fill(9)); // one page of data, named free below
  const path = join(dir, 'ram');
  // free: the second block whole, two pages in the middle of the third, a partial page (kept), the lone page
  const free: [number, number][] = [
    [0x10000, 0x10000],
    [0x24000, 0x2000],
    [0x3f800, 0x400],
    [0x500000, 0x1000],
  ];
  const { dataBytes, freeBytes, extents } = writeRamFile(path, memory, free);
  assert.is(freeBytes, 0x10000 + 0x2000 + 0x1000, 'the whole free pages of data blocks');
  // the lone page's block keeps its other (zero) pages: the zero check is per block
  assert.is(dataBytes, 0x40000 - 0x10000 - 0x2000 + 0xf000);
  assert.equal(extents, [
    [0, 0x10000],
    [0x20000, 0x4000],
    [0x26000, 0x1a000],
    [0x501000, 0xf000],
  ]);
  const restored = new GuestMemory(8 * 2 ** 20, (b) => n.sharedBufferAddress(b));
  copyRamFile(path, restored, extents);
  assert.is(restored.read(0x0ffff, 1)[0], 5);
  assert.is(restored.read(0x10000, 1)[0], 0, 'a free page comes back zero');
  assert.is(restored.read(0x23fff, 1)[0], 5);
  assert.is(restored.read(0x24000, 1)[0], 0);
  assert.is(restored.read(0x26000, 1)[0], 5);
  assert.is(restored.read(0x3f900, 1)[0], 5, 'a page only partly named free is kept');
  assert.is(restored.read(0x500000, 1)[0], 0);
});

test('RAM file into memory that held another guest: equal to a fresh copy, only the differing pages written', () => {
  const dir = tempDir();
  const n = native();
  const size = 8 * 2 ** 20;
  const memory = new GuestMemory(size, (b) => n.sharedBufferAddress(b));
  memory.write(
    0x10000,
    new Uint8Array(0x30000).map((_, i) => (i * 7 + 1) & 255),
  );
  memory.write(0x7ff000, new Uint8Array(0x1000).fill(3)); // the last page of RAM
  const path = join(dir, 'ram');
  const { extents, freeExtents } = writeRamFile(path, memory, [
    [0x20000, 0x2000], // two free pages of data: holes
    [0x600000, 0x3000], // three free pages of zeros
  ]);
  assert.equal(freeExtents, [
    [0x20000, 0x2000],
    [0x600000, 0x3000],
  ]);
  const expected = new GuestMemory(size, (b) => n.sharedBufferAddress(b));
  copyRamFile(path, expected, extents);

  // the last guest: the snapshot's contents, then three pages of data changed, a page of a
  // hole written, the free pages holding stale bytes
  const used = new GuestMemory(size, (b) => n.sharedBufferAddress(b));
  copyRamFile(path, used, extents);
  used.write(0x11000, new Uint8Array(0x1000).fill(9));
  used.write(0x35000, new Uint8Array(0x2000).fill(9)); // two pages
  used.write(0x400000, new Uint8Array(0x10).fill(9)); // part of a page in a hole
  used.write(0x20000, new Uint8Array(0x2000).fill(8)); // the free pages
  const written = refreshRamFile(path, used, extents);
  assert.is(written, 6 * 0x1000, 'the three data pages, the hole page and the two free pages, nothing else');
  assert.ok(Buffer.compare(used.read(0, size), expected.read(0, size)) === 0, 'every byte as a fresh copy');
  assert.is(refreshRamFile(path, used, extents), 0, 'a second refresh writes nothing');

  // the free pages named: left as they are (stale bytes stay), everything else as before
  used.write(0x11000, new Uint8Array(0x1000).fill(9));
  used.write(0x20000, new Uint8Array(0x2000).fill(8));
  used.write(0x601000, new Uint8Array(0x3000).fill(8)); // two free pages, one not
  assert.is(
    refreshRamFile(path, used, extents, freeExtents),
    2 * 0x1000,
    'a data page and the page after the free ones',
  );
  assert.is(used.read(0x20000, 1)[0], 8, 'a free page keeps what it held');
  assert.is(used.read(0x602fff, 1)[0], 8);
  assert.is(used.read(0x603000, 1)[0], 0, 'the page after them zeroed');
  used.fill(0x20000, 0x2000, 0);
  used.fill(0x600000, 0x3000, 0);
  assert.ok(Buffer.compare(used.read(0, size), expected.read(0, size)) === 0, 'the rest as a fresh copy');

  // memory of any contents comes out the same
  const garbage = new GuestMemory(size, (b) => n.sharedBufferAddress(b));
  garbage.fill(0, size, 0x5a);
  assert.is(refreshRamFile(path, garbage, extents), size, 'every page differed');
  assert.ok(Buffer.compare(garbage.read(0, size), expected.read(0, size)) === 0);

  // the checks of copyRamFile, and extents out of order
  const other = new GuestMemory(4 * 2 ** 20, (b) => n.sharedBufferAddress(b));
  assert.throws(() => refreshRamFile(path, other, extents), /truncated or not this VM's/);
  assert.throws(() => refreshRamFile(path, used, [[size - 0x1000, 0x2000]]), /does not fit guest RAM/);
  assert.throws(() => refreshRamFile(path, used, [...extents].reverse()), /overlaps the one before/);
  assert.throws(() => refreshRamFile(path, used, extents, [...freeExtents].reverse()), /out of order/);
  assert.throws(() => refreshRamFile(path, used, extents, [[size - 0x1000, 0x2000]]), /free range .* does not fit/);
});

const key = { kernel: 'k1', topology: '1n1l2c1t', memoryMiB: 8, agent: '1', cmdline: 'quiet' };
const writeEntry = (staging: string): void => {
  writeFileSync(join(staging, RAM_FILE), Buffer.alloc(4096, 1));
  writeFileSync(join(staging, STATE_FILE), encodeState({ machine: 'm' }));
};

test('store: an entry appears whole; a second save finds it; damage removes it', async () => {
  const store = new SnapshotStore(join(tempDir(), 'snapshots'));
  assert.is(store.open(key, 4096).kind, 'missing');
  assert.is(await store.save(key, writeEntry), true);
  assert.is(await store.save(key, writeEntry), false, 'already there');
  const ok = store.open(key, 4096);
  assert.is(ok.kind, 'ok');
  if (ok.kind === 'ok') assert.equal(ok.snapshot.state, { machine: 'm' });
  assert.is(store.list().length, 1);
  assert.is(store.list()[0].id, snapshotId(key));
  assert.not.equal(snapshotId(key), snapshotId({ ...key, cmdline: 'loud' }), 'every field is in the id');

  const statePath = join(store.dir(key), STATE_FILE);
  writeFileSync(statePath, readFileSync(statePath, 'utf8').replace('"m"', '"n"'));
  const damaged = store.open(key, 4096);
  assert.is(damaged.kind, 'damaged');
  if (damaged.kind === 'damaged') assert.match(damaged.reason, /checksum mismatch/);
  assert.not.ok(existsSync(store.dir(key)), 'a damaged entry is removed');

  await store.save(key, writeEntry);
  truncateSync(join(store.dir(key), RAM_FILE), 100);
  const truncated = store.open(key, 4096);
  assert.is(truncated.kind, 'damaged');
  if (truncated.kind === 'damaged') assert.match(truncated.reason, /100 bytes, 4096 expected/);
  let threw: unknown;
  await store
    .save(key, () => {
      throw new Error('disk full');
    })
    .catch((e: unknown) => (threw = e));
  assert.match(String(threw), /disk full/);
  assert.equal(readdirSync(store.root), [], 'no entry, staging directory or lock left by a failed save');
});

test('store: a save keeps the most recently used entries', async () => {
  const store = new SnapshotStore(join(tempDir(), 'snapshots'), 2);
  const k = (n: number) => ({ ...key, cmdline: `c${n}` });
  await store.save(k(1), writeEntry);
  await new Promise((r) => setTimeout(r, 20));
  await store.save(k(2), writeEntry);
  await new Promise((r) => setTimeout(r, 20));
  assert.is(store.open(k(1), 4096).kind, 'ok', 'used again: now the newest');
  await new Promise((r) => setTimeout(r, 20));
  await store.save(k(3), writeEntry);
  assert.equal(
    store
      .list()
      .map((e) => e.id)
      .sort(),
    [snapshotId(k(1)), snapshotId(k(3))].sort(),
  );
});

test('store: a saver killed half-way leaves no entry; the next saver clears its leftovers', async () => {
  const root = join(tempDir(), 'snapshots');
  const storeUrl = pathToFileURL(join(import.meta.dirname, '../../src/vmm/snapshot/store.js')).href;
  const script = `
    import { SnapshotStore } from ${JSON.stringify(storeUrl)};
    import { writeFileSync } from 'node:fs';
    await new SnapshotStore(${JSON.stringify(root)}).save(${JSON.stringify(key)}, async (staging) => {
      writeFileSync(staging + '/ram', Buffer.alloc(4096));
      console.log('writing');
      await new Promise(() => setInterval(() => {}, 1000));
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((res) => child.stdout.once('data', () => res()));
  child.kill('SIGKILL');
  await new Promise((res) => child.once('close', res));
  const store = new SnapshotStore(root);
  assert.is(store.open(key, 4096).kind, 'missing', 'no entry from the killed save');
  assert.ok(
    readdirSync(root).some((n) => n.startsWith('.tmp-')),
    'its staging directory is there',
  );
  assert.is(await store.save(key, writeEntry, 5_000), true, 'the stale lock is broken');
  assert.equal(readdirSync(root), [snapshotId(key)], 'the staging directory is gone');
});

test.run();
