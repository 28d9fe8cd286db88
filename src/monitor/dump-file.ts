// Node-only: loads a memory dump file into a WebAssembly.Memory for the core. An ELF core
// (QEMU dump-guest-memory, kdump) contributes one region per PT_LOAD segment; a raw image is
// guest physical 0.. in one region. Segments are packed one after another from IMAGE_BASE.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { fileSource } from '../elf/file-source.js';
import { readCoreDump, type CoreDump } from './core-dump.js';
import type { Introspector } from './introspector.js';
import { nodeIntrospector } from './wasm-file.js';

export class DumpFileError extends Error {}

/** Where the first guest byte goes: the VMM's GUEST_BASE, so offline and live look alike. */
export const IMAGE_BASE = 4 * 1024 * 1024;
const WASM_PAGE = 65536;
const MAX_MEMORY = 65536 * WASM_PAGE;
const CHUNK = 64 * 1024 * 1024;

function copyInto(fd: number, bytes: Uint8Array, at: number, fileOffset: number, size: number): void {
  for (let done = 0; done < size;) {
    const want = Math.min(CHUNK, size - done);
    const n = readSync(fd, bytes, at + done, want, fileOffset + done);
    if (n === 0) throw new DumpFileError(`file ended early at offset ${fileOffset + done}`);
    done += n;
  }
}

export interface LoadedImage {
  intro: Introspector;
  memory: WebAssembly.Memory;
  dump: CoreDump | null;
}

function makeMemory(total: number, label: string): WebAssembly.Memory {
  const bytes = IMAGE_BASE + total;
  if (bytes > MAX_MEMORY)
    throw new DumpFileError(
      `${label}: ${(total / 2 ** 20).toFixed(0)} MiB of guest memory does not fit a 4 GiB WebAssembly memory`,
    );
  const pages = Math.ceil(bytes / WASM_PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages });
}

/** Loads an ELF core dump. */
export function loadCoreFile(path: string): LoadedImage {
  const fd = openSync(path, 'r');
  try {
    const dump = readCoreDump(fileSource(fd, path), path);
    const memory = makeMemory(dump.totalBytes, path);
    const bytes = new Uint8Array(memory.buffer);
    const intro = nodeIntrospector(memory);
    let at = IMAGE_BASE;
    for (const s of dump.segments) {
      copyInto(fd, bytes, at, s.fileOffset, s.size);
      intro.addRegion(s.pa, s.size, at);
      at += s.size;
    }
    return { intro, memory, dump };
  } finally {
    closeSync(fd);
  }
}

/** Loads a raw physical memory image (guest physical 0 at file offset 0). */
export function loadRawFile(path: string): LoadedImage {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) throw new DumpFileError(`${path}: empty memory image`);
    const memory = makeMemory(size, path);
    copyInto(fd, new Uint8Array(memory.buffer), IMAGE_BASE, 0, size);
    const intro = nodeIntrospector(memory);
    intro.addRegion(0, size, IMAGE_BASE);
    return { intro, memory, dump: null };
  } finally {
    closeSync(fd);
  }
}
