/**
 * The torture runner: `npm run torture -- [options]`.
 *
 *   --seed N     first seed (default 1); alone, replays just that seed and
 *                prints its full report (trace and fault logs)
 *   --runs M     how many seeds, N .. N+M-1 (default 1000, or 1 with --seed)
 *   --jobs J     worker threads (default: available cores)
 *   --sweeps     also run the crash/kill/error sweeps, every crash policy
 *   --encrypted  run the engine on EncryptedFs over the faulty disk (seeds
 *                and sweeps); the master key derives from the seed
 *   --spill K    spill scenarios (spill.ts: a full primary spills to a second
 *                disk, both lose power, spillFs withheld at reopen) for seeds
 *                N .. N+K-1, in this thread (default: min(M, 200))
 *   --strict     count known issues (known-issues.ts) as failures
 *   --verbose    print every violation in full
 *
 * Exit status 1 on any violation (or known issue with --strict), or when a
 * run of 500+ seeds leaves a coverage mark unhit.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { KNOWN_ISSUES } from './known-issues.js';
import { formatMarks, missingMarks } from './marks.js';
import { runSeeds, type SeedSummary } from './pool.js';
import { emptyStats, scenarioCount, type ScenarioStats } from './scenario.js';
import { WORKLOADS, crashSweep, encrypted, errorSweep, killSweep } from './sweeps.js';
import { POLICIES } from './generator.js';
import { SpillViolation, emptySpillStats, runSpillSeed } from './spill.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      runs: { type: 'string' },
      jobs: { type: 'string' },
      sweeps: { type: 'boolean', default: false },
      encrypted: { type: 'boolean', default: false },
      spill: { type: 'string' },
      strict: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const from = values.seed === undefined ? 1 : Number(values.seed);
  const runs = values.runs !== undefined ? Number(values.runs) : values.seed !== undefined ? 1 : 1000;
  const jobs = values.jobs !== undefined ? Number(values.jobs) : Math.min(availableParallelism(), runs);
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(runs) || runs < 0 || !Number.isSafeInteger(jobs) || jobs < 1) {
    console.error('usage: npm run torture -- [--seed N] [--runs M] [--jobs J] [--sweeps] [--encrypted] [--strict] [--verbose]');
    return 2;
  }
  const spillRuns = values.spill !== undefined ? Number(values.spill) : Math.min(runs, 200);
  if (!Number.isSafeInteger(spillRuns) || spillRuns < 0) {
    console.error('--spill K: K must be a whole number');
    return 2;
  }
  const verbose = values.verbose === true || runs === 1;
  const encryptedRun = values.encrypted === true;
  console.log(
    `torture: seeds ${from}..${from + runs - 1} on ${jobs} thread(s)${encryptedRun ? ', on EncryptedFs' : ''}, node ${process.version}`,
  );

  const started = Date.now();
  const total = emptyStats();
  const failed: SeedSummary[] = [];
  const known = new Map<string, number[]>();
  let done = 0;
  let lastReport = started;
  await runSeeds(
    from,
    runs,
    jobs,
    (summary) => {
      done++;
      for (const [key, value] of Object.entries(summary.stats) as [keyof ScenarioStats, number][]) total[key] += value;
      if (summary.status === 'fail') {
        failed.push(summary);
        console.log(verbose ? summary.message : summary.message!.split('\n').slice(0, 3).join('\n'));
        if (!verbose) console.log(`  (replay: npm run torture -- --seed ${summary.seed}${encryptedRun ? ' --encrypted' : ''})`);
      } else if (summary.status === 'known') {
        known.set(summary.knownId!, [...(known.get(summary.knownId!) ?? []), summary.seed]);
        if (verbose) console.log(summary.message);
      }
      const now = Date.now();
      if (now - lastReport > 10_000) {
        lastReport = now;
        console.log(`  ${done}/${runs} seeds, ${failed.length} failing, ${rate(scenarioCount(total), now - started)} scenarios/min`);
      }
    },
    { encrypted: encryptedRun },
  );
  const seedMs = Date.now() - started;

  let sweepCases = 0;
  let sweepFailures = 0;
  if (values.sweeps === true) {
    for (const workload of encryptedRun ? WORKLOADS.map(encrypted) : WORKLOADS) {
      for (const [name, run] of [
        ['crash', () => crashSweep(workload, POLICIES.length)],
        ['kill', () => killSweep(workload)],
        ['error', () => errorSweep(workload)],
      ] as const) {
        const result = await run();
        sweepCases += result.cases;
        sweepFailures += result.violations.length;
        console.log(`sweep ${name} ${workload.name}: ${result.cases} cases, ${result.violations.length} violation(s)`);
        for (const v of result.violations)
          console.log(verbose ? v.violation.message : v.violation.message.split('\n').slice(0, 4).join('\n'));
      }
    }
  }

  const spill = emptySpillStats();
  let spillFailures = 0;
  for (let seed = from; seed < from + spillRuns; seed++) {
    try {
      await runSpillSeed(seed, spill);
    } catch (error) {
      if (!(error instanceof SpillViolation)) throw error;
      spillFailures++;
      console.log(verbose ? error.message : error.message.split('\n').slice(0, 2).join('\n'));
    }
  }

  const scenarios = scenarioCount(total);
  console.log(
    [
      '',
      `seeds: ${done} (${failed.length} failing, ${[...known.values()].reduce((n, s) => n + s.length, 0)} known issues) in ${(seedMs / 1000).toFixed(1)} s`,
      `crash/fault scenarios: ${scenarios} (${total.reopenChecks} reopens after restart/kill/power loss, ${total.bursts} fault bursts, ${total.flips} bit flips), ${rate(scenarios, seedMs)} per minute`,
      `  of which ${total.powerLosses} power losses, ${total.kills} kills, ${total.recoveryCrashes} power cuts during recovery, ${total.zeroSpaceOpens} opens with 0 bytes free`,
      `writes ${total.writes}; ${total.acks} acknowledgements of writes and barriers (${total.syncAcks} durable); ${total.failures} failed under injected faults; purges ${total.purges} (${total.purgeFailures} failed)`,
      `flips: ${total.syncedLostToUnprovenFlip} cut acknowledged-synced data the table calls unproven (${total.syncedLostSilently} without a report); ` +
        `checkpoint flips refused ${total.checkpointFlipRefused}, same ${total.checkpointFlipSame}; cuts below GC ${total.cutBelowGc}; ` +
        `header damage named at the predecessor ${total.corruptionNamedPredecessor}`,
      `spill: ${spillRuns} seeds (${spillFailures} failing): ${spill.scenarios} power losses on both disks, ${spill.spilledFiles} files on spillFs at the crash, ` +
        `${spill.withheldRefused} opens without spillFs refused (the oracle rejected ${spill.oracleCaughtLoss} states TolerateAny salvaged without it)`,
      values.sweeps === true ? `sweep cases: ${sweepCases} (${sweepFailures} violations)` : 'sweeps: not run (--sweeps)',
      'coverage marks:',
      formatMarks(),
    ].join('\n'),
  );
  for (const issue of KNOWN_ISSUES) {
    const seeds = known.get(issue.id);
    if (seeds !== undefined)
      console.log(
        `known issue ${issue.id} (${seeds.length} seed(s): ${seeds.slice(0, 10).join(', ')}${seeds.length > 10 ? ', …' : ''}): ${issue.summary}`,
      );
  }
  let status = failed.length > 0 || sweepFailures > 0 || spillFailures > 0 ? 1 : 0;
  if (values.strict === true && known.size > 0) status = 1;
  const missing = missingMarks();
  if (missing.length > 0) {
    console.log(`coverage marks never hit: ${missing.join(', ')}`);
    if (done >= 500) status = 1;
  }
  console.log(status === 0 ? 'PASS' : 'FAIL');
  return status;
}

function rate(count: number, ms: number): string {
  return ms === 0 ? '-' : Math.round((count * 60_000) / ms).toString();
}

// `node --test dist/test/` loads every file under test/ as a test file; the
// runner only runs when invoked directly.
if (process.env.NODE_TEST_CONTEXT === undefined) process.exitCode = await main();
