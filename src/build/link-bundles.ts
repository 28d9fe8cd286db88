// Build step (`npm run build:ts`, after tsc): writes every bundle of bundles.ts, each atomically
// (a temporary file, then a rename), one line per bundle. Exits non-zero with the reason when
// one cannot be linked (the others are still written).

import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BUNDLES, linkBundle } from './bundles.js';

for (const spec of BUNDLES) {
  const tmp = `${spec.bundle}.${process.pid}.tmp`;
  try {
    const bundle = linkBundle(spec);
    writeFileSync(tmp, bundle.code);
    renameSync(tmp, spec.bundle);
    console.log(`link-bundles: ${relative(process.cwd(), spec.bundle)}: ${bundle.modules.length} modules linked, ${Buffer.byteLength(bundle.code)} bytes`);
  } catch (e) {
    rmSync(tmp, { force: true });
    console.error(`link-bundles: cannot link ${spec.entry} into ${spec.bundle}: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
