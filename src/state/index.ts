// The projection's public surface: the pure fold and the conversions to and from its image.

export { apply, stalledFailureText } from './apply.js';
export { stateDigest } from './digest.js';
export { seedJobTables } from './job-table.js';
export { exportJob, exportState, importState, queueNamesSorted, restoreJob, restoreQueue, restoreState, settleRestoredQueues } from './image-io.js';
export {
  addColdJob,
  createState,
  internOptions,
  Job,
  jobCount,
  NO_IDS,
  queueExists,
  queueFor,
  queueTotal,
  scheduleHolder,
  scheduleIndex,
  sortBySeq,
  uniqueHolder,
  type JobOptions,
  type JobRun,
  type QueueState,
  type State,
} from './state.js';
export { isPrioritized, waitEntries, waitEntryJob, waitIterate, waitOldest, waitPage, waitPrioritizedSize } from './waitlist.js';
