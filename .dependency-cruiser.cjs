// dependency-cruiser rules (`npm run lint:deps`; test/deps.test.ts runs them in `npm test`):
// the layer direction of DESIGN.md. Data flows top to bottom and nothing calls upward: a folder
// of src/ may import only from folders on a LOWER layer than its own (a folder may import
// itself, peers on one layer may not import each other, so there are no cycles between
// folders). The ranks are DESIGN.md's diagram, with the folders it does not draw placed where
// their imports put them: src/test is the scenario layer (discovery, matrix, judge, checks),
// src/host the emulated KVM test host, src/scheduler the scheduler registry, src/kernel kernel
// builds and their cache, src/test-api the API test files import (run in the guest by
// src/guest's agent, so below it), src/elf and src/collapse leaf libraries, src/paths.ts the base.
//
// There is no list of known violations to ignore: every rule holds. The test API (src/test-api:
// what a test file imports, its run record, thresholds and capture data) sits below src/guest,
// whose agent runs the test bodies; the shell's initramfs is in src/guest.

/** Higher imports lower. */
const RANK = {
  build: 110, // the build step (esbuild bundles): tooling over the whole tree
  cli: 100, // commander CLI: sweep, collapse, kernel, test, shell, inspect, host, doctor
  doctor: 90, // what /dev/kvm is (cli only)
  test: 90, // the scenario layer: discovery, matrix, judge, checks, reports
  sweep: 80, // the cell matrix
  cell: 70, // one VM run
  host: 70, // the emulated KVM test host (L1)
  monitor: 60, // host view of the guest kernel, over the introspection WASM
  scheduler: 60, // scheduler registry: which binary, which kernel
  guest: 50, // what runs inside the VM: initramfs builder + the agent
  'test-api': 45, // ktstr-wasm/test: the API test bodies run with (in the guest), the run record
  vmm: 40, // the VMM
  kvm: 30, // KVM ioctls over the native binding
  kernel: 30, // kernel builds, the kernel cache, kernel resolution
  elf: 10, // the ELF64 reader
  collapse: 10, // verifier-log cycle collapse
};

const layerRules = Object.entries(RANK).map(([folder, rank]) => {
  const notBelow = Object.entries(RANK).filter(([f, r]) => f !== folder && r >= rank).map(([f]) => f);
  return {
    name: `layer-${folder}`,
    comment: `src/${folder} (layer ${rank}) imports only from lower layers: not from ${notBelow.map((f) => `src/${f}`).join(', ')} (DESIGN.md: nothing calls upward)`,
    severity: 'error',
    from: { path: `^src/${folder}/` },
    to: { path: `^src/(${notBelow.join('|')})/` },
  };
}).filter((rule) => rule.to.path !== '^src/()/');

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'base-imports-nothing',
      comment: 'src/paths.ts sits below every layer: it imports nothing of the project',
      severity: 'error',
      from: { path: '^src/[^/]+\\.ts$' },
      to: { path: '^(src|assembly|test)/' },
    },
    {
      name: 'assembly-is-self-contained',
      comment: 'assembly/ (AssemblyScript, and the ABI files src/monitor imports) imports only assembly/',
      severity: 'error',
      from: { path: '^assembly/' },
      to: { path: '^(src|test)/' },
    },
    {
      name: 'src-not-to-test',
      comment: 'the package does not import its tests',
      severity: 'error',
      from: { path: '^(src|assembly)/' },
      to: { path: '^test/' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycles between modules (a cycle through a type-only import does not count: it is gone at run time)',
      severity: 'error',
      from: { path: '^(src|assembly)/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-dev-dep',
      comment: 'the package runs without its devDependencies',
      severity: 'error',
      from: { path: '^(src|assembly)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'every import resolves',
      severity: 'error',
      from: { path: '^(src|assembly)/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    exclude: { path: ['^dist/', '^node_modules/'] },
    // type-only imports count: a layer that needs another's types depends on it
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.cjs', '.mjs', '.d.ts'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
