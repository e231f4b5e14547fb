// The read-only tools are meant for a live data dir: `tapeq verify` run again and again while a
// real `tapeq serve` takes pushes from four concurrent clients must never call the log corrupt.
// (A scan used to stop at a frame that was still zeros, then find it written, with more after it,
// when it looked again: that read as damage in the middle of the last segment.)

import t from 'tap';
import { runTapeq, startTapeq, tempDataDir } from '../fixtures/process.js';

t.test('verify-beside-a-broker-taking-pushes-finds-no-damage', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir);
  t.teardown(() => tapeq.kill('SIGKILL'));
  let pushing = true;
  let pushed = 0;
  const pusher = async (): Promise<void> => {
    while (pushing) {
      const res = await fetch(`${tapeq.url}/queues/live/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: 'v'.repeat(100) }),
      });
      if (res.status === 200) pushed++;
      await res.arrayBuffer();
    }
  };
  const pushers = Array.from({ length: 4 }, pusher);
  const runs = 6;
  const failures: string[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await runTapeq(['verify', '--dir', data.dir]);
    if (r.code !== 0) failures.push(r.stdout + r.stderr);
  }
  pushing = false;
  await Promise.all(pushers);
  t.ok(pushed > 100, `${pushed} pushes while verify ran`);
  t.same(failures, [], `${runs} verify runs beside the writes`);
});
