// `npm pack` / `npm publish` step (postpack): puts back the package.json that
// scripts/prepack.mjs replaced with the tarball's script-free manifest.
import { fileURLToPath } from 'node:url';

import { restoreManifest } from './manifest.mjs';

restoreManifest(fileURLToPath(new URL('..', import.meta.url)));
