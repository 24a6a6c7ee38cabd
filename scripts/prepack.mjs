// `npm pack` / `npm publish` step (prepack): makes the tarball self-contained
// so installing it runs no script at all.
//
// 1. Compiles the TypeScript (dist/ ships; consumers never run tsc) and drops
//    compiled files whose source is gone, so a stale module never ships.
//    RAFTLOG_PACK_SKIP_TSC=1 skips the compile (the install test, run by
//    `npm test` right after its own tsc, while other tests load dist/).
// 2. Puts a prebuilt addon under hardware/prebuilds/linux-<arch>/ for x64 and
//    arm64 (node-gyp-build picks it at run time). The host's comes from the
//    checkout's own build (hardware/build/Release, built by `npm ci`) when
//    that is newer than the sources, else from prebuildify; other ones are
//    cross-compiled with Debian's <triple>-g++ when installed. A target that
//    cannot be built is left out with a warning: that platform then runs
//    without the addon, or builds it with `npm run build:native`.
//    RAFTLOG_PREBUILD_ARCHS=x64,arm64 picks the architectures (the install
//    test packs the host's only). binding.gyp lives in hardware/, not at the
//    package root, because npm gives any package with a root binding.gyp an
//    implicit `install: node-gyp rebuild` (even from a lockfile, where a
//    `gypfile: false` is not recorded).
// 3. Writes the manifest the tarball carries: no lifecycle scripts (`prepare`
//    would make npm ask for approval on a tarball or git install; the
//    repository needs it, the tarball does not), and `build:native` kept for
//    building from source. scripts/postpack.mjs restores package.json.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { arch as hostArch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKUP, restoreManifest } from './manifest.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HARDWARE = join(ROOT, 'hardware');
/** What node-gyp builds from, all in hardware/. */
const ADDON_SOURCES = readdirSync(HARDWARE).filter((f) => f === 'binding.gyp' || /\.(cc|h)$/.test(f));
/** Cross compilers by Node arch, as Debian names them (g++-aarch64-linux-gnu, g++-x86-64-linux-gnu). */
const CROSS_PREFIX = { arm64: 'aarch64-linux-gnu-', x64: 'x86_64-linux-gnu-' };

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: ROOT, ...options });
  return result.status === 0;
}

function warn(message) {
  process.stderr.write(`raftlog prepack: ${message}\n`);
}

// ---- 1. TypeScript --------------------------------------------------------

restoreManifest(ROOT); // a previous pack that died between prepack and postpack
if (process.env.RAFTLOG_PACK_SKIP_TSC !== '1' && !run('tsc', ['-p', 'tsconfig.json'], { shell: process.platform === 'win32' }))
  process.exit(1);

/** Compiled files under dist/<dir> whose .ts source no longer exists. */
function dropOrphans(dir) {
  const out = join(ROOT, 'dist', dir);
  if (!existsSync(out)) return;
  for (const entry of readdirSync(out, { withFileTypes: true })) {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (existsSync(join(ROOT, rel))) dropOrphans(rel);
      else rmSync(join(ROOT, 'dist', rel), { recursive: true });
      continue;
    }
    const source = rel.replace(/(\.d\.ts|\.js)(\.map)?$/, '.ts');
    if (source !== rel && !existsSync(join(ROOT, source))) rmSync(join(ROOT, 'dist', rel));
  }
}
for (const dir of ['src', 'cli', 'backends', 'hardware']) dropOrphans(dir);

// ---- 2. Prebuilt addons ---------------------------------------------------

const newestSource = Math.max(...ADDON_SOURCES.map((f) => statSync(join(HARDWARE, f)).mtimeMs));
const PREBUILDS = join(HARDWARE, 'prebuilds');

function prebuildDir(arch) {
  return join(PREBUILDS, `linux-${arch}`);
}

function isFresh(arch) {
  const dir = prebuildDir(arch);
  if (!existsSync(dir)) return false;
  const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
  return files.length > 0 && files.every((f) => statSync(join(dir, f)).mtimeMs > newestSource);
}

function hasCommand(command) {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The host's addon from hardware/build/Release, stripped, when it is newer than every source. */
function fromCheckoutBuild(arch) {
  const built = join(HARDWARE, 'build', 'Release', 'raftlog_native.node');
  if (arch !== hostArch() || !existsSync(built) || statSync(built).mtimeMs <= newestSource) return false;
  const dir = prebuildDir(arch);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // Named as prebuildify names it: node-gyp-build reads the tags (glibc: never loaded on musl).
  const target = join(dir, 'raftlog.glibc.node');
  copyFileSync(built, target);
  if (hasCommand('strip')) run('strip', [target]);
  return true;
}

/** prebuildify in a scratch copy of the addon sources, so hardware/build/ (the checkout's own addon) is never clobbered. */
function withPrebuildify(arch) {
  const cross = arch === hostArch() ? '' : CROSS_PREFIX[arch];
  if (cross === undefined) return `no cross compiler known for ${arch}`;
  if (!hasCommand(`${cross}g++`))
    return `${cross}g++ is not installed (Debian: apt-get install g++-${cross.slice(0, -1).replace(/_/g, '-')})`;
  const stage = mkdtempSync(join(tmpdir(), `raftlog-prebuild-${arch}-`));
  try {
    for (const file of ADDON_SOURCES) copyFileSync(join(HARDWARE, file), join(stage, file));
    writeFileSync(join(stage, 'package.json'), JSON.stringify({ name: 'raftlog' }));
    const env = { ...process.env };
    if (cross !== '') Object.assign(env, { CC: `${cross}gcc`, CXX: `${cross}g++`, LINK: `${cross}g++`, AR: `${cross}ar` });
    const args = ['--napi', '--strip', '--tag-libc', '--arch', arch, '--cwd', stage, '--out', stage];
    if (cross !== '') args.push('--strip-bin', `${cross}strip`);
    if (!run('prebuildify', args, { env, shell: process.platform === 'win32' })) return 'prebuildify failed (see above)';
    const dir = prebuildDir(arch);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const built = join(stage, 'prebuilds', `linux-${arch}`);
    for (const file of readdirSync(built)) copyFileSync(join(built, file), join(dir, file));
    return undefined;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (process.platform === 'linux') {
  const archs = (process.env.RAFTLOG_PREBUILD_ARCHS ?? 'x64,arm64')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  for (const stale of existsSync(PREBUILDS) ? readdirSync(PREBUILDS) : []) {
    if (!archs.some((a) => stale === `linux-${a}`)) rmSync(join(PREBUILDS, stale), { recursive: true });
  }
  for (const arch of archs) {
    if (isFresh(arch) || fromCheckoutBuild(arch)) continue;
    const failure = withPrebuildify(arch);
    if (failure !== undefined) {
      rmSync(prebuildDir(arch), { recursive: true, force: true });
      warn(`no prebuilt addon for linux-${arch}: ${failure}`);
    }
  }
} else {
  warn(`prebuilt addons are built on Linux only (this is ${process.platform}); the tarball carries none`);
}
const shipped = existsSync(PREBUILDS) ? readdirSync(PREBUILDS).flatMap((d) => readdirSync(join(PREBUILDS, d)).map((f) => `${d}/${f}`)) : [];
process.stderr.write(`raftlog prepack: prebuilt addons: ${shipped.join(', ') || 'none'}\n`);

// ---- 3. The tarball's manifest ---------------------------------------------

const text = readFileSync(join(ROOT, 'package.json'), 'utf8');
copyFileSync(join(ROOT, 'package.json'), join(ROOT, BACKUP));
const manifest = JSON.parse(text);
manifest.scripts = { 'build:native': manifest.scripts['build:native'] };
delete manifest.devDependencies; // the tarball is never installed with its dev tools
delete manifest.allowScripts; // the repository's own approvals, meaningless in a dependency
// Written aside and renamed: a test reading package.json meanwhile sees one or the other, never half.
writeFileSync(join(ROOT, 'package.json.tmp'), `${JSON.stringify(manifest, null, 2)}\n`);
renameSync(join(ROOT, 'package.json.tmp'), join(ROOT, 'package.json'));
process.stderr.write(`raftlog prepack: package.json stripped of lifecycle scripts for the tarball (${BACKUP} holds the original)\n`);
