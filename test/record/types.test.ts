import t from 'tap';
import { JobState, releasesDependent, RemoveReason, type RecordBody } from '../../src/record/types.js';

const removed = (reason: RemoveReason, prev: JobState): RecordBody => ({
  type: 'removed',
  queue: 'q',
  jobs: [{ jobId: 'other', prev: JobState.WAITING }, { jobId: 'dep', prev }],
  reason,
});

t.test('a-dependency-releases-its-dependents-as-the-fold-does-not-when-it-expired-or-had-failed', async (t) => {
  t.equal(releasesDependent({ type: 'completed', queue: 'q', jobId: 'dep', token: 't', result: null } as unknown as RecordBody, 'dep'), true, 'completed');
  t.equal(releasesDependent(removed(RemoveReason.CANCELLED, JobState.WAITING), 'dep'), true, 'cancelled while waiting');
  t.equal(releasesDependent(removed(RemoveReason.DRAINED, JobState.DELAYED), 'dep'), true, 'drained');
  t.equal(releasesDependent(removed(RemoveReason.EXPIRED, JobState.WAITING), 'dep'), false, 'expired: its dependents wait on');
  t.equal(releasesDependent(removed(RemoveReason.REMOVE_ON_FAIL, JobState.FAILED), 'dep'), false, 'removed after it failed');
  t.equal(releasesDependent(removed(RemoveReason.CLEANED, JobState.FAILED), 'dep'), false, 'failed job cleaned');
  t.equal(releasesDependent(removed(RemoveReason.CLEANED, JobState.FAILED), 'other'), true, 'judged per job of the record');
});
