// A connection flood must not take the broker down. Real `tapeq serve` processes under
// `ulimit -n 256`, with small segments so that pushes roll them while the flood is on:
//   - MAX_CONNECTIONS at its default (the open-file limit less a quarter): connections past it
//     are closed as they arrive, the server keeps descriptors free, a line says so, and pushes on
//     a connection opened before go on through segment rolls.
//   - MAX_CONNECTIONS set past the limit (as when something else holds the descriptors): clients
//     take every descriptor, pushes roll segments anyway; a roll that cannot open its next segment
//     holds its acknowledgements until the clients leave, then gives them. No push is refused,
//     nothing says the broker stopped acknowledging writes, and /ready answers 503 while
//     acknowledgements are held (to a probe whose connection was open before), 200 after.

import { readdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startTapeq, type TapeqProcess } from '../fixtures/process.js';
import { sleep, tempDir } from '../fixtures/reliability/common.js';

const openFilesLimit = 256;
const env = { SEGMENT_BYTES: String(64 * 1024), SNAPSHOT_INTERVAL_MS: '3600000' };

/** One kept-alive connection, opened before the flood, for the test's own requests. */
function keptAlive(server: TapeqProcess): { send: (method: string, path: string, body?: unknown) => Promise<number>; close: () => void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const send = (method: string, path: string, body?: unknown): Promise<number> =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        { agent, host: '127.0.0.1', port: server.port, method, path, headers: text === undefined ? {} : { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  return { send, close: () => agent.destroy() };
}

/** Idle TCP connections to the server, opened `every` ms until stopped; the ones the server
 *  closes are forgotten. */
function flood(server: TapeqProcess, count: number, everyMs: number | null): { open: () => number; stop: () => Promise<void> } {
  const sockets = new Set<Socket>();
  const add = (): void => {
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    sockets.add(socket);
  };
  for (let i = 0; i < count; i++) add();
  const timer = everyMs === null ? null : setInterval(add, everyMs);
  return {
    open: () => sockets.size,
    stop: async () => {
      if (timer !== null) clearInterval(timer);
      for (const s of sockets) s.destroy();
      while (sockets.size > 0) await sleep(5);
    },
  };
}

/** Polls `done` every 50 ms for up to 15 s; the assertion that follows says whether it came true. */
async function waitFor(done: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 15_000; !done() && Date.now() < deadline; ) await sleep(50);
}

const descriptorsOf = (server: TapeqProcess): number => readdirSync(`/proc/${server.child.pid}/fd`).length;
const segmentCount = async (dataDir: string): Promise<number> => (await readdir(join(dataDir, 'log'))).filter((n) => n.endsWith('.log')).length;
const refused = (statuses: Set<number>): boolean => [...statuses].some((s) => s !== 200);
const job = (i: number) => ({ jobId: `j${i}`, data: { pad: 'x'.repeat(2000), i } });

t.test('a-flood-past-MAX_CONNECTIONS-is-refused-and-leaves-descriptors-for-the-log', async (t) => {
  const dataDir = await tempDir(t, 'fd-bound');
  const server = await startTapeq(dataDir, env, { openFilesLimit });
  t.teardown(() => server.kill());
  const client = keptAlive(server);
  t.teardown(client.close);
  t.equal(await client.send('POST', '/queues/q/jobs', job(0)), 200);
  const clients = flood(server, openFilesLimit + 100, null);
  t.teardown(clients.stop);
  // The server accepts (and closes) the flood as fast as its event loop goes: slowly on a busy machine.
  await waitFor(() => clients.open() <= 192);
  const held = clients.open();
  const used = descriptorsOf(server);
  t.ok(held <= 192, `the server keeps at most 192 of the flood's connections (keeps ${held})`);
  t.ok(used <= openFilesLimit - 32, `descriptors stay free for the log (${used} of ${openFilesLimit} in use)`);
  const rolledFrom = await segmentCount(dataDir);
  const statuses = new Set<number>();
  for (let i = 1; (await segmentCount(dataDir)) < rolledFrom + 3 && !refused(statuses); i++) statuses.add(await client.send('POST', '/queues/q/jobs', job(i)));
  t.same([...statuses], [200], 'every push through three rolls is acknowledged');
  t.equal(await client.send('GET', '/ready'), 200);
  t.match(server.stderr(), /refused \d+ connection\(s\): MAX_CONNECTIONS \(192\) are open/);
  await clients.stop();
  t.equal((await fetch(`${server.url}/ready`)).status, 200, 'a new connection is served once the flood is gone');
});

t.test('descriptors-taken-at-a-roll-delay-acknowledgements-and-never-stop-them', async (t) => {
  const dataDir = await tempDir(t, 'fd-exhausted');
  const server = await startTapeq(dataDir, { ...env, MAX_CONNECTIONS: '1000000' }, { openFilesLimit });
  t.teardown(() => server.kill());
  const client = keptAlive(server);
  t.teardown(client.close);
  const probe = keptAlive(server);
  t.teardown(probe.close);
  t.equal(await client.send('POST', '/queues/q/jobs', job(0)), 200);
  t.equal(await probe.send('GET', '/ready'), 200);
  // Every descriptor taken, and a new connection every millisecond for any one freed.
  const clients = flood(server, openFilesLimit, 1);
  t.teardown(clients.stop);
  await waitFor(() => descriptorsOf(server) >= openFilesLimit - 1);
  t.ok(descriptorsOf(server) >= openFilesLimit - 1, `the flood holds every descriptor (${descriptorsOf(server)} of ${openFilesLimit})`);
  const statuses = new Set<number>();
  const rolledFrom = await segmentCount(dataDir);
  let flooding = true;
  let i = 1;
  for (; (await segmentCount(dataDir)) < rolledFrom + 3 && !refused(statuses); i++) {
    const pushed = client.send('POST', '/queues/q/jobs', job(i));
    const late = await Promise.race([pushed.then(() => false), new Promise<boolean>((resolve) => setTimeout(resolve, 1_000, true).unref())]);
    if (late && flooding) {
      t.equal(await probe.send('GET', '/ready'), 503, `push ${i} waits for a roll: /ready answers 503`);
      t.comment(`push ${i} waits for a roll: the clients leave`);
      flooding = false;
      await clients.stop();
    }
    statuses.add(await pushed);
    if (flooding && (await segmentCount(dataDir)) > rolledFrom) {
      flooding = false;
      await clients.stop();
    }
  }
  t.same([...statuses], [200], `every push through three rolls is acknowledged (${i - 1})`);
  t.equal(await client.send('GET', '/ready'), 200, '/ready answers 200 once acknowledgements go on');
  t.equal(await client.send('POST', '/queues/q/jobs', job(i)), 200, 'and pushes go on');
  t.notMatch(server.stderr(), /stops acknowledging/);
  t.comment(server.stderr().split('\n').filter((l) => l.includes('tapeq: log:')).join('\n'));
});
