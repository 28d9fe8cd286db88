// The one-file bundles the build makes with esbuild from the compiled modules in dist/, each
// next to its entry so paths relative to a module keep working: the vCPU worker (a thread per
// vCPU: it starts faster from one script than from fourteen modules), the CLI (every command:
// ~95 modules, loaded in one piece; a command's code still runs only when it is chosen — a
// dynamic import() stays lazy), and the guest agent (Node in every cell's VM).
// bin/ktstr-wasm uses the CLI bundle while it is newer than the compiled modules.
//
// Each bundle is a CommonJS script (.cjs: no ES module loader at start-up). Node builtins and
// packages stay require() calls; the native addon and the .wasm files are files the code
// opens by path, so they stay outside. What a module computes from its own `import.meta.url`
// (the .wasm next to the package, the addon, a worker file) must not move with the bundle:
// every `import.meta.url` becomes that module's original URL, computed from the bundle's
// __dirname, so a bundle copied elsewhere still finds them from the original tree. Whitespace
// and syntax are minified (names kept, so stack traces still name functions): a smaller
// script parses faster, and start-up is what the bundles are for.

import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

/** dist/src of this build (this file is dist/src/build/bundles.js). */
const distSrc = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface BundleSpec {
  name: string;
  /** The compiled entry module the bundle is built from. */
  entry: string;
  /** Where the build writes it. */
  bundle: string;
}

export const VCPU_WORKER: BundleSpec = { name: 'vcpu-worker', entry: join(distSrc, 'vmm', 'vcpu-worker.js'), bundle: join(distSrc, 'vmm', 'vcpu-worker.bundle.cjs') };
export const CLI: BundleSpec = { name: 'cli', entry: join(distSrc, 'cli', 'main.js'), bundle: join(distSrc, 'cli', 'main.bundle.cjs') };
/** The guest agent: copied into every cell's initramfs and run by Node in the guest as one script. */
export const GUEST_AGENT: BundleSpec = { name: 'guest-agent', entry: join(distSrc, 'guest', 'agent', 'main.js'), bundle: join(distSrc, 'guest', 'agent', 'main.bundle.cjs') };
export const BUNDLES: readonly BundleSpec[] = [VCPU_WORKER, CLI, GUEST_AGENT];

export interface BuiltBundle {
  /** The bundle's source text. */
  code: string;
  /** Absolute paths of the modules in it. */
  modules: string[];
  /** Packages (bare specifiers, builtins excluded) the bundle require()s. */
  packages: string[];
}

/** The bundle's helper (its first line, so a module's own `require` cannot shadow the one it uses). */
const MODULE_URL = '__ktstrModuleUrl';
const BANNER = `"use strict";\nconst ${MODULE_URL} = (rel) => require("node:url").pathToFileURL(require("node:path").join(__dirname, rel)).href;`;

/** Rewrites `import.meta.url` in every module to its original URL, relative to the bundle's directory. */
function originalMetaUrl(outDir: string): Plugin {
  return {
    name: 'original-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return { contents: text, loader: 'js' };
        const rel = relative(outDir, args.path).split(sep).join('/');
        return { contents: text.replaceAll('import.meta.url', `${MODULE_URL}(${JSON.stringify(rel)})`), loader: 'js' };
      });
    },
  };
}

/** Bundles `spec.entry` into the text of its bundle (or of `outFile`, for a copy elsewhere). */
export async function buildBundle(spec: BundleSpec, outFile = spec.bundle): Promise<BuiltBundle> {
  const result = await build({
    entryPoints: [spec.entry],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    write: false,
    metafile: true,
    logLevel: 'silent',
    legalComments: 'none',
    minifyWhitespace: true,
    minifySyntax: true,
    banner: { js: BANNER },
    plugins: [originalMetaUrl(dirname(outFile))],
  });
  const out = result.outputFiles.find((f) => f.path === outFile) ?? result.outputFiles[0];
  const root = process.cwd();
  const meta = result.metafile.inputs;
  const packages = new Set<string>();
  for (const input of Object.values(meta)) {
    for (const imp of input.imports) {
      if (imp.external === true && !imp.path.startsWith('node:') && !isBuiltinName(imp.path)) packages.add(imp.path);
    }
  }
  return {
    code: out.text,
    modules: Object.keys(meta).map((p) => join(root, p)),
    packages: [...packages].sort(),
  };
}

function isBuiltinName(name: string): boolean {
  return BUILTINS.has(name.split('/')[0]);
}

const BUILTINS = new Set(builtinModules);
