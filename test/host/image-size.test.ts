// The test host image's size guard: a project tree that would push the L1 initramfs past what
// L1 boots is refused before anything is built, with the sizes and what to do; the build-only
// packages (node_modules/typescript, ...) never count, because they are never copied in.

import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureImage, MAX_IMAGE_BYTES } from '../../src/host/image.js';
import { testHostAvailable } from '../../src/host/index.js';

const root = mkdtempSync(join(tmpdir(), 'ktstr-image-size-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** A sparse file of `bytes` (no disk used: the guard reads sizes). */
function sparse(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
}

test('a project past the image limit is refused before any build, saying what to leave out', async () => {
  const available = testHostAvailable();
  if (!available.ok) {
    console.log(`  SKIPPED: test host unavailable (${available.reason})`);
    return;
  }
  const project = join(root, 'big');
  mkdirSync(join(project, 'node_modules', 'typescript'), { recursive: true });
  sparse(join(project, 'node_modules', 'typescript', 'huge.js'), 2 * MAX_IMAGE_BYTES); // build-only: never counted
  sparse(join(project, 'data.bin'), MAX_IMAGE_BYTES);
  let error: unknown;
  await ensureImage({ projectDir: project, kernelsDir: null }).catch((e: unknown) => (error = e));
  assert.ok(error instanceof Error, 'refused');
  const message = (error as Error).message;
  assert.match(message, /the test host image would be \d+ MiB/);
  assert.match(
    message,
    /L1 does not boot past 410 MiB\. Leave large paths the command does not need out with --exclude/,
  );
  const projectMiB = Number(/the project tree \S+ and shared directories (\d+) MiB/.exec(message)?.[1]);
  assert.is(projectMiB, MAX_IMAGE_BYTES / 2 ** 20, 'only data.bin counts');
});

test.run();
