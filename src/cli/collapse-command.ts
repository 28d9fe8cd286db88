// `ktstr-wasm collapse [FILE|-]`: the verifier log from FILE or stdin, collapsed to stdout.
// Modes: default (collapsed text), --json (collapsed structure), --raw (unchanged),
// --stats (the verifier's summary), --expand (collapsed text back to a full log).
// The implementation (collapse-run.ts) is loaded only when the command runs.

import { Command, Option } from './commander.js';
import type { CollapseFlags } from './collapse-run.js';
import { UsageError } from './errors.js';

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
    .addOption(
      new Option('--engine <name>', 'collapse engine: wasm (fast core) or ts (TypeScript oracle)')
        .choices(['wasm', 'ts'])
        .default('wasm'),
    )
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError("(run 'ktstr-wasm collapse --help' for usage)")
    .action(async (file: string | undefined, flags: CollapseFlags) => {
      checkCombination(flags);
      const { runCollapse } = await import('./collapse-run.js');
      await runCollapse(file, flags);
    });
}

/** Modes that cannot be combined: --raw, --stats, --expand are exclusive; --json goes with collapse or --stats. */
function checkCombination(flags: CollapseFlags): void {
  const modes = (['raw', 'stats', 'expand'] as const).filter((m) => flags[m] === true);
  if (modes.length > 1) throw new UsageError(`options --${modes[0]} and --${modes[1]} cannot be used together`);
  if (flags.json === true && (flags.raw === true || flags.expand === true)) {
    throw new UsageError(`option --json cannot be used with --${flags.raw === true ? 'raw' : 'expand'}`);
  }
}
