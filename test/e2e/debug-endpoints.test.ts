// The debug endpoints on the real server process, whose heap is small enough to snapshot quickly
// (snapshotting the test runner's own heap takes minutes on a busy machine).

import t from 'tap';
import { startTapeq, tempDataDir } from '../fixtures/process.js';

t.test('heapstats-snapshot-counts-real-object-types', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir);
  t.teardown(() => tapeq.kill('SIGKILL'));
  const res = await fetch(`${tapeq.url}/heapstats?snapshot=true`);
  t.equal(res.status, 200);
  const body = (await res.json()) as { topObjectTypes: Array<{ type: string; count: number }>; snapshotNodeCount: number };
  t.equal(body.topObjectTypes.length, 20);
  t.ok(body.snapshotNodeCount > 1000, `snapshot has ${body.snapshotNodeCount} nodes`);
  const types = body.topObjectTypes.map((x) => x.type);
  t.ok(types.includes('Object') || types.includes('Array'), 'constructor names from the snapshot string table');
  const counts = body.topObjectTypes.map((x) => x.count);
  t.same(counts, [...counts].sort((a, b) => b - a), 'sorted by count');
});

t.test('gc-with-expose-gc-reports-before-and-after-in-mb', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir, {}, { nodeArgs: ['--expose-gc'] });
  t.teardown(() => tapeq.kill('SIGKILL'));
  const res = await fetch(`${tapeq.url}/gc`, { method: 'POST' });
  t.equal(res.status, 200);
  t.match(await res.json(), {
    ok: true,
    before: { heapUsed: Number, heapTotal: Number, rss: Number },
    after: { heapUsed: Number, heapTotal: Number, rss: Number },
  });
});
