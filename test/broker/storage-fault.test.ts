import t from 'tap';
import { Broker, type BrokerLog } from '../../src/broker/broker.js';
import type { RecordDraft } from '../../src/record/types.js';
import { createState } from '../../src/state/index.js';

/** A log double that fails the way the real one reports failures. */
function failingLog(mode: 'throw' | 'reject', code: string): BrokerLog & { appended: number } {
  let next = 0;
  const log = {
    appended: 0,
    failed: null as { code: string; message: string } | null,
    held: null,
    append(drafts: RecordDraft[]) {
      const error = Object.assign(new Error(code === 'LOG_NO_SPACE' ? 'ENOSPC' : 'EIO'), { code });
      if (mode === 'throw' || log.failed !== null) {
        log.failed = error;
        throw error;
      }
      const firstOffset = next;
      next += drafts.length;
      log.appended += drafts.length;
      log.failed = error;
      const records = drafts.map((d, i) => ({ ...d, offset: firstOffset + i }));
      return { firstOffset, records, durable: Promise.reject(error) };
    },
  };
  return log;
}

const ctx = { actor: null };

t.test('failed-sync-is-never-acknowledged-and-flips-ready', async (t) => {
  const log = failingLog('reject', 'LOG_SYNC');
  const b = new Broker({ log, state: createState() });
  t.ok(b.ready);
  const r = await b.push('q', { data: 1 }, ctx);
  t.equal(r.ok, false);
  t.equal(!r.ok && r.code, 'STORAGE_FAULT');
  t.equal(b.ready, false);
  const again = await b.push('q', { data: 2 }, ctx);
  t.equal(!again.ok && again.code, 'STORAGE_FAULT', 'stays failed');
  t.equal(log.appended, 1, 'nothing more was appended');
  await b.close();
});

t.test('full-disk-answers-no-space', async (t) => {
  const b = new Broker({ log: failingLog('throw', 'LOG_NO_SPACE'), state: createState() });
  const r = await b.push('q', { data: 1 }, ctx);
  t.equal(!r.ok && r.code, 'NO_SPACE');
  t.equal(b.ready, false);
  t.equal(b.state.jobs.size, 0, 'a failed append applies nothing');
  await b.close();
});

t.test('read-only-broker-refuses-writes', async (t) => {
  const b = new Broker({ log: failingLog('throw', 'LOG_CLOSED'), state: createState(), readOnly: true });
  const r = await b.push('q', { data: 1 }, ctx);
  t.equal(!r.ok && r.code, 'READ_ONLY');
  t.match(!r.ok && r.error, /[Rr]ead-only/);
  await b.close();
});

t.test('due-timers-after-a-storage-fault-do-not-spin', async (t) => {
  let nowMs = 1_700_000_000_000;
  const b = new Broker({ log: failingLog('reject', 'LOG_SYNC'), state: createState(), clock: () => nowMs });
  b.start();
  const r = await b.push('q', { data: 1, delay: 1000 }, ctx);
  t.equal(!r.ok && r.code, 'STORAGE_FAULT', 'the delayed job was applied, its sync failed');
  let runs = 0;
  const run = b.runDueTimers.bind(b);
  b.runDueTimers = () => {
    runs++;
    run();
  };
  nowMs += 1000;
  b.runDueTimers();
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(runs, 1, 'nothing can be written: no timer is armed again for the moment that stays due');
  await b.close();
});
