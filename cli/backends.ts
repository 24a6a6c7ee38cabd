/**
 * Builds the FileSystem a command runs on. The CLI (cli/, beside the engine
 * in src/) is an application over both: with the package entry point it is
 * the only code that knows the backends (the engine only sees the FileSystem
 * seam).
 *
 * `uring` and `pmem` are loaded with a dynamic import from a computed
 * specifier: both need the native addon, which an installation may lack (no
 * prebuild for the platform, no compiler), and that must cost a one-line
 * error when asked for, not a failed start of every command.
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { EncryptedFs } from '../backends/encrypted.js';
import { MemFs } from '../backends/memfs.js';
import { PosixFs } from '../backends/posix.js';
import type { FileSystem } from '../src/filesystem.js';
import { CliError, ExitCode, describeError, errnoOf } from './errors.js';

export const BACKENDS = ['posix', 'uring', 'pmem', 'mem'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendOptions {
  /** Wrap in EncryptedFs under a random, never-stored master key. */
  encrypt: boolean;
  /** uring only: O_DIRECT with aligned, padded blocks. */
  direct: boolean;
}

export interface BuiltFileSystem {
  fs: FileSystem;
  /** The backend under any wrapper (EncryptedFs): what owns the directory lock and the raw files. */
  base: FileSystem;
  /** Things the user should know about the choice (printed once, on stderr). */
  notes: string[];
  /** Whether the data lives in `dir` on disk (false for mem). */
  onDisk: boolean;
}

/** What a backend module exports: a FileSystem class rooted at a directory. */
type RootedFileSystemClass = new (root: string, options?: Record<string, unknown>) => FileSystem;

/** Module paths relative to this file once compiled (dist/cli → dist/backends). */
const OPTIONAL_MODULES: Record<'uring' | 'pmem', { path: string; exportName: string }> = {
  uring: { path: '../backends/uring.js', exportName: 'UringFs' },
  pmem: { path: '../backends/pmem.js', exportName: 'PmemFs' },
};

export async function buildFileSystem(backend: BackendName, dir: string, options: BackendOptions): Promise<BuiltFileSystem> {
  const notes: string[] = [];
  if (options.direct && backend !== 'uring') throw new CliError('--direct applies to --backend uring only', ExitCode.USAGE);
  let fs: FileSystem;
  switch (backend) {
    case 'posix':
      fs = new PosixFs(dir);
      break;
    case 'mem':
      fs = new MemFs();
      notes.push('backend mem keeps the log in memory: --dir is not used and nothing survives the run');
      break;
    case 'uring':
    case 'pmem': {
      const Class = await loadOptional(backend);
      const ctorOptions = backend === 'uring' ? { direct: options.direct } : {};
      try {
        fs = new Class(dir, ctorOptions);
      } catch (error) {
        throw new CliError(`backend ${backend} is not available: ${describeError(error)}`, ExitCode.FAILURE);
      }
      break;
    }
  }
  const base = fs;
  if (options.encrypt) {
    fs = new EncryptedFs(fs, { masterKey: randomBytes(32) });
    notes.push('--encrypt: the master key is random and never stored; the data written cannot be read after this run');
  }
  return { fs, base, notes, onDisk: backend !== 'mem' };
}

async function loadOptional(backend: 'uring' | 'pmem'): Promise<RootedFileSystemClass> {
  const { path, exportName } = OPTIONAL_MODULES[backend];
  let module: Record<string, unknown>;
  try {
    module = (await import(new URL(path, import.meta.url).href)) as Record<string, unknown>;
  } catch (error) {
    const reason =
      errnoOf(error) === 'ERR_MODULE_NOT_FOUND' && describeError(error).includes(`${backend}.js`)
        ? `${exportName} is not part of this build`
        : describeError(error);
    throw new CliError(`backend ${backend} is not available: ${reason}`, ExitCode.FAILURE);
  }
  const Class = module[exportName];
  if (typeof Class !== 'function') {
    throw new CliError(`backend ${backend} is not available: ${path} does not export ${exportName}`, ExitCode.FAILURE);
  }
  return Class as RootedFileSystemClass;
}

/** Opens a FileSystem rooted at a directory of the same on-disk format. */
export type FileSystemFactory = (root: string) => FileSystem;

/** First bytes of a log file written through PmemFs: its header page (docs/pmem.md). */
const PMEM_MAGIC = 'RLPMEM01';

/**
 * The FileSystem that reads `dir`'s files as written: PmemFs files start with
 * a header page and are only readable through PmemFs; everything else
 * (PosixFs, UringFs, whose files are plain) is read through PosixFs, which
 * needs no native addon. Decided from the first log file's first bytes.
 */
export async function inspectionFileSystem(dir: string, logFiles: readonly string[]): Promise<{ kind: 'posix' | 'pmem'; make: FileSystemFactory }> {
  const first = logFiles[0];
  let magic = '';
  if (first !== undefined) {
    const handle = await open(join(dir, first), 'r');
    try {
      const bytes = new Uint8Array(PMEM_MAGIC.length);
      await handle.read(bytes, 0, bytes.length, 0);
      magic = Buffer.from(bytes).toString('latin1');
    } finally {
      await handle.close();
    }
  }
  if (magic !== PMEM_MAGIC) return { kind: 'posix', make: (root) => new PosixFs(root) };
  const Class = await loadOptional('pmem');
  return {
    kind: 'pmem',
    make: (root) => {
      try {
        return new Class(root, {});
      } catch (error) {
        throw new CliError(`${dir} was written by PmemFs, which cannot run here: ${describeError(error)}`, ExitCode.FAILURE);
      }
    },
  };
}

/** The uring module's static probe, when the module is there; used by `raftlog probe`. */
export async function uringUnavailableReason(): Promise<string | undefined> {
  let Class: RootedFileSystemClass;
  try {
    Class = await loadOptional('uring');
  } catch (error) {
    return describeError(error).replace(/^backend uring is not available: /, '');
  }
  const probe = (Class as unknown as { unavailableReason?: () => string | undefined }).unavailableReason;
  if (typeof probe === 'function') return probe.call(Class);
  try {
    // No static probe: constructing one is the test (it opens and closes a ring).
    const fs = new Class('.', {});
    await fs.close();
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}
