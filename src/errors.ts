// The one error model. An error a user acts on is a KtstrError, and its kind says whose move
// it is: 'usage', the command line asked for something that cannot be (an unknown option
// value, a kernel or topology that names nothing, a file that cannot be read); 'failed', the
// thing asked for was tried and did not work. Domain errors extend KtstrError (or UsageError)
// where they are declared, so they reach the CLI unwrapped; the CLI turns the kind into the
// exit status in one place (src/cli/errors.ts: outcomeOf). Any other error counts as failed.
// Nothing here depends on the CLI: src/kernel, src/sweep, ... import it freely.

export type ErrorKind = 'usage' | 'failed';

export interface KtstrErrorOptions {
  cause?: unknown;
  /** An exit status to pass on instead of the kind's (a command's own, e.g. 124 for its timeout). */
  status?: number;
}

/** An error meant for the user: printed as `ktstr-wasm: error: <message>`; its kind decides the exit status. */
export class KtstrError extends Error {
  readonly kind: ErrorKind;
  readonly status: number | undefined;

  constructor(message: string, kind: ErrorKind = 'failed', options: KtstrErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.status = options.status;
  }
}

/** The command line asked for something that cannot be (exit 2 in the CLI). */
export class UsageError extends KtstrError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, 'usage', options);
  }
}
