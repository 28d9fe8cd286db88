// Unpacks a cell's cpio archive into the guest's file system from inside the agent: what
// `busybox cpio -idmu` did (leading directories made, modification times kept, existing paths
// replaced), without a process to spawn — a fork and exec cost a nested guest tens to hundreds
// of milliseconds, and the bytes were already in the agent's memory. Directories, regular files
// and symbolic links; any other entry type (devices, FIFOs) is refused, as the host never packs one.

import {
  chmodSync,
  closeSync,
  fchmodSync,
  futimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { readCpio, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../cpio.js';

export class ArchiveUnpackError extends Error {}

/** Removes the file or link at `path`; nothing there is fine, a directory there is an error. */
function clear(path: string): void {
  rmSync(path, { force: true });
}

function writeRegular(path: string, data: Uint8Array, mode: number, mtime: number): void {
  clear(path); // unlink, not truncate: a running binary of the old cell stays intact (no ETXTBSY)
  const fd = openSync(path, 'wx', mode & 0o7777);
  try {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done);
    fchmodSync(fd, mode & 0o7777); // the umask narrowed the mode openSync asked for
    futimesSync(fd, mtime, mtime);
  } finally {
    closeSync(fd);
  }
}

/**
 * Unpacks the newc archive(s) in `bytes` under `root` (default `/`) and returns how many
 * entries it wrote. Archive names are made absolute and normalised first, so none reaches
 * above `root`. Throws ArchiveUnpackError naming the entry that could not be written.
 */
export function unpackArchive(bytes: Uint8Array, root = '/'): number {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let entries;
  try {
    entries = readCpio(buf);
  } catch (e) {
    throw new ArchiveUnpackError(`the archive is not a cpio archive: ${(e as Error).message}`);
  }
  for (const e of entries) {
    const path = join(root, posix.normalize(e.path));
    const type = e.mode & S_IFMT;
    try {
      if (type === S_IFDIR) {
        mkdirSync(path, { recursive: true });
        chmodSync(path, e.mode & 0o7777);
        continue;
      }
      mkdirSync(dirname(path), { recursive: true });
      if (type === S_IFREG) writeRegular(path, e.data, e.mode, e.mtime);
      else if (type === S_IFLNK) {
        clear(path);
        symlinkSync(e.data.toString('utf8'), path);
      } else throw new Error(`entry type 0o${type.toString(8)} is not unpacked (only directories, files, links)`);
    } catch (err) {
      throw new ArchiveUnpackError(`cannot unpack ${e.path}: ${(err as Error).message}`);
    }
  }
  return entries.length;
}
