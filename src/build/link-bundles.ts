// Build step (`npm run build:ts`, after tsc): bundles every entry of bundles.ts with esbuild,
// each written atomically (a temporary file, then a rename), one line per bundle. Exits
// non-zero with the reason when one cannot be built (the others are still written).

import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BUNDLES, buildBundle } from './bundles.js';

await Promise.all(BUNDLES.map(async (spec) => {
  const tmp = `${spec.bundle}.${process.pid}.tmp`;
  try {
    const bundle = await buildBundle(spec);
    writeFileSync(tmp, bundle.code);
    renameSync(tmp, spec.bundle);
    console.log(`link-bundles: ${relative(process.cwd(), spec.bundle)}: ${bundle.modules.length} modules, ${Buffer.byteLength(bundle.code)} bytes`);
  } catch (e) {
    rmSync(tmp, { force: true });
    console.error(`link-bundles: cannot bundle ${spec.entry} into ${spec.bundle}: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}));
