// Node file sink for src/monitor/core-writer.ts: writes a guest core to `path` sparsely
// (positioned writes skip the all-zero pages, then the file is extended to its full length,
// so those pages are holes) and atomically (a temporary name in the same directory, renamed
// at the end; removed on any failure). Reports the apparent size and what the disk holds.

import { closeSync, fstatSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeCore, type CoreInput, type CoreWriteStats } from '../monitor/core-writer.js';

export interface CoreFileStats extends CoreWriteStats {
  /** Bytes the file occupies on disk (st_blocks × 512): the non-zero pages plus headers. */
  diskBytes: number;
}

export function writeCoreFile(path: string, input: CoreInput): CoreFileStats {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  let ok = false;
  try {
    const stats = writeCore(input, {
      write: (bytes, position) => {
        for (let done = 0; done < bytes.length;)
          done += writeSync(fd, bytes, done, bytes.length - done, position + done);
      },
    });
    ftruncateSync(fd, stats.fileBytes);
    const st = fstatSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
    ok = true;
    return { ...stats, diskBytes: st.blocks * 512 };
  } finally {
    if (!ok) {
      try {
        closeSync(fd);
      } catch {
        /* closed already */
      }
      rmSync(tmp, { force: true });
    }
  }
}
