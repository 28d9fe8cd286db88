// CLI entry point (bin/ktstr-wasm imports this): runs the commander program and turns
// every outcome into an exit status and at most one red `ktstr-wasm: error: ...` line.

import { paint } from './colour.js';
import { debugEnabled, EXIT_FAILED, EXIT_OK, outcomeOf } from './errors.js';
import { exitQuietlyOnBrokenPipe, isBrokenPipe } from './output.js';
import { buildProgram } from './program.js';

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
function reportError(message: string, err: unknown): void {
  process.stderr.write(paint(process.stderr).red(`ktstr-wasm: error: ${message}`) + '\n');
  if (debugEnabled()) process.stderr.write(stackOf(err) + '\n');
}

/** Runs the CLI on `argv` (process.argv layout); sets process.exitCode. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  exitQuietlyOnBrokenPipe(process.stdout, (err) => {
    reportError(err.message, err);
    process.exit(EXIT_FAILED);
  });
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    if (process.exitCode === undefined) process.exitCode = EXIT_OK;
  } catch (err) {
    if (isBrokenPipe(err)) process.exit(EXIT_OK);
    const { status, message } = outcomeOf(err);
    if (message !== undefined) reportError(message, err);
    process.exitCode = status;
  }
}
