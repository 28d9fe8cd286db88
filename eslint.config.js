// ESLint flat config (`npm run lint`; test/lint.test.ts runs it in `npm test`): ESLint's and
// typescript-eslint's recommended rules, without type information so a whole run stays a few
// seconds, over src/, test/, tests/, bin/, examples/ and the config files. assembly/collapse.ts
// and assembly/introspect.ts are AssemblyScript (i32, usize, decorators on functions), not
// TypeScript ESLint can check; the two ABI files beside them are plain TypeScript and linted.

import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The few Node/web globals the untyped scripts (bin/, examples/) use; TypeScript checks the rest. */
const nodeGlobals = Object.fromEntries(
  ['console', 'process', 'URL', 'TextEncoder', 'TextDecoder', 'WebAssembly', 'fetch'].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'build/',
      'node_modules/',
      'scratch/',
      'tmp/',
      'native/',
      'scx-ktstr/',
      'assembly/collapse.ts',
      'assembly/introspect.ts',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js', 'bin/ktstr-wasm'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: nodeGlobals },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // a leading underscore is the codebase's mark for "unused on purpose": an interface's
      // parameter a function does not need, a field left out of a copy with `...rest`
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // tests strip ANSI colours from terminal output and feed names with control bytes on purpose
    files: ['test/**/*.ts'],
    rules: { 'no-control-regex': 'off' },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
);
