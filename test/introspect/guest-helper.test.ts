// Builds the guest-side reference helper (test/kvm/introspect-guest/bpf_prog_info.c) with
// gcc -static into build/introspect-guest/, where the KVM dump test finds it inside the test
// host (which has no compiler), and checks that it runs here. Skips without gcc.

import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findOnPath } from '../../src/host/paths.js';
import { repoPath } from '../helpers/repo.js';

export const HELPER_SOURCE = 'test/kvm/introspect-guest/bpf_prog_info.c';
export const HELPER_BINARY = 'build/introspect-guest/bpf-prog-info';

test('the bpf_prog_info guest helper builds statically and lists programs', () => {
  const gcc = findOnPath('gcc');
  if (gcc === undefined) {
    console.log('  skipped: gcc not installed');
    return;
  }
  mkdirSync(repoPath('build', 'introspect-guest'), { recursive: true });
  execFileSync(gcc, ['-static', '-O2', '-Wall', '-Werror', '-o', repoPath(HELPER_BINARY), repoPath(HELPER_SOURCE)], {
    stdio: 'inherit',
  });
  let out: string;
  try {
    out = execFileSync(repoPath(HELPER_BINARY), { encoding: 'utf8' });
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? '');
  }
  assert.match(out, /PROGS_LISTED=\d+/, 'the helper ran to its summary line');
});

test.run();
