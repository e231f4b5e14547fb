// The projection's public surface: the pure fold and the conversions to and from its image.

export { apply, stalledFailureText } from './apply.js';
export { stateDigest } from './digest.js';
export { exportJob, exportState, importState } from './image-io.js';
export { createState, jobCount, queueFor, sortBySeq, uniqueHolder, type Job, type QueueState, type State } from './state.js';
export { waitHead, waitIterate } from './waitlist.js';
