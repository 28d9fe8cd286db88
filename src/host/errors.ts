// Errors of the test host. All of them mean "the environment could not run the command"
// (exit status 1 in the CLI), as opposed to the command's own failure.

export type TestHostErrorKind =
  /** something the test host needs is not installed / not available (hint says what to do) */
  | 'missing'
  /** building the image or booting L1 failed */
  | 'failed'
  /** stopped by an AbortSignal (SIGINT/SIGTERM in the CLI) */
  | 'aborted';

export class TestHostError extends Error {
  readonly kind: TestHostErrorKind;

  constructor(message: string, kind: TestHostErrorKind = 'failed', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TestHostError';
    this.kind = kind;
  }
}

/** The install command for the Debian packages the test host uses. */
export const INSTALL_HINT = 'apt-get install qemu-system-x86 busybox-static xz-utils';
