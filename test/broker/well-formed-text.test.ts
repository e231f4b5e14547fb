// Client text that would not survive the log: a lone UTF-16 surrogate is written as U+FFFD in
// UTF-8, so the live state and a replay would disagree, and two ids ("\ud800", "\udc00") would
// become one that a replay refuses as a duplicate (the broker would never start again). Every
// such text is refused before anything is appended; text the server shortens is never cut
// inside a surrogate pair.

import t from 'tap';
import { checkLogMessage, checkProgress, checkPush } from '../../src/broker/validate.js';
import { isWellFormed, truncateText } from '../../src/record/text.js';
import { judge } from '../../src/workers/response.js';
import { replayLog, startBroker } from '../fixtures/broker.js';
import { digestOf } from '../snapshot/workload.js';

const ctx = { actor: null };
const lone = ['\ud800', '\udc00', 'a\ud83d', '\ude00b'];

t.test('every-push-text-field-with-a-lone-surrogate-is-refused-naming-the-field', async (t) => {
  for (const bad of lone) {
    const cases: Array<[unknown, string]> = [
      [{ data: 1, jobId: bad }, 'jobId'],
      [{ data: 1, name: bad }, 'name'],
      [{ data: 1, uniqueKey: bad }, 'uniqueKey'],
      [{ data: 1, groupId: bad }, 'groupId'],
      [{ data: 1, tags: ['ok', bad] }, 'tags[1]'],
      [{ data: 1, dependsOn: [bad] }, 'dependsOn[0]'],
      [{ name: 'n', data: 1, opts: { jobId: bad } }, 'opts.jobId'],
    ];
    for (const [input, field] of cases) {
      const r = checkPush(input);
      t.same(r, { ok: false, error: `${field} must be well-formed Unicode (it has a lone UTF-16 surrogate)` }, `${field} ${JSON.stringify(bad)}`);
    }
    t.notOk(checkProgress({ progress: 1, message: bad }).ok);
    t.notOk(checkLogMessage(bad, 100).ok);
  }
  t.ok(checkPush({ data: '\ud800', jobId: 'emoji-😀', tags: ['😀'] }).ok, 'data (stored as escaped JSON) and surrogate pairs are fine');
});

t.test('refused-ids-append-nothing-and-the-log-still-replays-to-the-live-state', async (t) => {
  const f = await startBroker({ sync: 'always' });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const before = f.log.nextOffset;
  t.match(await b.push('a', { data: 1, jobId: '\ud800' }, ctx), { ok: false, code: 'BAD_REQUEST' });
  t.match(await b.push('b', { data: 1, jobId: '\udc00' }, ctx), { ok: false, code: 'BAD_REQUEST' });
  t.equal(f.log.nextOffset, before, 'nothing appended');
  const pushed = await b.push('q', { data: 1, jobId: 'ok-😀' }, ctx);
  t.match(pushed, { ok: true, id: 'ok-😀' });
  const pulled = await b.pull('q', { timeoutMs: 0 }, ctx);
  if (!pulled.ok || pulled.token === null) throw new Error('no pull');
  t.match(await b.fail('ok-😀', { error: 'x\ud800', token: pulled.token }, ctx), {
    ok: false,
    error: 'error must be well-formed Unicode (it has a lone UTF-16 surrogate)',
  });
  const long = `${'e'.repeat(4095)}😀tail`;
  t.same(await b.fail('ok-😀', { error: long, token: pulled.token }, ctx), { ok: true });
  t.equal(b.getJob('ok-😀')?.failedReason, 'e'.repeat(4095), 'cut before the pair, not inside it');
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'a replay reads back exactly the live state');
});

t.test('truncated-text-never-ends-in-half-a-pair', async (t) => {
  t.equal(truncateText('ab😀', 3), 'ab');
  t.equal(truncateText('ab😀', 4), 'ab😀');
  t.equal(truncateText('abc', 2), 'ab');
  t.ok(isWellFormed(truncateText('😀'.repeat(10), 5)));
  const verdict = judge({ kind: 'answered', status: 500, contentType: 'text/plain', contentEncoding: '', body: 'x😀y', cutAtBytes: null }, 'POST', 'http://e/', 2);
  t.same(verdict, { kind: 'fail', reason: 'HTTP 500 from POST http://e/: x', answered: true });
});
