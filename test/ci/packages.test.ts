// CI on a brand-new Debian 12 machine: every external program the sources run (src/, test/,
// examples/, scx-ktstr/Makefile, package.json's node-gyp) must come from a package listed in
// .ci/debian-packages, which .ci/run installs, or from what every Debian 12 system has. The
// scan of the sources and the TOOLS table below must agree both ways, so a new spawn of a
// tool name fails here until the table and the list say where it comes from. Where dpkg is
// present, it must agree that each listed command or file comes from its line's package.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KERNEL_BUILD_REQUIREMENTS, SCHEDULER_BUILD_REQUIREMENTS } from '../../src/kernel/source.js';
import { packageRoot } from '../../src/paths.js';

const root = packageRoot();

/** Node itself (Node 20 is what the machine is given), not a Debian package. */
const NODE = 'node (given)';

/**
 * Every program the scan finds, and the Debian package it comes from. A package that is not in
 * .ci/debian-packages must be in BASE_PACKAGES.
 */
const TOOLS: Record<string, string> = {
  // listed in .ci/debian-packages
  'qemu-system-x86_64': 'qemu-system-x86',
  busybox: 'busybox-static',
  xz: 'xz-utils',
  zstd: 'zstd',
  pgrep: 'procps',
  iasl: 'acpica-tools',
  'clang-16': 'clang-16',
  'llvm-strip-16': 'llvm-16',
  bpftool: 'bpftool',
  make: 'make',
  gcc: 'gcc',
  'g++': 'g++',
  python3: 'python3',
  pahole: 'dwarves',
  nm: 'binutils',
  objcopy: 'binutils',
  objdump: 'binutils',
  flex: 'flex',
  bison: 'bison',
  bc: 'bc',
  perl: 'perl',
  'rt-app': 'rt-app',
  // every Debian 12 system
  bash: 'bash',
  tar: 'tar',
  mount: 'mount',
  setpriv: 'util-linux',
  script: 'bsdutils',
  ldd: 'libc-bin',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  'dpkg-query': 'dpkg',
  mkdir: 'coreutils',
  mv: 'coreutils',
  rm: 'coreutils',
  stat: 'coreutils',
  cmp: 'diffutils',
  // Node
  node: NODE,
};

/** Priority: required in Debian 12: in every installation, even a minimal one. */
const BASE_PACKAGES = new Set([
  'bash',
  'tar',
  'mount',
  'util-linux',
  'bsdutils',
  'libc-bin',
  'apt',
  'dpkg',
  'coreutils',
  'diffutils',
]);

/** What node-gyp (package.json's install script) runs: its documented Linux requirements. */
const NODE_GYP_TOOLS = ['python3', 'make', 'g++'];

/** Shell builtins in Makefile recipes (not programs). */
const SHELL_BUILTINS = new Set(['echo', 'printf', 'cd', 'test', '[', 'true', 'false', 'exit', ':']);

const MULTIARCH_LIB = '/usr/lib/x86_64-linux-gnu';

interface Line {
  pkg: string;
  provides: string[];
}

function readList(text = readFileSync(join(root, '.ci', 'debian-packages'), 'utf8')): Line[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '')
    .map((l) => {
      const [entry = '', provides = '', ...rest] = l.split(/\s+/);
      const pkg = entry.replace(/\/.*/, ''); // pkg/suite: installed from that suite
      return { pkg, provides: [provides, ...rest].join('').split(',').filter(Boolean) };
    });
}

function walk(dir: string, keep: (name: string) => boolean, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, keep, out);
    else if (keep(name)) out.push(p);
  }
  return out;
}

const toolName = (literal: string): string => (literal.startsWith('/') ? basename(literal) : literal);
const stringItems = (list: string): string[] => [...list.matchAll(/'([^']*)'/g)].map((m) => m[1]!);

/** Program names a TypeScript/JavaScript source runs or looks for. */
function scanScript(source: string): string[] {
  // whole-line comments (// and JSDoc) left out: they describe, they do not run
  const text = source.replace(/^\s*(?:\/\/|\/?\*).*$/gm, '');
  const found: string[] = [];
  const spawnish = String.raw`(?<![\w.])(?:spawnSync|spawn|execFileSync|execFileP|execFile|execSync|findOnPath|run|tool)\(`;
  // a literal program: spawn('x', ...), findOnPath('x'), spawn(o.qemu ?? 'x', ...), run('x', ...)
  for (const m of text.matchAll(new RegExp(`${spawnish}\\s*(?:[\\w.]+\\s*\\?\\?\\s*)?'([^'\\s]+)'`, 'g')))
    found.push(toolName(m[1]!));
  // Node itself: spawn(process.execPath, ...)
  if (new RegExp(`${spawnish}\\s*process\\.execPath\\b`).test(text)) found.push('node');
  // a program by absolute path: existsSync('/usr/bin/x')
  for (const m of text.matchAll(/(?<![\w.])existsSync\(\s*'(\/(?:usr\/)?s?bin\/[^'\s]+)'/g))
    found.push(toolName(m[1]!));
  // candidate paths: ['/bin/x', '/usr/bin/x']
  for (const m of text.matchAll(/\[\s*'\/(?:usr\/)?s?bin\/[^'\s]+'(?:\s*,\s*'\/(?:usr\/)?s?bin\/[^'\s]+')+\s*,?\s*\]/g))
    found.push(...stringItems(m[0]).map(toolName));
  // lists checked one by one: ['a', 'b'].filter((t) => findOnPath(t ...)), for (const t of ['a', 'b']) { if (findOnPath(t ...
  for (const m of text.matchAll(
    /\[((?:\s*'[^']*'\s*,?)+)\]\s*\.(?:filter|find|some|every)\(\s*\(?\s*(\w+)\s*\)?\s*=>\s*!?\s*(?:findOnPath|existsSync)\(\s*\2\b/g,
  ))
    found.push(...stringItems(m[1]!).map(toolName));
  for (const m of text.matchAll(
    /for\s*\(\s*const\s+(\w+)\s+of\s+\[((?:\s*'[^']*'\s*,?)+)\]\s*\)\s*\{?\s*if\s*\(\s*!?\s*findOnPath\(\s*\1\b/g,
  ))
    found.push(...stringItems(m[2]!).map(toolName));
  // a program in a variable given a literal: path = 'x' ... spawnSync(path, ...)
  for (const m of text.matchAll(
    /(?<![\w.])(?:spawnSync|spawn|execFileSync|execFileP|execFile)\(\s*([A-Za-z_]\w*)\s*,/g,
  )) {
    for (const d of text.matchAll(new RegExp(`\\b${m[1]}\\s*(?::\\s*string\\s*)?=\\s*'([^'\\s]+)'`, 'g')))
      found.push(toolName(d[1]!));
  }
  // tools handed to make: 'CC=gcc', 'CLANG=clang-16'
  for (const m of text.matchAll(/'(?:CC|CXX|HOSTCC|LD|AR|CLANG|LLC|LLVM_STRIP|BPFTOOL|OBJCOPY|PAHOLE)=([\w.+-]+)'/g))
    found.push(m[1]!);
  return found;
}

/** Programs a Makefile's recipes run, and the static libraries (-static -lX) they link. */
function scanMakefile(text: string): { tools: string[]; libs: string[] } {
  const joined = text.replace(/\\\n/g, ' ');
  const vars = new Map<string, string>();
  for (const m of joined.matchAll(/^(\w+)\s*\?=\s*(\S+)\s*$/gm)) vars.set(m[1]!, m[2]!);
  const tools: string[] = [];
  const libs: string[] = [];
  for (const m of joined.matchAll(/\$\(shell\s+([\w.+-]+)/g)) tools.push(m[1]!);
  for (const line of joined.split('\n').filter((l) => l.startsWith('\t'))) {
    for (const segment of line.split(/&&|\|\||;|\|/)) {
      const first =
        segment
          .trim()
          .replace(/^[@-]+/, '')
          .split(/\s+/)[0] ?? '';
      const v = /^\$\((\w+)\)$/.exec(first);
      const cmd = v ? vars.get(v[1]!) : first;
      if (cmd !== undefined && cmd !== '' && !SHELL_BUILTINS.has(cmd) && !cmd.startsWith('$')) tools.push(cmd);
    }
    if (/(^|\s)-static(\s|$)/.test(line)) for (const l of line.matchAll(/(?:^|\s)-l(\w+)/g)) libs.push(l[1]!);
  }
  return { tools, libs };
}

interface Scan {
  tools: Map<string, string>;
  files: Map<string, string>;
}

/** Every program the project runs (name -> first place seen) and every file its builds need. */
function scanProject(): Scan {
  const tools = new Map<string, string>();
  const files = new Map<string, string>();
  const add = (map: Map<string, string>, key: string, where: string): void => {
    if (!map.has(key)) map.set(key, where);
  };
  const scripts = [
    ...walk(join(root, 'src'), (n) => /\.[cm]?ts$/.test(n) && !n.endsWith('.d.ts')),
    ...walk(join(root, 'test'), (n) => /\.[cm]?ts$/.test(n) && !n.endsWith('.d.ts')),
    ...walk(join(root, 'examples'), (n) => /\.[cm]?js$/.test(n)),
    join(root, 'bin', 'ktstr-wasm'),
  ];
  for (const file of scripts) {
    const text = readFileSync(file, 'utf8');
    for (const t of scanScript(text)) add(tools, t, relative(root, file));
    // gcc -static links libc.a
    if (/'-static'/.test(text)) add(files, `${MULTIARCH_LIB}/libc.a`, relative(root, file));
  }
  const mk = scanMakefile(readFileSync(join(root, 'scx-ktstr', 'Makefile'), 'utf8'));
  for (const t of mk.tools) add(tools, t, 'scx-ktstr/Makefile');
  for (const l of mk.libs) add(files, `${MULTIARCH_LIB}/lib${l}.a`, 'scx-ktstr/Makefile');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  if (Object.values(pkg.scripts ?? {}).some((s) => /\bnode-gyp\b/.test(s)))
    for (const t of NODE_GYP_TOOLS) add(tools, t, 'package.json (node-gyp)');
  for (const r of [...KERNEL_BUILD_REQUIREMENTS, ...SCHEDULER_BUILD_REQUIREMENTS]) {
    if (r.what.startsWith('/')) add(files, r.what, 'src/kernel/source.ts');
  }
  return { tools, files };
}

/** dpkg-query's answers, or undefined where there is no dpkg. */
interface Dpkg {
  /** Owning packages of each path asked about (paths dpkg does not know: absent). */
  owners: Map<string, string[]>;
  /** Installed packages: priority and (pre-)dependencies. */
  installed: Map<string, { priority: string; depends: Set<string> }>;
}

function dpkg(paths: string[], packages: string[]): Dpkg | undefined {
  const s = spawnSync('dpkg-query', ['-S', ...paths], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (s.error !== undefined) return undefined;
  const owners = new Map<string, string[]>();
  for (const line of s.stdout.split('\n')) {
    const m = /^(.+?): (\/.*)$/.exec(line);
    if (m === null || m[1]!.startsWith('diversion by')) continue;
    owners.set(
      m[2]!,
      m[1]!.split(', ').map((p) => p.replace(/:.*/, '')),
    );
  }
  const w = spawnSync(
    'dpkg-query',
    ['-W', '-f=${Package}\t${Status}\t${Priority}\t${Pre-Depends}, ${Depends}\n', ...packages],
    { encoding: 'utf8' },
  );
  const installed = new Map<string, { priority: string; depends: Set<string> }>();
  for (const line of w.stdout.split('\n')) {
    const [name, status, priority, deps] = line.split('\t');
    if (name === undefined || deps === undefined || !/ ok installed$/.test(status ?? '')) continue;
    const depends = new Set(
      deps
        .split(/[,|]/)
        .map((d) => d.trim().split(/[\s:]/)[0]!)
        .filter((d) => d !== ''),
    );
    installed.set(name, { priority: priority ?? '', depends });
  }
  return { owners, installed };
}

/** Where a command or file of the list may be on disk (merged /usr: dpkg knows one of them). */
const candidates = (entry: string): string[] =>
  entry.startsWith('/')
    ? [...new Set([entry, entry.replace(/^\/usr\//, '/'), entry.replace(/^\/(?!usr\/)/, '/usr/')])]
    : ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => `${d}/${entry}`);

test('the list parses: a package per line, each with what the tests use from it', () => {
  const list = readList();
  assert.ok(list.length >= 20, `${list.length} packages`);
  for (const l of list) {
    assert.match(l.pkg, /^[a-z0-9][a-z0-9.+-]+$/, `package name ${l.pkg}`);
    assert.ok(l.provides.length > 0, `${l.pkg} says what the tests use from it`);
  }
  assert.is(new Set(list.map((l) => l.pkg)).size, list.length, 'no package twice');
  // the reader is not fooled by comments and extra spaces
  assert.equal(readList('# c\n\n  a   b,/c/d   # why\nx y#z\n'), [
    { pkg: 'a', provides: ['b', '/c/d'] },
    { pkg: 'x', provides: ['y'] },
  ]);
});

test('the scan finds spawns in every form the sources use', () => {
  // written with " for ' so that the project scan does not take these samples for spawns
  const found = scanScript(
    [
      'spawnSync("iasl", ["-v"]); findOnPath("pahole"); spawn(o.qemu ?? "qemu-x", []); re.exec("not-a-tool");',
      'if (existsSync("/usr/bin/script")) {} const B = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));',
      '["apt-get", "xz"].filter((t) => findOnPath(t, env) === undefined);',
      'for (const tool of ["dpkg-deb"]) {\n  if (findOnPath(tool, env) === undefined) {}\n}',
      'function probe(path = "qemu-y") { spawnSync(path, ["--version"]); }',
      'run("make", ["CC=gcc", "CLANG=clang-16"]);',
    ]
      .join('\n')
      .replace(/"/g, "'"),
  );
  assert.equal(
    new Set(found),
    new Set([
      'iasl',
      'pahole',
      'qemu-x',
      'script',
      'busybox',
      'apt-get',
      'xz',
      'dpkg-deb',
      'qemu-y',
      'make',
      'gcc',
      'clang-16',
    ]),
  );
  const mk = scanMakefile(
    'CLANG ?= clang-16\nO ?= build\nID = $(shell stat -c %s x)\na: b\n\t@echo x | cmp -s - $@ || echo y > $@\n\t$(CLANG) -c a.c \\\n\t\t-o a.o && mv a.o b.o\n\t$(CC) a.c -o a -static -lbpf -lz\n',
  );
  assert.equal(new Set(mk.tools), new Set(['stat', 'cmp', 'clang-16', 'mv']));
  assert.equal(mk.libs, ['bpf', 'z']);
});

test('every program the sources run is in TOOLS, and every TOOLS entry is still run', () => {
  const { tools } = scanProject();
  assert.ok(tools.size >= 20, `the scan finds the spawns (${[...tools.keys()].join(', ')})`);
  for (const [tool, where] of tools) {
    assert.ok(
      tool in TOOLS,
      `${where} runs ${tool}: say in TOOLS (test/ci/packages.test.ts) which Debian package provides it, and list that package in .ci/debian-packages`,
    );
  }
  for (const tool of Object.keys(TOOLS))
    assert.ok(tools.has(tool), `TOOLS has ${tool}, which no source runs any more: remove it`);
});

test('every program comes from a line of .ci/debian-packages, from every Debian 12 system or from Node', () => {
  const list = readList();
  for (const [tool, pkg] of Object.entries(TOOLS)) {
    if (pkg === NODE || BASE_PACKAGES.has(pkg)) {
      assert.not.ok(
        list.some((l) => l.pkg === pkg),
        `${pkg} is part of every Debian 12 system: it need not be listed`,
      );
      continue;
    }
    const line = list.find((l) => l.pkg === pkg);
    assert.ok(line !== undefined, `${tool} comes from ${pkg}, which is not in .ci/debian-packages`);
    assert.ok(
      line.provides.some((p) => toolName(p) === tool),
      `the line of ${pkg} in .ci/debian-packages does not name ${tool}`,
    );
  }
  const fromTools = new Set(Object.values(TOOLS));
  for (const l of list) {
    const covered = fromTools.has(l.pkg) || l.provides.some((p) => p.startsWith('/'));
    assert.ok(covered, `${l.pkg} is listed but no program in TOOLS and no file comes from it`);
  }
});

test('every file the builds need (headers, static libraries) is named by a line', () => {
  const { files } = scanProject();
  const named = new Set(readList().flatMap((l) => l.provides));
  assert.ok(files.size >= 5, `found ${[...files.keys()].join(', ')}`);
  for (const [file, where] of files)
    assert.ok(named.has(file), `${where} needs ${file}: name it on the line of its package in .ci/debian-packages`);
});

test('every package the kernel and scheduler builds ask for is listed, with what they check', () => {
  const list = readList();
  for (const r of [...KERNEL_BUILD_REQUIREMENTS, ...SCHEDULER_BUILD_REQUIREMENTS]) {
    const line = list.find((l) => l.pkg === r.package);
    assert.ok(line !== undefined, `${r.package} (for ${r.what}) is in .ci/debian-packages`);
    assert.ok(line.provides.includes(r.what), `the line of ${r.package} names ${r.what}`);
  }
});

test("this machine's dpkg agrees: each listed command or file belongs to its package (or a package it depends on)", () => {
  const list = readList();
  const base = Object.entries(TOOLS).filter(([, p]) => BASE_PACKAGES.has(p));
  const paths = [...new Set([...list.flatMap((l) => l.provides), ...base.map(([t]) => t)].flatMap(candidates))].filter(
    (p) => existsSync(p),
  );
  const d = dpkg(paths, [...list.map((l) => l.pkg), ...BASE_PACKAGES]);
  if (d === undefined) {
    console.log('  (no dpkg-query here: the package check is left to a Debian machine)');
    return;
  }
  const ownersOf = (entry: string): string[] => candidates(entry).flatMap((c) => d.owners.get(c) ?? []);
  let checked = 0;
  for (const l of list) {
    const info = d.installed.get(l.pkg);
    if (info === undefined) continue; // not installed here: .ci/run installs it
    for (const entry of l.provides) {
      const owners = ownersOf(entry);
      assert.ok(
        owners.length > 0,
        `${l.pkg} is installed, yet dpkg knows no ${entry}: the line names the wrong command or file`,
      );
      assert.ok(
        owners.some((o) => o === l.pkg || info.depends.has(o)),
        `${entry} comes from ${owners.join(', ')}, not from ${l.pkg} (or what it depends on)`,
      );
      checked++;
    }
  }
  for (const [tool, pkg] of base) {
    const owners = ownersOf(tool);
    assert.ok(
      owners.includes(pkg),
      `${tool} comes from ${owners.join(', ') || 'no package'} here, not ${pkg} as TOOLS says`,
    );
    assert.is(
      d.installed.get(pkg)?.priority,
      'required',
      `${pkg} (${tool}) is Priority: required, so on every Debian 12 system`,
    );
  }
  console.log(`  (dpkg: ${checked} listed commands and files checked)`);
});

test('.ci/run installs what the list names, after apt-get update, then runs npm ci and npm test', () => {
  const run = readFileSync(join(root, '.ci', 'run'), 'utf8');
  const names = readList().map((l) => l.pkg);
  const said = spawnSync('bash', [join(root, '.ci', 'run'), '--packages'], { encoding: 'utf8' });
  assert.is(said.status, 0, said.stderr);
  assert.equal(said.stdout.trim().split('\n'), names, '.ci/run --packages reads the list');
  // it reads the file next to it, not a copy of its own: another list, other names
  const tmp = mkdtempSync(join(tmpdir(), 'ktstr-ci-'));
  try {
    mkdirSync(join(tmp, '.ci'));
    copyFileSync(join(root, '.ci', 'run'), join(tmp, '.ci', 'run'));
    writeFileSync(join(tmp, '.ci', 'debian-packages'), '# x\nzz-one  a   # why\n\nzz-two/zz-suite  /b\n');
    const other = spawnSync('bash', [join(tmp, '.ci', 'run'), '--packages'], { encoding: 'utf8' });
    assert.equal(other.stdout.trim().split('\n'), ['zz-one', 'zz-two']);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const update = run.indexOf('apt-get update');
  const install = run.indexOf('apt-get install');
  assert.ok(update > 0 && install > update, 'apt-get update, then apt-get install');
  assert.match(run, /apt-get install[^\n]*"\$\{need\[@\]\}"/, 'it installs the missing packages of the list');
  assert.match(run, /need\+=\("\$p"\)/);
  assert.match(run, /apt-get install[^\n]*-t "\$suite"/, 'a pkg/suite entry is installed from its suite');
  assert.equal(run.trim().split('\n').slice(-2), ['npm ci', 'npm test']);
});

test.run();
