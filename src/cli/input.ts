// Opens the log to read: a file (gunzipped when its name ends in .gz) or stdin ('-' or no
// argument). A file that cannot be opened is a usage error (exit 2), reported before any
// output is written.

import { open } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { isRegularFile } from '../collapse/fd-io.js';
import { errorCode, UsageError } from './errors.js';

/** Read size for files: large reads keep the collapse core busy. */
const READ_CHUNK = 1 << 20;

export interface Input {
  /** What to call the input in messages. */
  name: string;
  stream: Readable;
  /** The file descriptor of a plain (not gzip'd) regular file, for synchronous reads; the
   * stream has not read from it. */
  fd?: number;
}

function describeOpenError(file: string, err: unknown): string {
  switch (errorCode(err)) {
    case 'ENOENT':
      return `cannot read ${file}: no such file`;
    case 'EACCES':
    case 'EPERM':
      return `cannot read ${file}: permission denied`;
    case 'EISDIR':
      return `cannot read ${file}: is a directory`;
    default:
      return `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/**
 * Opens `file` ('-' or undefined = stdin). Throws a UsageError if it cannot be read,
 * or if no file is named and stdin is a terminal (almost always a forgotten argument;
 * '-' reads the terminal on purpose).
 */
export async function openInput(file: string | undefined): Promise<Input> {
  if (file === undefined && process.stdin.isTTY === true) {
    throw new UsageError('no input: name a FILE, pipe a log into stdin, or use - to read the terminal');
  }
  if (file === undefined || file === '-') {
    return { name: '<stdin>', stream: process.stdin, fd: isRegularFile(0) ? 0 : undefined };
  }
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new UsageError(describeOpenError(file, err), { cause: err });
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  } catch (err) {
    await handle.close();
    throw new UsageError(describeOpenError(file, err), { cause: err });
  }
  const raw = handle.createReadStream({ highWaterMark: READ_CHUNK });
  if (!file.endsWith('.gz')) return { name: file, stream: raw, fd: handle.fd };
  const gunzip = createGunzip({ chunkSize: READ_CHUNK });
  // pipeline forwards a read error to gunzip, so consumers see one stream with one error
  pipeline(raw, gunzip, () => {});
  return { name: file, stream: gunzip };
}
