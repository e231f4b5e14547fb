// The state digest: sha256 (hex) of the canonical text of exportState(state), then of the repeat
// schedule index (which live instances each schedule key has). Live state, a full replay and
// snapshot + tail must agree on it (SPEC 2.4). The index is derived from the jobs, so it is not
// in the image; hashing it too proves that every way of building a state derives it alike. The
// text is hashed chunk by chunk, so the digest of a million-job state never builds one giant
// string.

import { createHash } from 'node:crypto';
import { exportState, scheduleIndex, stateDigest, type State } from '../state/index.js';

export function digestOf(state: State): string {
  const hash = createHash('sha256');
  stateDigest(exportState(state), (chunk) => hash.update(chunk));
  hash.update('\n');
  hash.update(JSON.stringify(scheduleIndex(state)));
  return hash.digest('hex');
}
