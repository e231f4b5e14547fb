// Snapshot files written by every format tapeq has shipped must keep loading to the same state:
// retention deletes log segments that a kept snapshot covers, so a snapshot the current code can
// no longer read would make the data directory unrecoverable. The fixtures are real files
// committed under test/fixtures/snapshots/format-N (see test/fixtures/snapshot-history.ts).

import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { digestOf } from '../../src/broker/digest.js';
import { listSnapshots, loadNewestState, verifySnapshotFile } from '../../src/snapshot/store.js';
import { hashTree } from '../fixtures/hash-tree.js';
import { snapshotHistoryState } from '../fixtures/snapshot-history.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/snapshots', import.meta.url));

t.test('the-fixture-history-still-folds-to-the-recorded-digest', async (t) => {
  const recorded = (await readFile(`${fixtures}/digest.txt`, 'utf8')).trim();
  t.equal(digestOf(snapshotHistoryState()), recorded, 'a change of fold semantics would make old snapshots disagree with replay');
});

t.test('every-committed-snapshot-format-loads-to-the-same-state', async (t) => {
  const recorded = (await readFile(`${fixtures}/digest.txt`, 'utf8')).trim();
  const formats = (await readdir(fixtures)).filter((name) => name.startsWith('format-')).sort();
  t.ok(formats.length >= 2, `formats with fixtures: ${formats.join(', ')}`);
  for (const format of formats) {
    const dir = `${fixtures}/${format}`;
    const before = await hashTree(dir);
    const problems: string[] = [];
    const loaded = await loadNewestState(dir, (line) => problems.push(line), { readOnly: true });
    t.same(problems, [], `${format}: no fallback reported`);
    t.equal(loaded === null ? null : digestOf(loaded.state), recorded, `${format} loads to the recorded state`);
    // Pruning and retention count only files that verify: an older format must still count.
    for (const entry of await listSnapshots(dir)) await t.resolves(verifySnapshotFile(entry.file), `${format}: ${entry.file} verifies`);
    t.same(await hashTree(dir), before, `${format}: loading leaves the fixture untouched`);
  }
});
