/**
 * Runs seeds on worker threads (the scenarios are CPU-bound and independent)
 * and gathers their results and coverage marks. A seed's outcome does not
 * depend on which worker runs it, so a parallel run replays seed by seed.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runSeed, type SeedOptions } from './generator.js';
import { addMarks, markCounts } from './marks.js';
import type { ScenarioStats } from './scenario.js';

export interface SeedSummary {
  readonly seed: number;
  readonly status: 'pass' | 'fail' | 'known';
  readonly stats: ScenarioStats;
  /** The violation report (seed, policy, invariant, trace, fault log), when not a pass. */
  readonly message: string | undefined;
  readonly knownId: string | undefined;
}

type ToWorker = { readonly seeds: readonly number[]; readonly options: SeedOptions } | { readonly done: true };
type FromWorker =
  | { readonly kind: 'ready' }
  | { readonly kind: 'result'; readonly summary: SeedSummary }
  | { readonly kind: 'marks'; readonly marks: [string, number][] };

export async function summarize(seed: number, options: SeedOptions = {}): Promise<SeedSummary> {
  const result = await runSeed(seed, options);
  return { seed, status: result.status, stats: result.stats, message: result.violation?.message, knownId: result.known?.id };
}

/** Seeds handed to a worker at a time: small enough to balance, large enough to keep messages rare. */
const CHUNK = 8;

/**
 * Runs seeds `from .. from + count - 1` on `jobs` threads (in this thread when
 * jobs is 1), calling `onResult` as each finishes. Marks from the workers are
 * added to this thread's marks.
 */
export async function runSeeds(
  from: number,
  count: number,
  jobs: number,
  onResult: (summary: SeedSummary) => void,
  options: Pick<SeedOptions, 'encrypted'> = {},
): Promise<void> {
  if (jobs <= 1) {
    for (let seed = from; seed < from + count; seed++) onResult(await summarize(seed, options));
    return;
  }
  let next = from;
  const end = from + count;
  const take = (): number[] => {
    const seeds: number[] = [];
    while (seeds.length < CHUNK && next < end) seeds.push(next++);
    return seeds;
  };
  const workers = Array.from(
    { length: Math.min(jobs, count) },
    () => new Worker(new URL(import.meta.url), { workerData: { torturePool: true } }),
  );
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          worker.on('message', (message: FromWorker) => {
            if (message.kind === 'result') onResult(message.summary);
            else if (message.kind === 'marks') addMarks(message.marks);
            if (message.kind === 'ready') {
              const seeds = take();
              worker.postMessage((seeds.length > 0 ? { seeds, options } : { done: true }) satisfies ToWorker);
            }
          });
          worker.on('error', reject);
          worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`torture worker exited with code ${code}`))));
        }),
    ),
  );
}

async function serve(): Promise<void> {
  const port = parentPort!;
  const ask = (): void => port.postMessage({ kind: 'ready' } satisfies FromWorker);
  port.on('message', (message: ToWorker) => {
    if ('done' in message) {
      port.postMessage({ kind: 'marks', marks: [...markCounts()] } satisfies FromWorker);
      port.close();
      return;
    }
    void (async () => {
      for (const seed of message.seeds)
        port.postMessage({ kind: 'result', summary: await summarize(seed, message.options) } satisfies FromWorker);
      ask();
    })();
  });
  ask();
}

if (!isMainThread && (workerData as { torturePool?: boolean } | null)?.torturePool === true) await serve();
