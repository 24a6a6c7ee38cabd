/**
 * One benchmark case, in its own process: `node dist/bench/case.js SPEC RESULT`.
 * Reads the case spec (JSON), runs it, writes `{ ok, result | error }` to
 * RESULT. Started by the orchestrator (bench/run.ts), never by hand.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { CaseSpec } from './support/cases.js';
import { loadStore } from './stores/registry.js';
import { runW1 } from './workloads/w1.js';
import { runW2 } from './workloads/w2.js';
import { runW3 } from './workloads/w3.js';
import { isKillLoad, runW4Load, runW4Reopen } from './workloads/w4.js';
import { runRfc, runRfcOrder } from './workloads/rfc.js';
import { runSyscalls } from './workloads/syscalls.js';
import { runFloor } from './workloads/floor.js';

async function run(spec: CaseSpec): Promise<unknown> {
  if (spec.workload === 'rfc') return runRfc(spec);
  if (spec.workload === 'rfc-order') return runRfcOrder(spec);
  if (spec.workload === 'floor') return runFloor(spec);
  const descriptor = await loadStore(spec.store);
  switch (spec.workload) {
    case 'w1':
      return runW1(spec, descriptor);
    case 'w2':
      return runW2(spec, descriptor);
    case 'w3':
      return runW3(spec, descriptor);
    case 'w4-load':
      return runW4Load(spec, descriptor);
    case 'w4-reopen':
      return runW4Reopen(spec, descriptor);
    case 'syscalls':
      return runSyscalls(spec, descriptor);
  }
}

const [specPath, resultPath] = process.argv.slice(2);
if (specPath === undefined || resultPath === undefined) {
  process.stderr.write('usage: node dist/bench/case.js SPEC.json RESULT.json (started by bench/run.ts)\n');
  process.exit(2);
}
const spec = JSON.parse(readFileSync(specPath, 'utf8')) as CaseSpec;
try {
  const result = await run(spec);
  writeFileSync(resultPath, JSON.stringify({ ok: true, result }));
} catch (error) {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  writeFileSync(resultPath, JSON.stringify({ ok: false, error: message }));
  process.exitCode = 1;
}
// A crash-recovery load: the store is still open, its writes synced; die the way a crash does.
if (isKillLoad(spec)) process.kill(process.pid, 'SIGKILL');
// Some native peers keep threads alive past close; the result is written, so leave.
process.exit();
