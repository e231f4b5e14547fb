// A subscriber catching up from disk while retention removes the segments ahead of it: the stream
// ends with a message that says what happened and where to go on, not the log's internal error.

import t from 'tap';
import { realtimeLimitsDefault } from '../../src/api/realtime/limits.js';
import { Subscription, type SubscriptionEnd } from '../../src/api/realtime/subscription.js';
import { drafts, openLog, tempDir } from '../log/helpers.js';

t.test('retention-overtaking-a-catching-up-stream-ends-it-naming-the-gap-and-the-resume-point', async (t) => {
  const dir = await tempDir(t);
  // Small segments and a small ring: the catch-up reads sealed segments from disk.
  const { log } = await openLog({ dir, segmentBytes: 8192, ringRecords: 16 });
  t.teardown(() => log.close());
  // More records than one read batch (1,024), so the stream reads from disk after the removal.
  for (let i = 0; i < 5000; i += 1000) await log.append(drafts(i, 1000)).durable;
  t.ok(log.segments().length > 5, 'the records span several segments');

  let delivered = -1;
  let dropping: Promise<string[]> | null = null;
  let dropped = false;
  const sink = {
    deliver: (events: { offset: number }[]) => {
      delivered = events[events.length - 1]?.offset ?? delivered;
      // At the first event, retention removes every sealed segment; the stream waits (its
      // backlog "full") until the files are gone, then reads on.
      dropping ??= log.dropSegmentsBefore(log.durableOffset, Number.POSITIVE_INFINITY).then((files) => {
        dropped = true;
        return files;
      });
    },
    backlogBytes: () => (dropping !== null && !dropped ? Number.MAX_SAFE_INTEGER : 0),
  };
  const subscription = new Subscription(log, { after: -1, queue: null, sink, limits: { ...realtimeLimitsDefault, stallMs: 10_000 } });
  const ended: SubscriptionEnd = await subscription.run();
  const removed = await (dropping as unknown as Promise<string[]>);
  t.ok(removed.length > 0, `retention removed ${removed.length} segments`);
  t.equal(ended.end, 'error');
  const message = ended.end === 'error' ? ended.error.message : '';
  t.equal(
    message,
    `Events after offset ${delivered} were removed by retention before this stream sent them; the oldest kept is offset ${log.firstOffset}: reconnect to go on from there`,
  );
});
