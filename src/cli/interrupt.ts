// Ctrl-C (and SIGTERM) during a run of VMs: the first asks the run to stop its cells cleanly
// (their VMs end, queued ones never start), the second quits at once with status 130.

import { EXIT_INTERRUPTED } from './errors.js';

/** Installs the handlers; returns the function that removes them. `what`: "every cell", "every test". */
export function stopOnInterrupt(
  what: string,
  interrupt: () => void,
  err: NodeJS.WritableStream = process.stderr,
): () => void {
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT_INTERRUPTED);
    err.write(`\nktstr-wasm: interrupted: stopping ${what} (Ctrl-C again to quit at once)\n`);
    interrupt();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
