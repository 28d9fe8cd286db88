// The one-file bundles (src/build/bundles.ts, built by esbuild in `npm run build:ts`): each
// built bundle is current (a stale one is caught here), holds its entry's whole graph as one
// CommonJS script with only builtins and packages left as require(), keeps every module's own
// import.meta.url (so the .wasm files, the native addon and worker files are found from the
// original tree, even from a copy of the bundle elsewhere), and runs: bin/ktstr-wasm through
// the CLI bundle, the vCPU worker bundle in a worker thread exactly as the unbundled worker,
// the guest agent bundle as the CommonJS script the initramfs carries.

import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BUNDLES, CLI, GUEST_AGENT, VCPU_WORKER, buildBundle } from '../../src/build/bundles.js';
import { repoPath } from '../helpers/repo.js';
import { VCPU_CTL_BYTES } from '../../src/vmm/vcpu-protocol.js';

const relativeImport = /^\s*(import|export)\b[^\n]*from\s*["']\.{1,2}\//m;
const rel = (m: string): string => m.slice(repoPath('dist', 'src').length + 1, -'.js'.length);

/** The modules test/vmm-unit/worker-imports.test.ts allows the worker to load ('kvm/kvm', ...). */
function workerGraph(): string[] {
  const src = readFileSync(repoPath('test', 'vmm-unit', 'worker-imports.test.ts'), 'utf8');
  const list = /const ALLOWED = \[([^\]]*)\]/.exec(src)?.[1];
  assert.ok(list, 'ALLOWED list found in worker-imports.test.ts');
  return [...list!.matchAll(/'([^']+)'/g)].map((m) => m[1]).sort();
}

test('every built bundle is current: what esbuild makes now, byte for byte, and newer than its entry', async () => {
  for (const spec of BUNDLES) {
    assert.ok(existsSync(spec.bundle), `${spec.bundle} is missing: run \`npm run build:ts\``);
    const fresh = await buildBundle(spec);
    assert.ok(readFileSync(spec.bundle, 'utf8') === fresh.code, `${spec.bundle} is stale: run \`npm run build:ts\``);
    // bin/ktstr-wasm and vm.ts take a bundle while it is at least as new as its entry module
    assert.ok(statSync(spec.bundle).mtimeMs >= statSync(spec.entry).mtimeMs, `${spec.name}: bundle at least as new as its entry`);
    assert.not.match(fresh.code, relativeImport, `${spec.name}: no import of a relative module left`);
    assert.not.match(fresh.code, /\bimport\.meta\b/, `${spec.name}: import.meta rewritten`);
    assert.ok(fresh.code.startsWith('"use strict";\n'), `${spec.name}: strict code, as the modules were`);
  }
});

test('the vCPU worker bundle holds exactly its graph', async () => {
  const bundle = await buildBundle(VCPU_WORKER);
  assert.equal(bundle.modules.map(rel).sort(), workerGraph());
  assert.equal(bundle.packages, []);
});

test('the CLI bundle holds every command, lazily; commander through createRequire, kleur and piscina outside', async () => {
  const bundle = await buildBundle(CLI);
  const modules = bundle.modules.map(rel);
  for (const run of ['shell-run', 'collapse-run', 'kernel-run', 'host-run', 'inspect-run', 'doctor-run', 'sweep-run']) {
    assert.ok(modules.includes(`cli/${run}`), `${run} bundled`);
  }
  assert.equal(bundle.packages, ['kleur', 'piscina']);
  // bin/ktstr-wasm runs the bundle; a command reached by import() works from it
  const r = spawnSync(process.execPath, [repoPath('bin', 'ktstr-wasm'), '--version']);
  assert.is(r.status, 0, r.stderr.toString());
  assert.match(r.stdout.toString(), /^\d+\.\d+\.\d+/);
  // a command's modules are evaluated only when it runs: --version does not load the sweep's pool
  const lazy = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(CLI.bundle)}).main(['node', 'ktstr-wasm', '--version'])` +
    `.then(() => process.stderr.write(Object.keys(require.cache).some((k) => k.includes('piscina')) ? 'piscina loaded' : 'lazy'))`]);
  assert.is(lazy.stderr.toString(), 'lazy');
  const c = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(CLI.bundle)}).main(['node', 'ktstr-wasm', 'collapse', ${JSON.stringify(repoPath('test', 'fixtures', 'logs', 'verify_loop.log'))}])`]);
  assert.is(c.status, 0, c.stderr.toString());
  assert.ok(c.stdout.toString().includes('--- 8x of the following 4 lines ---'), 'collapse ran from the bundle (the .wasm found)');
});

test('the guest agent bundle is one CommonJS script without relative imports', async () => {
  const bundle = await buildBundle(GUEST_AGENT);
  assert.ok(bundle.modules.map(rel).includes('guest/agent/main'));
  assert.ok(GUEST_AGENT.bundle.endsWith('.cjs'));
  assert.match(readFileSync(GUEST_AGENT.bundle, "utf8"), /\bmodule\.exports\b|\brequire\(/);
});

interface WorkerOutcome {
  messages: unknown[];
  error?: { name: string; message: string; code?: string };
  exitCode: number;
}

/** Attaches a vCPU worker file to a bogus vCPU fd and runs it until it exits (terminated after 20 s). */
function runWorker(file: string, vcpuFd: number): Promise<WorkerOutcome> {
  const control = new SharedArrayBuffer(VCPU_CTL_BYTES);
  const input = { vcpuId: 0, vcpuFd, vmFd: -1, mmapSize: 4096, control, events: new SharedArrayBuffer(12), serials: [], ports: new SharedArrayBuffer(8) };
  const { port1, port2 } = new MessageChannel();
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.KTSTR_NATIVE_ADDON; // the addon must be found from native.js's own import.meta.url
  const outcome: WorkerOutcome = { messages: [], exitCode: -1 };
  return new Promise((resolve) => {
    const w = new Worker(file, { env });
    const timer = setTimeout(() => { Atomics.store(new Int32Array(control), 0, 1); void w.terminate(); }, 20_000);
    port1.on('message', (m) => outcome.messages.push(m));
    w.on('error', (e: Error & { code?: string }) => { outcome.error = { name: e.name, message: e.message, code: e.code }; });
    w.on('exit', (code) => {
      clearTimeout(timer);
      outcome.exitCode = code;
      // the port's last messages may still be on their way
      setTimeout(() => { port1.close(); resolve(outcome); }, 50);
    });
    w.postMessage({ type: 'attach', input, port: port2 }, [port2]);
  });
}

test('the vCPU worker bundle (and a copy elsewhere) fails in a worker exactly as the unbundled worker does without a real vCPU fd', async () => {
  // a copy built into a directory outside the repository: native.js must still find the
  // addon from its original location, not from the bundle's
  const away = mkdtempSync(join(tmpdir(), 'ktstr-bundle-worker-'));
  const awayBundle = join(away, 'vcpu-worker.bundle.cjs');
  writeFileSync(awayBundle, (await buildBundle(VCPU_WORKER, awayBundle)).code);
  const devNull = openSync('/dev/null', 'r+');
  try {
    // -1: the Vcpu wrapper refuses it; /dev/null: a real fd whose mmap of kvm_run the kernel refuses (native addon call)
    for (const fd of [-1, devNull]) {
      const original = await runWorker(VCPU_WORKER.entry, fd);
      const bundled = await runWorker(VCPU_WORKER.bundle, fd);
      assert.ok(original.error, `the unbundled worker fails with fd ${fd}`);
      assert.not.ok(['SyntaxError', 'ReferenceError'].includes(original.error!.name), JSON.stringify(original.error));
      assert.equal(original.messages.map((m) => (m as { type: string }).type), ['done'], 'the attached run ran and reported');
      assert.equal(bundled, original, `fd ${fd}`);
      assert.equal(await runWorker(awayBundle, fd), original, `fd ${fd}, bundle outside the repository`);
    }
  } finally {
    closeSync(devNull);
    rmSync(away, { recursive: true, force: true });
  }
});

test.run();
