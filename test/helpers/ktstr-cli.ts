// Runs the package's own CLI (bin/ktstr-wasm) as a user would, for the KVM tests: the exit
// code and both streams, no colour; stderr echoed live with `verbose`.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runKtstr(args: string[], o: { verbose?: boolean } = {}): Promise<CliRun> {
  const root = packageRoot();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'ktstr-wasm'), ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      if (o.verbose) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The tails of a run's output, for an assertion's message. */
export const showRun = (r: CliRun, out = 8000, err = 3000): string =>
  `\n--- stdout ---\n${r.stdout.slice(-out)}\n--- stderr ---\n${r.stderr.slice(-err)}`;
