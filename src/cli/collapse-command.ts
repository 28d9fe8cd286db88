// `ktstr-wasm collapse [FILE|-]`: the verifier log from FILE or stdin, collapsed to stdout.
// Modes: default (collapsed text), --json (collapsed structure), --raw (unchanged),
// --stats (the verifier's summary), --expand (collapsed text back to a full log).

import { Command, Option } from 'commander';
import type { Readable, Writable } from 'node:stream';
import { collapseStream, createCollapser, expandCollapsed, ExpandError, type EngineName } from '../collapse/index.js';
import { formatStats, formatStatsJson, StatsScanner } from '../collapse/stats.js';
import { paint } from './colour.js';
import { CliError, errorCode, EXIT_FAILED } from './errors.js';
import { openInput, type Input } from './input.js';
import { write } from './output.js';

export interface CollapseFlags {
  raw?: boolean;
  stats?: boolean;
  json?: boolean;
  expand?: boolean;
  engine: EngineName;
}

const EXAMPLES = `
Examples:
  $ ktstr-wasm collapse verifier.log              collapse a log (stdout)
  $ bpftool -d prog load prog.o /sys/fs/bpf/p 2>&1 | ktstr-wasm collapse
                                                  collapse stdin
  $ ktstr-wasm collapse big.log.gz | less         .gz files are decompressed
  $ ktstr-wasm collapse --stats verifier.log      processed insns, states, stack, time
  $ ktstr-wasm collapse --stats --json a.log      the same as JSON
  $ ktstr-wasm collapse --json verifier.log       repeats as JSON: counts, line ranges
  $ ktstr-wasm collapse --engine ts verifier.log  use the TypeScript oracle (slower)
  $ ktstr-wasm collapse verifier.log | ktstr-wasm collapse --expand
                                                  expand the markers again

A repeat prints as:
  --- 8x of the following 25 lines ---
  <first iteration>
  --- 6 identical iterations omitted ---
  <last iteration>
  --- end repeat ---

Exit status: 0 ok; 1 failed (unbalanced markers for --expand, no summary for
--stats, error while reading); 2 usage error (bad option, unreadable FILE).
Colour only on a terminal and never with NO_COLOR. KTSTR_DEBUG=1 shows stack traces.
See docs/collapse.md for what counts as "the same iteration".`;

/** The collapse command; `parent` supplies the shared settings (exitOverride, output). */
export function collapseCommand(parent: Command): Command {
  return new Command('collapse')
    .copyInheritedSettings(parent)
    .description('collapse repeated loop iterations in a BPF verifier log')
    .argument('[FILE|-]', "verifier log to read ('-' or none: stdin; *.gz: gunzipped)")
    .option('--raw', 'print the input unchanged (no collapse)')
    .option('--stats', "print the verifier's summary parsed from the log instead of the log")
    .option('--json', 'print the collapsed structure as JSON (with --stats: the summary as JSON)')
    .option('--expand', 'read collapsed text and print it with every repeat expanded')
    .addOption(new Option('--engine <name>', 'collapse engine: wasm (fast core) or ts (TypeScript oracle)')
      .choices(['wasm', 'ts']).default('wasm'))
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError("(run 'ktstr-wasm collapse --help' for usage)")
    .action(async (file: string | undefined, flags: CollapseFlags) => {
      checkCombination(flags);
      await runCollapse(file, flags);
    });
}

/** Modes that cannot be combined: --raw, --stats, --expand are exclusive; --json goes with collapse or --stats. */
function checkCombination(flags: CollapseFlags): void {
  const modes = (['raw', 'stats', 'expand'] as const).filter((m) => flags[m] === true);
  if (modes.length > 1) throw new CliError(`options --${modes[0]} and --${modes[1]} cannot be used together`, 2);
  if (flags.json === true && (flags.raw === true || flags.expand === true)) {
    throw new CliError(`option --json cannot be used with --${flags.raw === true ? 'raw' : 'expand'}`, 2);
  }
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
      await collapseStream(input.stream, out, (sink) => createCollapser(engine, sink, { json: flags.json === true }));
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
    return new CliError(`${input.name}: not valid gzip data (${(err as Error).message})`, EXIT_FAILED, { cause: err });
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
  const scanner = new StatsScanner();
  for await (const chunk of input.stream) scanner.feed(chunk as Uint8Array);
  const programs = scanner.finish();
  const text = json ? formatStatsJson(programs) : formatStats(programs, paint(process.stdout).bold);
  if (programs.length > 0 || json) await write(process.stdout, text);
  if (programs.length === 0) {
    throw new CliError(`${input.name}: no verifier summary ("processed N insns ...") found`, EXIT_FAILED);
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
      throw new CliError(`${input.name}: unbalanced repeat markers: ${err.message}`, EXIT_FAILED, { cause: err });
    }
    throw err;
  }
  await write(process.stdout, Buffer.from(text, 'latin1'));
}
