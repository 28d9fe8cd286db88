// Exit statuses, decided here and only here: what a command returns when it ran (ok, failed,
// interrupted), and what an error thrown out of it means (outcomeOf).
//
// 0 ok; 1 the checked thing failed (a cell or test failed, bad markers for --expand, no
// verifier summary for --stats, a failure while processing); 2 usage error (unknown option
// or command, missing or bad argument, a kernel or topology that names nothing, an input
// file that cannot be read); 130 interrupted (Ctrl-C). Errors are KtstrErrors (src/errors.ts)
// whose kind is usage (2) or failed (1); commander's own errors are usage errors; any other
// error is a failure.

import { CommanderError } from './commander.js';
import { KtstrError, type ErrorKind } from '../errors.js';

export { KtstrError, UsageError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT: the run was stopped by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

const STATUS: Record<ErrorKind, number> = { usage: EXIT_USAGE, failed: EXIT_FAILED };

export interface Outcome {
  status: number;
  /** What to print as `ktstr-wasm: error: ...`; undefined when commander has printed it already. */
  message?: string;
}

/** The exit status and the message for an error thrown out of the program. */
export function outcomeOf(err: unknown): Outcome {
  if (err instanceof CommanderError) {
    // commander has already printed its message or the help; help and version asked
    // for exit 0, everything else (including help shown because no command was given)
    // is a usage error
    return { status: err.exitCode === 0 ? EXIT_OK : EXIT_USAGE };
  }
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof KtstrError) return { status: err.status ?? STATUS[err.kind], message };
  return { status: EXIT_FAILED, message };
}

/** The errno-style code of a Node system error, if any. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** True when the user asked for stack traces (KTSTR_DEBUG=1). */
export function debugEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.KTSTR_DEBUG === '1';
}
