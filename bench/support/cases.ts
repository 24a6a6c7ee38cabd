/**
 * One case = one fresh Node process on one fresh directory. The orchestrator
 * describes the case as JSON, runs `node dist/bench/case.js` with it, and
 * reads the result back from a file (not stdout: native peers may print).
 * A fresh process per case means no case inherits another's heap, JIT
 * state, page-cache-warm files or background threads.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreId } from '../stores/registry.js';

export type WorkloadId = 'w1' | 'w2' | 'w3' | 'w4-load' | 'w4-reopen' | 'rfc' | 'rfc-order' | 'syscalls' | 'floor';

export interface CaseSpec {
  /** Human-readable and unique within a run, e.g. `w1 raftlog-posix 4K`. */
  name: string;
  workload: WorkloadId;
  store: StoreId;
  /** The case's own directory; created empty unless `keepDir`. */
  dir: string;
  /** Second directory (the RFC's state machine), created empty too. */
  dir2?: string;
  warmupSeconds: number;
  measureSeconds: number;
  params: Record<string, number | string>;
  /** W4's reopen cases run on the directory the load case left. */
  keepDir?: boolean;
}

export interface CaseOutcome<R> {
  spec: CaseSpec;
  ok: boolean;
  /** Present when ok. */
  result?: R;
  error?: string;
  wallSeconds: number;
  /** 1-minute load average before and after the case (other work on the machine skews results). */
  loadBefore: number;
  loadAfter: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/bench/case.js, next to this file's directory once compiled. */
export const CASE_SCRIPT = join(HERE, '..', 'case.js');

export interface SpawnOptions {
  /** Run under this wrapper command (strace), with its arguments before `node`. */
  wrapper?: string[];
  /** Seconds before the case is killed as hung. */
  timeoutSeconds: number;
}

export async function runCase<R>(spec: CaseSpec, options: SpawnOptions): Promise<CaseOutcome<R>> {
  if (spec.keepDir !== true) {
    rmSync(spec.dir, { recursive: true, force: true });
    mkdirSync(spec.dir, { recursive: true });
    if (spec.dir2 !== undefined) {
      rmSync(spec.dir2, { recursive: true, force: true });
      mkdirSync(spec.dir2, { recursive: true });
    }
  }
  const resultPath = join(dirname(spec.dir), `${safeName(spec.name)}.result.json`);
  rmSync(resultPath, { force: true });
  const specPath = `${resultPath}.spec.json`;
  writeFileSync(specPath, JSON.stringify(spec));
  settleDisk(dirname(spec.dir));
  const loadBefore = loadavg()[0]!;
  const started = performance.now();
  const argv = [...(options.wrapper ?? []), process.execPath, '--expose-gc', CASE_SCRIPT, specPath, resultPath];
  const { code, stderr, timedOut } = await spawnChild(argv, options.timeoutSeconds);
  const wallSeconds = (performance.now() - started) / 1000;
  const loadAfter = loadavg()[0]!;
  rmSync(specPath, { force: true });
  let parsed: { ok: boolean; result?: R; error?: string } | undefined;
  try {
    parsed = JSON.parse(readFileSync(resultPath, 'utf8')) as { ok: boolean; result?: R; error?: string };
  } catch {
    parsed = undefined;
  }
  rmSync(resultPath, { force: true });
  if (parsed === undefined) {
    const why = timedOut ? `timed out after ${options.timeoutSeconds} s` : `exited with ${code} and no result`;
    return {
      spec,
      ok: false,
      error: `${why}${stderr.trim() === '' ? '' : `: ${lastLines(stderr, 3)}`}`,
      wallSeconds,
      loadBefore,
      loadAfter,
    };
  }
  return { spec, ok: parsed.ok, result: parsed.result, error: parsed.error, wallSeconds, loadBefore, loadAfter };
}

/**
 * Flushes the file system holding `path` (syncfs, through coreutils'
 * `sync -f`) before a case starts: the writeback of the case before it and
 * the deletion of that case's directory would otherwise land inside this
 * case's measurement, billing each store for whichever ran just before it.
 * Best effort: where `sync -f` is missing the case runs unsettled.
 */
function settleDisk(path: string): void {
  spawnSync('sync', ['-f', path], { stdio: 'ignore', timeout: 60_000 });
}

function spawnChild(argv: string[], timeoutSeconds: number): Promise<{ code: number | null; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      // Keep the tail only: a chatty peer must not grow the orchestrator's heap.
      stderr = (stderr + chunk).slice(-8192);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutSeconds * 1000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, timedOut });
    });
  });
}

/** The lines of a crashed child's stderr that say what went wrong: the error line if there is one, else the tail. */
function lastLines(text: string, count: number): string {
  const lines = text.trim().split('\n');
  const error = lines.find((line) => /^\w*Error\b|^Error:|\bERR_/.test(line.trim()));
  return error !== undefined ? error.trim() : lines.slice(-count).join(' | ');
}

export function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}
