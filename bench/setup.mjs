// First step of every `npm run bench*`: installs the benchmark peers (lmdb,
// classic-level, RocksDB, better-sqlite3) from bench/package.json and its
// lock, once, so the library's own `npm ci` never builds them. Then links
// dist/bench/node_modules to bench/node_modules: the benchmarks run from
// dist/bench/, and Node resolves a package from the importing file's
// directory upwards.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(BENCH, '..');
const installed = join(BENCH, 'node_modules', '.package-lock.json');
const lock = join(BENCH, 'package-lock.json');

if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  process.stderr.write('bench: installing the benchmark peers (bench/package.json), once; RocksDB and SQLite may compile for minutes\n');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: BENCH, stdio: 'inherit', shell: process.platform === 'win32' });
  // A peer that fails to build costs its own rows ("unavailable: why"), not the run.
  if (result.status !== 0)
    process.stderr.write('bench: `npm ci` in bench/ failed; stores whose peer is missing will be reported unavailable\n');
}

const link = join(ROOT, 'dist', 'bench', 'node_modules');
mkdirSync(join(ROOT, 'dist', 'bench'), { recursive: true });
if (existsSync(link) || isDanglingLink(link)) rmSync(link, { recursive: true, force: true });
symlinkSync(join('..', '..', 'bench', 'node_modules'), link, 'junction');

function isDanglingLink(path) {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
