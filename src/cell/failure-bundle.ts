// A failed cell's bundle: everything needed to look at the failure after the VM is gone, in
// one directory `<out>/<cell id made safe>/` — console.log (the console tail),
// scheduler.log, exit-info.json, verifier.log (verify failures), workers.json, monitor.json
// (the monitor's timeline), result.json (the CellResult), guest.core (an ELF core of guest
// memory, src/monitor/core-writer.ts: open it with `ktstr-wasm inspect --core`, crash or
// drgn) and dump.json (what the core holds and what it lacks, and why). Atomic: built in a
// temporary directory next to it and renamed into place at the end; on any error the
// temporary directory is removed and the error thrown — never a half-written bundle.

import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CoreInput } from '../monitor/core-writer.js';
import { writeCoreFile, type CoreFileStats } from './core-file.js';
import type { CellResult } from './result.js';

export const CORE_FILE = 'guest.core';

/** What the core writer was given beyond the memory, for dump.json. */
export interface CoreNotes {
  /** Per vCPU: null when its registers are in the core, else why not. */
  registerProblems: (string | null)[];
  /** Why the VMCOREINFO note is missing (null: it is there). */
  vmcoreinfoProblem: string | null;
  /** How the run ended (bootVm's reason and detail), when known. */
  vmEnd?: { reason: string; detail: string };
}

export interface BundleParts {
  result: CellResult;
  /** The last of the guest console. */
  console: string;
  /** The monitor's timeline (null when the monitor was off). */
  monitor: unknown;
  /** Guest memory and registers; null: no core (e.g. the VM never ran). */
  core: CoreInput | null;
  coreNotes?: CoreNotes;
}

export interface BundleWritten {
  path: string;
  core: CoreFileStats | null;
}

/** A cell id as one file name: `sweep/ktstr_crash/6.12/tiny-1llc` -> `sweep__ktstr_crash__6.12__tiny-1llc`. */
export function safeCellName(id: string): string {
  const s = id
    .split('/')
    .map((p) => p.replace(/[^A-Za-z0-9._+-]/g, '_'))
    .join('__')
    .replace(/^\.+/, '_');
  if (s === '') throw new Error('a cell id is empty');
  return s.slice(0, 200);
}

/** exit-info.json: the scheduler's exit as the cell result knows it (`(kind N)` parsed when the message carries it). */
function exitInfo(r: CellResult, notes: CoreNotes | undefined): Record<string, unknown> {
  const kind = r.exitMessage === undefined ? null : /\(kind (\d+)\)/.exec(r.exitMessage);
  const text = r.exitMessage?.replace(/^EXIT:\s*/, '').replace(/\s*\(kind \d+\)\s*$/, '');
  const colon = text?.indexOf(': ') ?? -1;
  return {
    failure: r.failure ?? null,
    schedulerStatus: r.schedulerStatus,
    /** scx_exit_info as the host read it from guest memory (kind, reason, message, dump, symbolized backtrace). */
    guestMemory: r.monitor?.exit ?? null,
    exit:
      r.exitMessage === undefined
        ? null
        : {
            kind: kind === null ? null : Number(kind[1]),
            reason: text === undefined ? null : colon >= 0 ? text.slice(0, colon) : text,
            message: text === undefined || colon < 0 ? null : text.slice(colon + 2),
            line: r.exitMessage,
          },
    vmEnd: notes?.vmEnd ?? null,
  };
}

/**
 * Writes the bundle of one cell under `dir` (created when missing) and returns its path.
 * A previous bundle of the same cell is replaced. Throws on failure with nothing left behind.
 */
export function writeFailureBundle(dir: string, parts: BundleParts): BundleWritten {
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  const name = safeCellName(parts.result.id);
  const final = join(out, name);
  const tmp = mkdtempSync(join(out, `.${name}.tmp-`));
  try {
    const json = (file: string, value: unknown): void =>
      writeFileSync(join(tmp, file), JSON.stringify(value, null, 2) + '\n');
    const r = parts.result;
    writeFileSync(join(tmp, 'console.log'), parts.console);
    writeFileSync(join(tmp, 'scheduler.log'), r.schedulerLog);
    json('exit-info.json', exitInfo(r, parts.coreNotes));
    if (r.verifier !== undefined || r.failure?.kind === 'verify') {
      const summary = r.verifier === undefined ? '' : `\n--- summary ---\n${JSON.stringify(r.verifier, null, 2)}\n`;
      writeFileSync(join(tmp, 'verifier.log'), `${r.failure?.message ?? ''}\n\n${r.schedulerLog}${summary}`);
    }
    json('workers.json', { probe: r.workers, runs: r.test?.runs.map((x) => x.record) ?? [] });
    json('monitor.json', parts.monitor);
    let core: CoreFileStats | null = null;
    if (parts.core !== null) core = writeCoreFile(join(tmp, CORE_FILE), parts.core);
    json('dump.json', {
      core:
        core === null
          ? null
          : {
              file: CORE_FILE,
              apparentBytes: core.fileBytes,
              diskBytes: core.diskBytes,
              memoryBytes: core.memoryBytes,
              zeroPages: core.zeroPages,
              pages: core.pages,
            },
      vcpus:
        parts.core === null
          ? []
          : parts.core.cpus.map((c, i) => ({
              index: i,
              registers: c !== null,
              problem: parts.coreNotes?.registerProblems[i] ?? null,
            })),
      vmcoreinfo: parts.core === null ? null : parts.core.vmcoreinfo !== null,
      vmcoreinfoProblem: parts.coreNotes?.vmcoreinfoProblem ?? null,
      vmEnd: parts.coreNotes?.vmEnd ?? null,
    });
    json('result.json', { ...r, bundle: final });
    chmodSync(tmp, 0o755); // mkdtemp's 0700 is for the temporary name only
    let old: string | null = null;
    if (existsSync(final)) {
      old = `${tmp}.old`;
      renameSync(final, old);
    }
    renameSync(tmp, final);
    if (old !== null) rmSync(old, { recursive: true, force: true });
    return { path: final, core };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
