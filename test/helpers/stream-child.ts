// Child process for memory and throughput measurements: streams N MB of generated log
// through collapseStream on one engine into a byte-counting sink, then prints one JSON line
// with bytes, time and the process's peak RSS (so each measurement is its own process).
//
//   node dist/test/helpers/stream-child.js <wasm|ts> <megabytes> [seed]

import { Readable, Writable } from 'node:stream';
import { collapseStream, createCollapser, type EngineName } from '../../src/collapse/index.js';
import { logChunks, logPool } from './big-log.js';

export interface ChildResult {
  engine: EngineName;
  inputBytes: number;
  outputBytes: number;
  seconds: number;
  maxRssMiB: number;
  poolMiB: number;
}

async function main(): Promise<void> {
  const engine = process.argv[2] as EngineName;
  const megabytes = Number(process.argv[3]);
  const seed = Number(process.argv[4] ?? 1);
  if ((engine !== 'wasm' && engine !== 'ts') || !(megabytes > 0)) {
    throw new Error('usage: stream-child.js <wasm|ts> <megabytes> [seed]');
  }
  const pool = logPool(seed);
  const poolBytes = pool.reduce((n, c) => n + c.length, 0);
  const total = Math.round(megabytes * 1e6);
  let inputBytes = 0;
  let outputBytes = 0;
  const input = Readable.from(
    (function* () {
      for (const chunk of logChunks(total, pool)) {
        inputBytes += chunk.length;
        yield chunk;
      }
    })(),
  );
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      outputBytes += chunk.length;
      done();
    },
  });
  const start = process.hrtime.bigint();
  await collapseStream(input, sink, (emit) => createCollapser(engine, emit));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const result: ChildResult = {
    engine,
    inputBytes,
    outputBytes,
    seconds,
    maxRssMiB: process.resourceUsage().maxRSS / 1024, // maxRSS is in KiB
    poolMiB: poolBytes / (1 << 20),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
