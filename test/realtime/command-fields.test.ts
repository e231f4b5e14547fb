// A WebSocket command's fields are checked as its HTTP twin's body and query are: a field the
// command does not take is refused, naming it, and nothing is appended. Before, only PUSH (whose
// job fields the broker checks) did; the others ignored it, so `ACK {reslt}` completed the job
// without its result and `FAIL {errror}` failed it as "Job failed", where HTTP answers 400. A
// misspelt required field (`PUSH {queu}`, `progres`) is named too, not reported as missing.

import t from 'tap';
import { WsClient } from './clients.js';
import { push, startRealtime } from './harness.js';

t.test('a-field-a-command-does-not-take-is-refused-naming-it-as-over-http', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  const id = await push(h, 'f', { data: 1 });
  const pulled = await ws.command({ cmd: 'PULL', queue: 'f' });
  t.match(pulled, { ok: true, job: { id } });
  const waiting = await push(h, 'f', { data: 2 });

  const before = h.fixture.log.nextOffset;
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ cmd: 'ACK', id, reslt: { sent: true } }, 'reslt'],
    [{ cmd: 'FAIL', id, errror: 'SMTP down' }, 'errror'],
    [{ cmd: 'PULL', queue: 'f', timout: 5_000 }, 'timout'],
    [{ cmd: 'PROGRESS', id, progress: 5, mesage: 'm' }, 'mesage'],
    [{ cmd: 'CANCEL', id: waiting, force: true }, 'force'],
    [{ cmd: 'GETJOB', id, queue: 'f' }, 'queue'],
    [{ cmd: 'PUSHB', queue: 'f', jobs: [{ data: 3 }], durable: true }, 'durable'],
    [{ cmd: 'ack', id, token: pulled.token, reslt: 1 }, 'reslt'],
    // A misspelt required field is named, not reported as missing.
    [{ cmd: 'PUSH', queu: 'f', data: 3 }, 'queu'],
    [{ cmd: 'PUSHB', queu: 'f', jobs: [{ data: 3 }] }, 'queu'],
    [{ cmd: 'PROGRESS', id, progres: 5 }, 'progres'],
    [{ cmd: 'PUSH', queue: 'f', data: 3, prio: 1 }, 'prio'],
  ];
  for (const [command, field] of cases) {
    const reply = await ws.command(command);
    const { reqId, ...rest } = reply;
    t.strictSame(rest, { ok: false, error: `${field} is not an allowed field` }, `${String(command.cmd)} with ${field}`);
  }
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');
  t.equal(h.fixture.broker.jobState(id), 'active', 'the pulled job is still active');
  t.equal(h.fixture.broker.jobState(waiting), 'waiting', 'the other one still waiting');

  // The HTTP twins say the same.
  const http = [
    await h.server.request('POST', `/jobs/${id}/ack`, { body: { reslt: { sent: true } } }),
    await h.server.request('POST', `/jobs/${id}/fail`, { body: { errror: 'SMTP down' } }),
    await h.server.request('GET', '/queues/f/jobs?timout=5000'),
    await h.server.request('POST', `/jobs/${id}/progress`, { body: { progres: 5 } }),
    await h.server.request('POST', '/queues/f/jobs', { body: { data: 3, prio: 1 } }),
  ];
  t.strictSame(
    http.map((r) => [r.status, r.json]),
    [
      [400, { ok: false, error: 'reslt is not an allowed field' }],
      [400, { ok: false, error: 'errror is not an allowed field' }],
      [400, { ok: false, error: 'timout is not an allowed field' }],
      [400, { ok: false, error: 'progres is not an allowed field' }],
      [400, { ok: false, error: 'prio is not an allowed field' }],
    ],
  );
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended over HTTP either');

  const meantAsBulk = await ws.command({ cmd: 'PUSH', queue: 'f', jobs: [{ data: 3 }] });
  t.equal(meantAsBulk.error, 'jobs is not an allowed field in PUSH: push many with PUSHB {queue, jobs}', 'a PUSH with jobs names PUSHB');
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended for it');

  // The fields each command does take still work, `cmd` and `reqId` on every one.
  t.match(await ws.command({ cmd: 'PROGRESS', id, progress: 50, message: 'half' }), { ok: true });
  t.match(await ws.command({ cmd: 'GETJOB', id }), { ok: true, job: { id, progress: 50 } });
  t.match(await ws.command({ cmd: 'ACK', id, result: { sent: true }, token: pulled.token }), { ok: true });
  t.match(h.fixture.broker.getJob(id), { state: 'completed', result: { sent: true } });
  t.match(await ws.command({ cmd: 'PULL', queue: 'f', timeout: 0, lockMs: 1_000 }), { ok: true, job: { id: waiting } });
  t.match(await ws.command({ cmd: 'FAIL', id: waiting, error: 'boom', token: undefined }), { ok: true });
  t.match(await ws.command({ cmd: 'PUSHB', queue: 'f', jobs: [{ data: 4 }] }), { ok: true, ids: [String] });
  const third = await push(h, 'f', { data: 5 });
  t.match(await ws.command({ cmd: 'CANCEL', id: third }), { ok: true });
});

t.test('auth-with-a-field-it-does-not-take-is-refused-and-is-not-a-failed-attempt', async (t) => {
  const h = await startRealtime({ config: { authTokens: ['tok'] } });
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  // Five of these would close the socket if they counted as failed Auth attempts.
  for (let i = 0; i < 5; i++) {
    const reply = await ws.command({ cmd: 'Auth', token: 'tok', scope: 'all' });
    t.strictSame(reply, { ok: false, error: 'scope is not an allowed field', reqId: reply.reqId });
  }
  t.match(await ws.command({ cmd: 'GETJOB', id: 'x' }), { ok: false, error: 'Unauthorized' }, 'not authenticated by it');
  t.match(await ws.command({ cmd: 'Auth', token: 'tok' }), { ok: true }, 'still open, and Auth works');
  t.match(await ws.command({ cmd: 'GETJOB', id: 'x' }), { ok: false, error: 'Job not found' });
});
