// The chunk supply's helper thread pages in the chunks arenas will use while the main thread may
// already be writing them: nothing the main thread wrote may change.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { chunkBatchesPaged, installChunkSupply } from '../../src/snapshot/chunk-supply.js';
import { PayloadArena } from '../../src/state/payloads.js';
import { mulberry32 } from '../fixtures/random.js';

t.test('payloads written into chunks the helper is paging in read back unchanged', async (t) => {
  installChunkSupply();
  const random = mulberry32(11);
  const arenas = [new PayloadArena(), new PayloadArena()];
  const stored: { arena: PayloadArena; at: number; text: string }[] = [];
  const check = (what: string) => {
    const wrong = stored.filter((e) => e.at < 0 || e.arena.read(e.at) !== e.text).length;
    t.equal(wrong, 0, `${stored.length} payloads read back ${what}`);
  };
  // 80 MiB across two arenas: many batches of reserve chunks, each handed to the helper just
  // before the main thread starts writing into them.
  for (let i = 0; i < 400_000; i++) {
    const text = `{"i":${i},"pad":"${'x'.repeat(Math.floor(random() * 300))}"}`;
    const arena = arenas[i % 2] as PayloadArena;
    stored.push({ arena, at: arena.store(text), text });
  }
  // The helper starts with the first refill; on a loaded machine it may take seconds to run.
  const deadline = performance.now() + 20_000;
  while (chunkBatchesPaged() < 2 && performance.now() < deadline) await sleep(50);
  t.ok(chunkBatchesPaged() >= 2, `the helper paged in ${chunkBatchesPaged()} batches`);
  check('after the helper went over their chunks');
  // Release some chunks (they go back to the reserve) and fill them again.
  for (const entry of stored.splice(0, 100_000)) entry.arena.free(entry.at);
  for (let i = 0; i < 100_000; i++) {
    const text = `{"again":${i}}`;
    stored.push({ arena: arenas[0] as PayloadArena, at: (arenas[0] as PayloadArena).store(text), text });
  }
  check('after chunks were given back and reused');
});
