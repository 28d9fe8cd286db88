// The real verifier log fixtures (test/fixtures/logs, .gz transparently) and their
// checked-in collapsed outputs (test/fixtures/expected/<name>.collapsed).

import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { repoPath } from './repo.js';

export interface Fixture {
  /** File name without .log / .log.gz, e.g. "bounded_loop_400". */
  name: string;
  /** Path of the log file. */
  path: string;
  /** The log's bytes (decompressed). */
  bytes: Buffer;
}

export const LOG_DIR = repoPath('test', 'fixtures', 'logs');
export const EXPECTED_DIR = repoPath('test', 'fixtures', 'expected');

export function fixtureName(file: string): string {
  return file.replace(/\.gz$/, '').replace(/\.log$/, '');
}

/** Every real log, sorted by name. */
export function fixtures(): Fixture[] {
  return readdirSync(LOG_DIR)
    .filter((f) => f.endsWith('.log') || f.endsWith('.log.gz'))
    .sort()
    .map((file) => {
      const path = `${LOG_DIR}/${file}`;
      const raw = readFileSync(path);
      return { name: fixtureName(file), path, bytes: file.endsWith('.gz') ? gunzipSync(raw) : raw };
    });
}

/** One fixture by name. */
export function fixture(name: string): Fixture {
  const found = fixtures().find((f) => f.name === name);
  if (found === undefined) throw new Error(`no fixture named ${name} in ${LOG_DIR}`);
  return found;
}

/** The checked-in expected collapsed output of a fixture. */
export function expectedCollapsed(name: string): Buffer {
  return readFileSync(`${EXPECTED_DIR}/${name}.collapsed`);
}
