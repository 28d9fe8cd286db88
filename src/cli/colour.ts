// Colour decisions: ANSI colour only on a terminal, never with NO_COLOR (no-color.org:
// set and non-empty) or TERM=dumb. kleur's switch is global, so callers pick the stream
// they are about to write to.

import kleur from 'kleur';

/** Whether text written to `stream` may carry ANSI colour. */
export function colourAllowed(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

/** kleur, switched on or off for `stream`. */
export function paint(stream: { isTTY?: boolean }): typeof kleur {
  kleur.enabled = colourAllowed(stream);
  return kleur;
}
