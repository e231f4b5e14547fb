import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobLogsLengthMax, jobLogsMax, logMessageLengthMax } from '../../src/constants.js';
import { loadNewestState, writeStateSnapshot } from '../../src/snapshot/store.js';
import { exportState, importState } from '../../src/state/index.js';
import { idOf, startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };

t.test('job-logs-keep-at-most-jobLogsLengthMax-characters-newest-first', async (t) => {
  let f = await startBroker({ start: false });
  t.teardown(() => f.cleanup());
  const id = await idOf(f.broker.push('q', { data: 1 }, ctx));
  const lines = 100;
  const before = f.log.nextOffset;
  for (let i = 0; i < lines; i++) {
    const line = `${i}:`.padEnd(logMessageLengthMax, i % 2 === 0 ? 'x' : '€');
    t.same(await f.broker.addLog(id, line, ctx), { ok: true });
  }
  t.equal(f.log.nextOffset - before, lines, 'the log keeps every line');
  const kept = Math.floor(jobLogsLengthMax / logMessageLengthMax);
  t.ok(kept < lines && kept < jobLogsMax, 'the character bound is the one that trims here');
  const page = f.broker.getLogs(id, 0, jobLogsMax);
  if (!page.ok) throw new Error('getLogs failed');
  t.equal(page.count, kept);
  t.ok(page.logs.reduce((sum, line) => sum + line.length, 0) <= jobLogsLengthMax);
  t.match(page.logs[0], new RegExp(`^${lines - kept}:`), 'the oldest lines went first');
  t.match(page.logs[kept - 1], new RegExp(`^${lines - 1}:`), 'the newest line is kept');

  f = await f.restart();
  t.same(f.broker.getLogs(id, 0, jobLogsMax), page, 'a replay keeps the same lines');
});

t.test('an-image-holding-more-log-text-than-the-bound-loads-as-a-replay-would-keep-it', async (t) => {
  const f = await startBroker({ start: false });
  t.teardown(() => f.cleanup());
  const id = await idOf(f.broker.push('q', { data: 1 }, ctx));
  const image = exportState(f.broker.state);
  const job = image.jobs.find((j) => j.id === id);
  if (job === undefined) throw new Error('job missing from image');
  // What a snapshot of an older version held: 1,000 lines whatever their length.
  job.logs = Array.from({ length: jobLogsMax }, (_, i) => `${i}:`.padEnd(logMessageLengthMax, 'y'));
  const loaded = importState(image).jobs.get(id)?.logs ?? [];
  t.equal(loaded.length, Math.floor(jobLogsLengthMax / logMessageLengthMax));
  t.same(loaded, job.logs.slice(jobLogsMax - loaded.length), 'the newest lines within the bound');
});

t.test('a-job-loaded-from-a-snapshot-file-keeps-its-log-text-within-the-bound-as-it-logs-on', async (t) => {
  const f = await startBroker({ start: false });
  t.teardown(() => f.cleanup());
  const id = await idOf(f.broker.push('q', { data: 1 }, ctx));
  const line = (i: number): string => `${i}:`.padEnd(logMessageLengthMax, 'w');
  for (let i = 0; i < 10; i++) t.same(await f.broker.addLog(id, line(i), ctx), { ok: true });
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-logs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeStateSnapshot(dir, f.broker.state);
  const loaded = await loadNewestState(dir, () => undefined);
  const job = loaded?.state.jobs.get(id);
  if (job === undefined) throw new Error('job missing from the snapshot');
  t.same(job.logs, f.broker.state.jobs.get(id)?.logs, 'the lines come back');
  const lines = 100;
  for (let i = 10; i < lines; i++) job.addLog(line(i));
  const kept = job.logs ?? [];
  t.equal(kept.length, Math.floor(jobLogsLengthMax / logMessageLengthMax), 'the character bound still holds');
  t.match(kept[kept.length - 1], new RegExp(`^${lines - 1}:`));
});
