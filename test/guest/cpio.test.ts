// The newc writer: parsed back by our reader and by busybox cpio (listing and extraction),
// parents created, each path once, host paths copied with their symlink chains, streamed
// large files, concatenated archives.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  buildCpio,
  CpioWriter,
  FileSink,
  readCpio,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from '../../src/guest/cpio.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

let tmp: string;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-cpio-'));
});
test.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const sample = (): Promise<Buffer> =>
  buildCpio(async (w) => {
    await w.directory('/etc', { mode: 0o755, mtime: 1_700_000_000 });
    await w.file('/etc/hostname', 'ktstr\n', { mode: 0o644, mtime: 1_700_000_001 });
    await w.file('/usr/bin/tool', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]), { mode: 0o755 });
    await w.symlink('/bin', 'usr/bin');
    await w.charDevice('/dev/console', 5, 1);
    await w.file('/a/b/c/odd name-ü.txt', 'x'); // parents a, a/b, a/b/c created
    await w.file('/etc/hostname', 'second write is ignored\n');
  });

test('round trip through readCpio: types, modes, data, parents first, each path once', async () => {
  const buf = await sample();
  assert.is(buf.length % 4, 0);
  const entries = readCpio(buf);
  const paths = entries.map((e) => e.path);
  assert.equal(paths, [
    '/etc',
    '/etc/hostname',
    '/usr',
    '/usr/bin',
    '/usr/bin/tool',
    '/bin',
    '/dev',
    '/dev/console',
    '/a',
    '/a/b',
    '/a/b/c',
    '/a/b/c/odd name-ü.txt',
  ]);
  const by = new Map(entries.map((e) => [e.path, e]));
  assert.is(by.get('/etc')!.mode, S_IFDIR | 0o755);
  assert.is(by.get('/etc')!.mtime, 1_700_000_000);
  assert.is(by.get('/etc/hostname')!.mode, S_IFREG | 0o644);
  assert.is(by.get('/etc/hostname')!.data.toString(), 'ktstr\n');
  assert.is(by.get('/usr/bin/tool')!.mode, S_IFREG | 0o755);
  assert.equal([...by.get('/usr/bin/tool')!.data], [0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]);
  assert.is(by.get('/bin')!.mode & S_IFMT, S_IFLNK);
  assert.is(by.get('/bin')!.data.toString(), 'usr/bin');
  assert.is(by.get('/dev/console')!.mode, S_IFCHR | 0o600);
  assert.is(by.get('/dev/console')!.rdevMajor, 5);
  assert.is(by.get('/dev/console')!.rdevMinor, 1);
  assert.is(by.get('/usr')!.mode, S_IFDIR | 0o755, 'created parent');
  assert.is(new Set(entries.map((e) => e.ino)).size, entries.length, 'inode numbers are unique');
  assert.ok(entries.every((e) => e.nlink === ((e.mode & S_IFMT) === S_IFDIR ? 2 : 1)));
  assert.ok(buf.includes(Buffer.from('TRAILER!!!\0')));
});

test('busybox cpio lists and extracts what we write', async () => {
  if (BUSYBOX === undefined) {
    console.log('  (busybox not installed: skipped)');
    return;
  }
  const buf = await buildCpio(async (w) => {
    await w.file('/etc/hostname', 'ktstr\n', { mode: 0o640 });
    await w.file('/usr/bin/tool', 'exe', { mode: 0o755 });
    await w.file('/empty', '');
    await w.file('/three', 'abc'); // sizes not multiple of 4 exercise the padding
    await w.symlink('/bin', 'usr/bin');
    await w.directory('/var/tmp', { mode: 0o1777 });
  });
  const archive = join(tmp, 'a.cpio');
  writeFileSync(archive, buf);
  const list = spawnSync(BUSYBOX, ['cpio', '-t', '-F', archive], { encoding: 'utf8' });
  assert.is(list.status, 0, list.stderr);
  assert.equal(list.stdout.trim().split('\n'), [
    'etc',
    'etc/hostname',
    'usr',
    'usr/bin',
    'usr/bin/tool',
    'empty',
    'three',
    'bin',
    'var',
    'var/tmp',
  ]);
  const out = join(tmp, 'extract');
  mkdirSync(out);
  const x = spawnSync(BUSYBOX, ['cpio', '-i', '-d', '-m', '-F', archive], { cwd: out, encoding: 'utf8' });
  assert.is(x.status, 0, x.stderr);
  assert.is(readFileSync(join(out, 'etc/hostname'), 'utf8'), 'ktstr\n');
  assert.is(lstatSync(join(out, 'etc/hostname')).mode & 0o777, 0o640);
  assert.is(readFileSync(join(out, 'usr/bin/tool'), 'utf8'), 'exe');
  assert.is(lstatSync(join(out, 'usr/bin/tool')).mode & 0o777, 0o755);
  assert.is(readFileSync(join(out, 'empty'), 'utf8'), '');
  assert.is(readFileSync(join(out, 'three'), 'utf8'), 'abc');
  assert.is(readlinkSync(join(out, 'bin')), 'usr/bin');
  assert.is(readFileSync(join(out, 'bin/tool'), 'utf8'), 'exe', 'through the symlink');
});

test('hostPath reproduces symlink chains and copies the real file; hostTree copies a tree', async () => {
  const root = join(tmp, 'host');
  mkdirSync(join(root, 'usr', 'lib'), { recursive: true });
  writeFileSync(join(root, 'usr', 'lib', 'libx.so.1.2'), 'library');
  symlinkSync('libx.so.1.2', join(root, 'usr', 'lib', 'libx.so.1'));
  symlinkSync('usr/lib', join(root, 'lib'));
  mkdirSync(join(root, 'tree', 'sub'), { recursive: true });
  writeFileSync(join(root, 'tree', 'sub', 'f'), 'f');
  symlinkSync('../sub/f', join(root, 'tree', 'link'));
  mkdirSync(join(root, 'tree', '.git'));
  writeFileSync(join(root, 'tree', '.git', 'HEAD'), 'ref');
  const buf = await buildCpio(async (w) => {
    const real = await w.hostPath(join(root, 'lib', 'libx.so.1'));
    assert.is(real, join(root, 'usr', 'lib', 'libx.so.1.2'));
    await w.hostTree(join(root, 'tree'), { exclude: (p) => p.endsWith('/.git') });
  });
  const by = new Map(readCpio(buf).map((e) => [e.path, e]));
  assert.is(by.get(join(root, 'lib'))!.data.toString(), 'usr/lib');
  assert.is(by.get(join(root, 'usr', 'lib', 'libx.so.1'))!.data.toString(), 'libx.so.1.2');
  assert.is(by.get(join(root, 'usr', 'lib', 'libx.so.1'))!.mode & S_IFMT, S_IFLNK);
  assert.is(by.get(join(root, 'usr', 'lib', 'libx.so.1.2'))!.data.toString(), 'library');
  assert.is(by.get(join(root, 'tree', 'sub', 'f'))!.data.toString(), 'f');
  assert.is(by.get(join(root, 'tree', 'link'))!.data.toString(), '../sub/f');
  assert.not.ok(by.has(join(root, 'tree', '.git')), 'excluded');
  assert.not.ok(by.has(join(root, 'tree', '.git', 'HEAD')));
  // every parent precedes its children
  const order = [...by.keys()];
  for (const [i, p] of order.entries()) {
    const parent = p.slice(0, p.lastIndexOf('/')) || '/';
    if (parent !== '/') assert.ok(order.indexOf(parent) >= 0 && order.indexOf(parent) < i, `${parent} before ${p}`);
  }
});

test('FileSink streams large host files; archives concatenate', async () => {
  const big = randomBytes(9 * 1024 * 1024 + 3);
  const bigPath = join(tmp, 'big.bin');
  writeFileSync(bigPath, big);
  const archive = join(tmp, 'two.cpio');
  const handle = await open(archive, 'w');
  let firstSize = 0;
  try {
    const sink = new FileSink(handle);
    const w1 = new CpioWriter(sink);
    await w1.hostFile('/big.bin', bigPath);
    await w1.finish();
    firstSize = w1.size;
    const w2 = new CpioWriter(sink, { firstInode: 1_000_000 });
    await w2.file('/second', 'two');
    await w2.file('/big.bin', 'replaced in the second archive');
    await w2.finish();
    await sink.flush();
  } finally {
    await handle.close();
  }
  const buf = readFileSync(archive);
  assert.is(firstSize % 4, 0);
  const entries = readCpio(buf);
  assert.equal(
    entries.map((e) => e.path),
    ['/big.bin', '/second', '/big.bin'],
  );
  assert.ok(entries[0]!.data.equals(big));
  assert.is(entries[2]!.data.toString(), 'replaced in the second archive');
});

test('readCpio rejects a bad magic and truncation', () => {
  assert.throws(() => readCpio(Buffer.from('070707' + '0'.repeat(104))), /bad cpio magic/);
  assert.throws(() => readCpio(Buffer.from('0707010000')), /truncated/);
});

test.run();
