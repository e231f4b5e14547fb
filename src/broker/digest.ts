// The state digest: sha256 (hex) of the canonical text of exportState(state). Live state, a full
// replay and snapshot + tail must agree on it (SPEC 2.4). The text is hashed chunk by chunk, so
// the digest of a million-job state never builds one giant string.

import { createHash } from 'node:crypto';
import { exportState, stateDigest, type State } from '../state/index.js';

export function digestOf(state: State): string {
  const hash = createHash('sha256');
  stateDigest(exportState(state), (chunk) => hash.update(chunk));
  return hash.digest('hex');
}
