// CLI entry point (bin/ktstr-wasm imports this): runs the commander program and turns
// every outcome into an exit status and at most one red `ktstr-wasm: error: ...` line.

import { CommanderError } from './commander.js';
import { paint } from './colour.js';
import { CliError, debugEnabled, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './errors.js';
import { exitQuietlyOnBrokenPipe, isBrokenPipe } from './output.js';
import { buildProgram } from './program.js';

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function stackOf(err: unknown): string {
  let text = err instanceof Error && err.stack !== undefined ? err.stack : String(err);
  let cause = err instanceof Error ? err.cause : undefined;
  while (cause !== undefined) {
    text += `\nCaused by: ${cause instanceof Error && cause.stack !== undefined ? cause.stack : String(cause)}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return text;
}

/** Prints `ktstr-wasm: error: <message>` (red on a terminal); the stack too with KTSTR_DEBUG=1. */
export function reportError(err: unknown): void {
  process.stderr.write(paint(process.stderr).red(`ktstr-wasm: error: ${describe(err)}`) + '\n');
  if (debugEnabled()) process.stderr.write(stackOf(err) + '\n');
}

/** The exit status for an error thrown out of the program. */
export function exitStatusFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander has already printed its message or the help; help and version asked
    // for exit 0, everything else (including help shown because no command was given)
    // is a usage error
    return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (err instanceof CliError) return err.exitCode;
  return EXIT_FAILED;
}

/** Runs the CLI on `argv` (process.argv layout); sets process.exitCode. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  exitQuietlyOnBrokenPipe(process.stdout, (err) => {
    reportError(err);
    process.exit(EXIT_FAILED);
  });
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    if (process.exitCode === undefined) process.exitCode = EXIT_OK;
  } catch (err) {
    if (isBrokenPipe(err)) process.exit(EXIT_OK);
    if (!(err instanceof CommanderError)) reportError(err);
    process.exitCode = exitStatusFor(err);
  }
}
