import 'reflect-metadata';
import { evaluationBench } from './evaluation';
import { hygieneBench } from './hygiene';
import { cleanup } from './support';
import { replayBench } from './replay';
import { sweepBench } from './sweep';
import { verifyBench } from './verify';

/** `npm run bench -- <name>`: runs one benchmark, then undoes what it set up. */

const BENCHMARKS: Record<string, () => Promise<number>> = {
  verify: verifyBench,
  replay: replayBench,
  sweep: sweepBench,
  hygiene: hygieneBench,
  evaluation: evaluationBench,
};

/** The whole benchmark, set-up and clean-up included, must finish within this. */
const DEADLINE_MS = 170_000;

async function main(): Promise<number> {
  const name = process.argv[2];
  const bench = name === undefined ? undefined : BENCHMARKS[name];
  if (!bench) {
    console.error(
      `${name === undefined ? 'no benchmark given' : `unknown benchmark "${name}"`}; ` +
        `known: ${Object.keys(BENCHMARKS).join(', ')} (npm run bench -- <name>)`,
    );
    return 2;
  }
  const overrun = setTimeout(() => {
    console.error(`benchmark "${name}" overran its ${DEADLINE_MS / 1000} s deadline; cleaning up`);
    void cleanup.run(5_000).finally(() => process.exit(1));
  }, DEADLINE_MS);
  overrun.unref();
  try {
    return await bench();
  } catch (error) {
    console.error(
      `benchmark "${name}" failed:`,
      error instanceof Error ? (error.stack ?? error.message) : error,
    );
    return 1;
  } finally {
    await cleanup.run();
    clearTimeout(overrun);
  }
}

void main().then((code) => process.exit(code));
