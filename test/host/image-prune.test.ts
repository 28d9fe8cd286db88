// The test host's image cache does not pile up: images of other checkouts beyond the most
// recently used few, or unused for two weeks, are removed; the current one always stays.

import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OTHER_IMAGES_KEPT, removeOldImages } from '../../src/host/image.js';

test('removeOldImages keeps the current image and the most recently used others', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-image-prune-'));
  try {
    const now = Date.now();
    const day = 86400_000;
    const files: Array<[string, number]> = [
      ['image-current-k.cpio', now - 30 * day], // current: kept whatever its age
      ['image-a-k.cpio', now - 1 * day],
      ['image-b-k.cpio', now - 2 * day],
      ['image-c-k.cpio', now - 3 * day], // beyond the newest OTHER_IMAGES_KEPT
      ['image-d-k.cpio', now - 20 * day], // too old
      ['base-x.cpio', now - 30 * day], // not an image: untouched here
    ];
    for (const [name, mtime] of files) {
      writeFileSync(join(dir, name), 'x');
      utimesSync(join(dir, name), mtime / 1000, mtime / 1000);
    }
    await removeOldImages(dir, 'image-current-k.cpio', now);
    assert.is(OTHER_IMAGES_KEPT, 2);
    assert.equal(readdirSync(dir).sort(), ['base-x.cpio', 'image-a-k.cpio', 'image-b-k.cpio', 'image-current-k.cpio']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
