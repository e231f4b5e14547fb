// The state digest: sha256 (hex) of the canonical text of exportState(state). Live state, a full
// replay and snapshot + tail must agree on it (SPEC 2.4).

import { createHash } from 'node:crypto';
import { exportState, stateDigest, type State } from '../state/index.js';

export function digestOf(state: State): string {
  return createHash('sha256').update(stateDigest(exportState(state))).digest('hex');
}
