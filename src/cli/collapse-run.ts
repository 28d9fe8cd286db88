// What `ktstr-wasm collapse` does once its options are checked: reads the log (file, .gz or
// stdin) and writes it collapsed, unchanged, as the verifier's summary, or expanded.
// Loaded by collapse-command.ts only when the command runs.

import type { Readable, Writable } from 'node:stream';
import {
  collapseFd,
  collapseStream,
  createCollapser,
  expandCollapsed,
  ExpandError,
  isSyncWritable,
  statsFd,
  type CollapseEngine,
  type EngineName,
  type OutputSink,
} from '../collapse/index.js';
import { formatStats, formatStatsJson, StatsScanner } from '../collapse/stats.js';
import { paint } from './colour.js';
import { errorCode, KtstrError } from './errors.js';
import { openInput, type Input } from './input.js';
import { write } from './output.js';

export interface CollapseFlags {
  raw?: boolean;
  stats?: boolean;
  json?: boolean;
  expand?: boolean;
  engine: EngineName;
}

export async function runCollapse(file: string | undefined, flags: CollapseFlags): Promise<void> {
  const input = await openInput(file);
  const out = process.stdout;
  try {
    if (flags.raw === true) await copy(input.stream, out);
    else if (flags.stats === true) await printStats(input, flags.json === true);
    else if (flags.expand === true) await expand(input);
    else {
      const engine = flags.engine;
      const make = (sink: OutputSink): CollapseEngine => createCollapser(engine, sink, { json: flags.json === true });
      // file to file (or /dev/null): synchronous reads and writes, no stream copies
      if (input.fd !== undefined && isSyncWritable(1)) collapseFd(input.fd, 1, make);
      else await collapseStream(input.stream, out, make);
    }
  } catch (err) {
    throw translateReadError(input, err);
  } finally {
    if (!input.stream.destroyed) input.stream.destroy();
  }
}

function translateReadError(input: Input, err: unknown): unknown {
  const code = errorCode(err);
  if (code !== undefined && code.startsWith('Z_')) {
    return new KtstrError(`${input.name}: not valid gzip data (${(err as Error).message})`, 'failed', { cause: err });
  }
  return err;
}

async function copy(input: Readable, out: Writable): Promise<void> {
  for await (const chunk of input) {
    const wait = write(out, chunk as Uint8Array);
    if (wait) await wait;
  }
}

async function printStats(input: Input, json: boolean): Promise<void> {
  let programs;
  if (input.fd !== undefined) {
    programs = statsFd(input.fd);
  } else {
    const scanner = new StatsScanner();
    for await (const chunk of input.stream) scanner.feed(chunk as Uint8Array);
    programs = scanner.finish();
  }
  const text = json ? formatStatsJson(programs) : formatStats(programs, paint(process.stdout).bold);
  if (programs.length > 0 || json) await write(process.stdout, text);
  if (programs.length === 0) {
    throw new KtstrError(`${input.name}: no verifier summary ("processed N insns ...") found`);
  }
}

async function expand(input: Input): Promise<void> {
  const parts: Buffer[] = [];
  for await (const chunk of input.stream) parts.push(chunk as Buffer);
  let text: string;
  try {
    text = expandCollapsed(Buffer.concat(parts).toString('latin1'));
  } catch (err) {
    if (err instanceof ExpandError) {
      throw new KtstrError(`${input.name}: unbalanced repeat markers: ${err.message}`, 'failed', { cause: err });
    }
    throw err;
  }
  await write(process.stdout, Buffer.from(text, 'latin1'));
}
