// The repository's package.json while `npm pack` runs: prepack swaps in the
// tarball's manifest and keeps the original here; postpack (or the next
// prepack, if a pack died in between) puts it back.
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export const BACKUP = '.package.json.prepack';

export function restoreManifest(root) {
  const backup = join(root, BACKUP);
  // rename: atomic, so a reader never sees a half-written package.json.
  if (existsSync(backup)) renameSync(backup, join(root, 'package.json'));
}
