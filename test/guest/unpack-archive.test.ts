// The agent's in-process cpio unpacking (what `busybox cpio -idmu` did in a cell's hand-off):
// files with their modes, times and bytes, directories, links, parents made, existing paths
// replaced (a file by a link, a link by a file), nothing written above the root, device
// entries and garbage refused with the entry or the reason named.

import { randomBytes } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildCpio } from '../../src/guest/cpio.js';
import { ArchiveUnpackError, unpackArchive } from '../../src/guest/agent/unpack-archive.js';

let tmp: string;
let n = 0;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-unpack-'));
});
test.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});
const freshRoot = (): string => {
  const root = join(tmp, `root${n++}`);
  mkdirSync(root);
  return root;
};

test('files, directories and links arrive with their bytes, modes and times; parents are made', async () => {
  const big = randomBytes(3 << 20);
  const archive = await buildCpio(async (w) => {
    await w.directory('/etc', { mode: 0o750 });
    await w.file('/etc/hostname', 'ktstr\n', { mode: 0o640, mtime: 1_700_000_001 });
    await w.file('/opt/sched/bin/scx_x', big, { mode: 0o755, mtime: 1_700_000_002 });
    await w.file('/opt/sched/setuid', 'x', { mode: 0o4755 });
    await w.symlink('/opt/sched/lib', '../lib64');
  });
  const root = freshRoot();
  const count = unpackArchive(archive, root);
  assert.ok(count >= 5, `entries written: ${count}`);
  assert.is(readFileSync(join(root, 'etc/hostname'), 'utf8'), 'ktstr\n');
  assert.is(lstatSync(join(root, 'etc')).mode & 0o7777, 0o750);
  assert.is(lstatSync(join(root, 'etc/hostname')).mode & 0o7777, 0o640);
  assert.is(lstatSync(join(root, 'etc/hostname')).mtimeMs, 1_700_000_001_000);
  assert.ok(readFileSync(join(root, 'opt/sched/bin/scx_x')).equals(big));
  assert.is(lstatSync(join(root, 'opt/sched/bin/scx_x')).mode & 0o7777, 0o755);
  assert.is(lstatSync(join(root, 'opt/sched/setuid')).mode & 0o7777, 0o4755, 'the umask does not narrow a mode');
  assert.ok(lstatSync(join(root, 'opt/sched/lib')).isSymbolicLink());
  assert.is(readlinkSync(join(root, 'opt/sched/lib')), '../lib64');
});

test('existing paths are replaced: a file by a link, a link by a file, a file by a new file (not written through)', async () => {
  const root = freshRoot();
  mkdirSync(join(root, 'bin'));
  writeFileSync(join(root, 'bin/was-file'), 'old');
  writeFileSync(join(root, 'target'), 'must stay');
  symlinkSync(join(root, 'target'), join(root, 'bin/was-link'));
  writeFileSync(join(root, 'bin/tool'), 'old tool, longer than the new one');
  const archive = await buildCpio(async (w) => {
    await w.symlink('/bin/was-file', 'tool');
    await w.file('/bin/was-link', 'new file', { mode: 0o644 });
    await w.file('/bin/tool', 'new', { mode: 0o755 });
  });
  unpackArchive(archive, root);
  assert.is(readlinkSync(join(root, 'bin/was-file')), 'tool');
  assert.ok(lstatSync(join(root, 'bin/was-link')).isFile());
  assert.is(readFileSync(join(root, 'bin/was-link'), 'utf8'), 'new file');
  assert.is(readFileSync(join(root, 'target'), 'utf8'), 'must stay', 'a link is replaced, not written through');
  assert.is(readFileSync(join(root, 'bin/tool'), 'utf8'), 'new');
});

test('names climbing above the root stay under it', async () => {
  const root = freshRoot();
  const header = (name: string, mode: number, size: number): string =>
    '070701' +
    [1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, name.length + 1, 0].map((v) => v.toString(16).padStart(8, '0')).join('');
  const pad = (len: number): string => '\0'.repeat((4 - (len % 4)) % 4);
  const entry = (name: string, data: string): string =>
    header(name, 0o100644, data.length) + name + '\0' + pad(110 + name.length + 1) + data + pad(data.length);
  const archive = Buffer.from(entry('../../escaped', 'x') + entry('TRAILER!!!', ''), 'latin1');
  unpackArchive(archive, root);
  assert.is(readFileSync(join(root, 'escaped'), 'utf8'), 'x');
  assert.equal(readdirSync(join(root, '..')).includes('escaped'), false);
});

test("device entries, a directory in a file's way and garbage are refused, naming the entry or the reason", async () => {
  const dev = await buildCpio(async (w) => {
    await w.charDevice('/dev/console', 5, 1);
  });
  assert.throws(
    () => unpackArchive(dev, freshRoot()),
    (e: unknown) => e instanceof ArchiveUnpackError && /\/dev\/console: entry type/.test((e as Error).message),
  );

  const root = freshRoot();
  mkdirSync(join(root, 'busy'));
  const file = await buildCpio(async (w) => {
    await w.file('/busy', 'x');
  });
  assert.throws(() => unpackArchive(file, root), /cannot unpack \/busy/);

  assert.throws(
    () => unpackArchive(Buffer.from('not an archive at all, just text'), freshRoot()),
    /not a cpio archive/,
  );
  const bad = Buffer.from(file);
  bad.write('zzzzzzzz', 6 + 6 * 8, 'latin1'); // the size field
  assert.throws(() => unpackArchive(bad, freshRoot()), /header field "zzzzzzzz"/);
  const truncated = file.subarray(0, 113); // in the name: its data is missing
  assert.throws(() => unpackArchive(truncated, freshRoot()), /truncated/);
});

test.run();
