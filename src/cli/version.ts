// The package version, read from package.json (one source of truth for --version).

import { readFileSync } from 'node:fs';

/** `version` from the package's package.json (dist/src/cli/ -> ../../../package.json). */
export function packageVersion(): string {
  const url = new URL('../../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}
