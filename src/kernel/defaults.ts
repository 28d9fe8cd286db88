// Kernel build defaults, apart from source.ts so that the CLI can show them in its option
// help without loading the build machinery.

/** The Debian linux-source series `kernel build` uses by default. */
export const DEFAULT_KERNEL_SERIES = '6.12';
