// commander for the CLI, loaded with require(): commander is a CommonJS package, and importing
// it through Node's ESM loader (its esm.mjs wrapper, the CJS export scan, each lib/ file
// resolved by the ESM loader) took ~10 ms more per CLI start natively, ~15x that in the
// emulated test host (measured with npm run bench:cli). Same classes, same types.

import { createRequire } from 'node:module';
import type * as CommanderModule from 'commander';

const commander = createRequire(import.meta.url)('commander') as typeof CommanderModule;

export const { Command, CommanderError, InvalidArgumentError, Option } = commander;
export type Command = CommanderModule.Command;
export type CommanderError = CommanderModule.CommanderError;
export type InvalidArgumentError = CommanderModule.InvalidArgumentError;
export type Option = CommanderModule.Option;

/** Commander option parser: a repeatable option's values, in order. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Commander option parser: an integer from 1 to `max`, else a usage error naming the option. */
/** A parser for an integer option from 0 to `max`. */
export function nonNegativeInt(what: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n > max) throw new InvalidArgumentError(`${what} must be an integer from 0 to ${max}.`);
    return n;
  };
}

export function positiveInt(what: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max)
      throw new InvalidArgumentError(`${what} must be an integer from 1 to ${max}.`);
    return n;
  };
}
