// Command names are case-insensitive in ASCII only: `push`, `GetJob`, `auth` are the seed's
// commands, but a name that only Unicode case mapping turns into one (`PUſH`: "ſ", the long s,
// upper-cases to "S") is not a spelling of any command and is refused as unknown. An empty one is
// no name at all: a missing field.

import t from 'tap';
import { WsClient } from './clients.js';
import { push, startRealtime } from './harness.js';

t.test('command-names-match-in-any-ascii-case-and-nothing-else', async (t) => {
  const h = await startRealtime({ config: { authTokens: ['tok'] } });
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  const bare = ({ reqId, ...rest }: Record<string, unknown>): Record<string, unknown> => rest;

  t.strictSame(bare(await ws.command({ cmd: 'auth', token: 'tok' })), { ok: true }, 'auth');
  const before = h.fixture.log.nextOffset;
  const lookalikes: Array<Record<string, unknown>> = [
    { cmd: 'PUſH', queue: 'n', data: 1 },
    { cmd: 'puſhb', queue: 'n', jobs: [{ data: 1 }] },
  ];
  for (const command of lookalikes) {
    t.strictSame(bare(await ws.command(command)), { ok: false, error: `Unknown command: ${String(command.cmd)}` }, String(command.cmd));
  }
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');

  const id = await push(h, 'n', { data: 1 });
  t.match(await ws.command({ cmd: 'Push', queue: 'n', data: 2 }), { ok: true, id: String });
  t.match(await ws.command({ cmd: 'pushB', queue: 'n', jobs: [{ data: 3 }] }), { ok: true, ids: [String] });
  const pulled = await ws.command({ cmd: 'pull', queue: 'n' });
  t.match(pulled, { ok: true, job: { id } });
  t.match(await ws.command({ cmd: 'getJob', id }), { ok: true, job: { id } });
  t.match(await ws.command({ cmd: 'Progress', id, progress: 1 }), { ok: true });
  t.match(await ws.command({ cmd: 'aCk', id, token: pulled.token }), { ok: true });
  t.match(await ws.command({ cmd: 'AUTH', token: 'tok' }), { ok: true });
});

// An empty `cmd` is a missing one, as an empty `queue` or `id` is: it was answered
// "Unknown command: " (naming nothing) once authenticated, and "Unauthorized" before.
t.test('an-empty-cmd-is-refused-as-a-missing-field-before-and-after-auth', async (t) => {
  const h = await startRealtime({ config: { authTokens: ['tok'] } });
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  const bare = ({ reqId, ...rest }: Record<string, unknown>): Record<string, unknown> => rest;
  const before = h.fixture.log.nextOffset;
  t.strictSame(bare(await ws.command({ cmd: '', queue: 'n', data: 1 })), { ok: false, error: 'cmd is required' }, 'unauthenticated');
  t.strictSame(bare(await ws.command({ cmd: 'Auth', token: 'tok' })), { ok: true });
  t.strictSame(bare(await ws.command({ cmd: '', queue: 'n', data: 1 })), { ok: false, error: 'cmd is required' }, 'authenticated');
  t.strictSame(bare(await ws.command({ cmd: ' ', queue: 'n', data: 1 })), { ok: false, error: 'Unknown command:  ' }, 'a blank name is a name');
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');
});
