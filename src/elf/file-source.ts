// Node-only: a ByteSource (./file.ts) over a file, read on demand with readSync at explicit
// offsets, so parsing the headers of a large ELF file reads only the bytes asked for. Every
// read is checked against the file size (taken once, when the source is made) and capped, so
// a hostile header cannot make it allocate more than MAX_READ bytes.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ElfError, type ByteSource } from './file.js';

/** The largest single read (a whole .symtab or .BTF section is far below this). */
export const MAX_READ = 512 * 1024 * 1024;

/** A ByteSource over an open file descriptor (the caller keeps it open while reading). */
export function fileSource(fd: number, label = 'file'): ByteSource {
  const size = fstatSync(fd).size;
  return {
    size,
    read(offset, len) {
      if (offset < 0 || len < 0 || offset + len > size)
        throw new ElfError(`${label}: read [${offset}, +${len}) past the end of the file (${size} bytes)`);
      if (len > MAX_READ) throw new ElfError(`${label}: a read of ${len} bytes is larger than ${MAX_READ}`);
      const out = new Uint8Array(len);
      for (let done = 0; done < len;) {
        const n = readSync(fd, out, done, len - done, offset + done);
        if (n === 0) throw new ElfError(`${label}: file ended early at ${offset + done}`);
        done += n;
      }
      return out;
    },
  };
}

/** Opens `path`, runs `use` on a ByteSource over it and closes it again. */
export function withFileSource<T>(path: string, use: (source: ByteSource) => T): T {
  const fd = openSync(path, 'r');
  try {
    return use(fileSource(fd, path));
  } finally {
    closeSync(fd);
  }
}
