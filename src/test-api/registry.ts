// `ktstrTest(name, options, body)`: declares a test. Loading a test file only registers its
// tests (into a registry the loader installs: the host lists them, the guest agent runs one);
// nothing runs at declaration.

import { checkOptions, type TestOptions } from './options.js';
import type { TestContext } from './context.js';

export type TestBody = (ctx: TestContext) => unknown;

export interface DeclaredTest {
  name: string;
  options: TestOptions;
  body: TestBody;
}

const REGISTRY = Symbol.for('ktstr-wasm.test-registry');

type Holder = { [REGISTRY]?: DeclaredTest[] };

/** Installs a fresh registry and returns it (the loader calls this before evaluating a test file). */
export function openRegistry(): DeclaredTest[] {
  const list: DeclaredTest[] = [];
  (globalThis as Holder)[REGISTRY] = list;
  return list;
}

export function ktstrTest(name: string, options: TestOptions, body: TestBody): void {
  if (typeof name !== 'string' || name.trim() === '' || name.length > 200)
    throw new TypeError('ktstrTest: the name must be a non-empty string of at most 200 characters');
  if (typeof body !== 'function') throw new TypeError(`ktstrTest("${name}"): the body must be a function (ctx) => ...`);
  const list = (globalThis as Holder)[REGISTRY];
  if (list === undefined)
    throw new Error(`ktstrTest("${name}"): test files run under \`ktstr-wasm test\`, not directly`);
  if (list.some((t) => t.name === name))
    throw new Error(`ktstrTest("${name}"): a test of that name is already declared in this file`);
  list.push({ name, options: checkOptions(name, options), body });
}
