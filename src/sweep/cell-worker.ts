// The piscina worker: runs one cell per task on this thread (src/cell/run-cell.ts). Phases go
// back on the task's MessagePort; an `abort` message on it ends the cell's VM cleanly (the
// thread is never terminated mid-cell, so every fd and vCPU thread is released by bootVm).

import type { MessagePort } from 'node:worker_threads';
import { runCell, type CellSpec } from '../cell/run-cell.js';
import type { CellResult } from '../cell/result.js';

export interface CellTask {
  spec: CellSpec;
  port: MessagePort;
}

export type CellPortMessage = { type: 'phase'; phase: string } | { type: 'console'; text: string };

export default async function runCellTask({ spec, port }: CellTask): Promise<CellResult> {
  const ac = new AbortController();
  port.on('message', (m: { type?: string }) => {
    if (m?.type === 'abort') ac.abort();
  });
  try {
    return await runCell(spec, {
      signal: ac.signal,
      onPhase: (phase) => port.postMessage({ type: 'phase', phase } satisfies CellPortMessage),
    });
  } finally {
    port.close();
  }
}
