// Exit codes and the one error type the CLI reports to users.
//
// 0 ok; 1 the checked thing failed (bad markers for --expand, no verifier summary for
// --stats, a failure while processing); 2 usage error (unknown option or command, missing
// argument, unreadable input file).

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** An error meant for the user: printed as `ktstr-wasm: error: <message>`, then exit `exitCode`. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT_FAILED, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
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
