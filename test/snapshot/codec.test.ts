import t from 'tap';
import {
  createImageCodec,
  decodeImage,
  decodeRows,
  decodeRowsInto,
  encodeImage,
  encodeRows,
  JobBlockEncoder,
  schemaVersionCurrent,
  type JobRow,
} from '../../src/snapshot/codec.js';
import { PayloadArena } from '../../src/state/payloads.js';
import { JobState } from '../../src/record/types.js';
import schemaV1 from '../../src/snapshot/schema-v1.json' with { type: 'json' };
import schemaV2 from '../../src/snapshot/schema-v2.json' with { type: 'json' };
import schemaV3 from '../../src/snapshot/schema-v3.json' with { type: 'json' };
import { emptyImage, fullImage } from './images.js';
import { mulberry32 } from '../fixtures/random.js';
import { plainOptions } from '../fixtures/records.js';

t.test('snapshot-round-trip-preserves-image', async (t) => {
  for (const image of [fullImage(), emptyImage(), fullImage(Number.MAX_SAFE_INTEGER - 1)]) {
    const back = decodeImage(encodeImage(image));
    t.strictSame(back, image);
    t.equal(JSON.stringify(back), JSON.stringify(image), 'same JSON text, so the same digest');
    t.equal(Object.getPrototypeOf(back.jobs[0] ?? {}), Object.prototype, 'plain objects');
  }
});

t.test('unrepresentable-number-is-refused-naming-the-field', async (t) => {
  const image = fullImage();
  const job = image.jobs[1];
  if (job === undefined) throw new Error('fixture');
  job.attempts = 1.5;
  t.throws(() => encodeImage(image), { code: 'SNAPSHOT_CODEC', message: /jobs\.1\.attempts=1\.5/ });
  job.attempts = Number.MAX_SAFE_INTEGER;
  t.throws(() => encodeImage(image), { code: 'SNAPSHOT_CODEC' });
});

t.test('unknown-or-newer-schema-version-is-refused', async (t) => {
  const payload = encodeImage(emptyImage());
  t.throws(() => decodeImage(payload, schemaVersionCurrent + 1), { code: 'SNAPSHOT_CODEC', message: /newer/ });
  t.throws(() => decodeImage(payload, 0), { code: 'SNAPSHOT_CODEC', message: /unknown/ });
});

t.test('old-schema-version-stays-readable', async (t) => {
  // Play an older writer: "v0" had no per-job `logs`; its upgrade adds an empty list.
  const current = schemaV3.image;
  const v0 = JSON.parse(JSON.stringify(current)) as {
    namespace: string;
    fields: Array<{ name: string; type: { items: { fields: Array<{ name: string }> } } }>;
  };
  v0.namespace = 'tapeq.snapshot.v0';
  const jobs = v0.fields.find((f) => f.name === 'jobs');
  if (jobs === undefined) throw new Error('schema');
  jobs.type.items.fields = jobs.type.items.fields.filter((f) => f.name !== 'logs');
  const upgrade = (image: unknown) => {
    const img = image as { jobs: Array<Record<string, unknown>> };
    for (const job of img.jobs) job.logs = [];
    return img;
  };
  const oldWriter = createImageCodec(new Map([[0, { schema: v0, upgrade: null }]]), 0);
  const reader = createImageCodec(
    new Map([
      [0, { schema: v0, upgrade }],
      [1, { schema: current, upgrade: null }],
    ]),
    1,
  );
  // These codecs take the schema's own shape, per-second counts included (encodeImage and
  // decodeImage write them empty and drop them).
  const image = fullImage();
  image.stats = { ...image.stats, seconds: [] } as typeof image.stats;
  for (const job of image.jobs) job.logs = [];
  const oldPayload = oldWriter.encodeImage(image);
  t.strictSame(reader.decodeImage(oldPayload, 0), image, 'v0 payload read through the v0→v1 upgrade');
  t.strictSame(reader.decodeImage(reader.encodeImage(image), 1), image, 'current version still reads');
  t.throws(() => createImageCodec(new Map([[0, { schema: v0, upgrade: null }], [1, { schema: current, upgrade: null }]]), 1), {
    message: /lacks an upgrade/,
  });
});

t.test('a job block whose data length is unreadable fails to decode and leaves the arena usable', async (t) => {
  const arena = new PayloadArena();
  const before = arena.store('{"before":1}');
  const liveBefore = arena.liveBytes;
  // One row: id "a", queue 0, no name, then a data length that is 150 continuation bytes (no
  // number: avsc reads it as NaN).
  const block = Buffer.concat([Buffer.from([0x02, 0x02, 0x61, 0x00, 0x00]), Buffer.alloc(150, 0x80), Buffer.from([0x00, 0x00, 0x00])]);
  t.throws(() => decodeRowsInto(block, arena, () => undefined), { code: 'SNAPSHOT_CODEC' });
  t.throws(() => decodeRows(block), { code: 'SNAPSHOT_CODEC' }, 'as the plain decoder');
  // The row's id was stored before its data failed: a restore drops the whole state (and its
  // arena) on a block that does not decode, so what a failed block leaves behind is never used.
  t.equal(arena.liveBytes, liveBefore + 2 + 1, 'only the failed row\'s id reached the arena');
  const at = arena.store('{"still":"fine"}');
  t.equal(arena.read(at), '{"still":"fine"}');
  t.equal(arena.read(before), '{"before":1}');
});


const rowTemplate: JobRow = {
  id: '',
  queue: 0,
  name: null,
  data: '',
  priority: 0,
  createdAt: 1_733_450_000_000,
  runAt: 1_733_450_000_000,
  state: JobState.WAITING,
  seq: 0,
  pendingDeps: [],
  options: null,
  run: null,
};

/** decodeRowsInto's rows, copied (it reuses one object) and with id and data read back. */
function decodeIntoCopies(block: Buffer, arena: PayloadArena): JobRow[] {
  const rows: JobRow[] = [];
  decodeRowsInto(block, arena, (r) => {
    rows.push({
      ...r,
      pendingDeps: [...r.pendingDeps],
      id: typeof r.id === 'number' ? arena.read(r.id) : r.id,
      data: typeof r.data === 'number' ? arena.read(r.data) : r.data,
    });
  });
  return rows;
}

t.test('decodeRowsInto stores each row\'s id and data in the arena and keeps every other field', async (t) => {
  const rows = [
    { ...rowTemplate, id: 'a', data: '{"x":1}' },
    { ...rowTemplate, id: 'b', data: '{"é":"€😀"}' },
  ];
  const arena = new PayloadArena();
  t.same(decodeIntoCopies(encodeRows(rows), arena), decodeRows(encodeRows(rows)));
});

/** Rows of every shape: plain ones (the hand-written reader's) and ones with names, pending
 *  dependencies, options or a run (avsc's), with numbers of every size a long holds. */
function mixedRows(random: () => number, n: number): JobRow[] {
  const big = [0, 1, -1, 63, 64, -65, 2 ** 27, 2 ** 28, -(2 ** 31), 2 ** 35 + 7, 1_733_450_000_123, Number.MAX_SAFE_INTEGER - 1, -(Number.MAX_SAFE_INTEGER - 1)];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  return Array.from({ length: n }, (_, i) => {
    const roll = random();
    return {
      ...rowTemplate,
      id: roll < 0.1 ? `jöb-${i}` : roll < 0.12 ? '' : `job-${i}-${'x'.repeat(Math.floor(random() * 40))}`,
      queue: Math.floor(random() * 3),
      name: random() < 0.3 ? pick(['default', 'send', 'émail', '']) : null,
      data: random() < 0.05 ? '' : `{"i":${i},"t":"${'y'.repeat(Math.floor(random() * 200))}"}`,
      priority: pick(big),
      createdAt: pick(big),
      runAt: pick(big),
      state: pick([JobState.WAITING, JobState.DELAYED, JobState.COMPLETED]),
      seq: pick(big),
      pendingDeps: random() < 0.1 ? ['a', 'b'] : [],
      options:
        random() < 0.1
          ? { maxAttempts: 3, backoff: 1000, backoffType: 0, ttl: null, timeout: 5, uniqueKey: 'k', customId: true, tags: ['t'], groupId: '', lifo: false, removeOnComplete: null, removeOnFail: null, dependsOn: [], repeat: null, maxStalled: null }
          : null,
      run:
        random() < 0.1
          ? { attempts: 1, stalledCount: 0, startedAt: 5, finishedAt: null, progress: 0.5, progressMessage: null, result: null, error: 'e', lockToken: null, lockOwner: null, lockExpiresAt: null, logs: ['l'] }
          : null,
    } as JobRow;
  });
}

t.test('decodeRowsInto reads rows of every shape exactly as avsc does', async (t) => {
  const random = mulberry32(7);
  for (let round = 0; round < 20; round++) {
    const rows = mixedRows(random, 200);
    const block = encodeRows(rows);
    t.same(decodeIntoCopies(block, new PayloadArena()), decodeRows(block), `round ${round}`);
  }
});

/** What decoding a damaged block gives: the rows, or that it threw a SnapshotCodecError. */
function outcome(decode: () => JobRow[]): unknown {
  try {
    return decode();
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

t.test('a cut or bit-flipped job block decodes, or fails, exactly as it does with avsc', async (t) => {
  const random = mulberry32(11);
  const block = encodeRows(mixedRows(random, 12));
  const arena = new PayloadArena();
  const differ: string[] = [];
  for (let cut = 0; cut < block.length; cut++) {
    const part = block.subarray(0, cut);
    const ours = outcome(() => decodeIntoCopies(part, arena));
    if (JSON.stringify(ours) !== JSON.stringify(outcome(() => decodeRows(part)))) differ.push(`cut at ${cut}`);
    if (ours !== 'SNAPSHOT_CODEC' && cut > 1) differ.push(`cut at ${cut} decoded`);
  }
  // A byte changed anywhere (blocks are checksummed before they are decoded, so this is only the
  // decoders' agreement; a count changed into a huge one would make avsc allocate without end, so
  // the values of the row fields are damaged, not the framing).
  for (let i = 0; i < 2_000; i++) {
    const damaged = Buffer.from(block);
    const pos = 2 + Math.floor(random() * (damaged.length - 3));
    damaged[pos] = (damaged[pos] as number) ^ (1 << Math.floor(random() * 7));
    const ours = JSON.stringify(outcome(() => decodeIntoCopies(damaged, arena)));
    if (ours !== JSON.stringify(outcome(() => decodeRows(damaged)))) differ.push(`damage ${i} at ${pos}`);
  }
  t.same(differ.slice(0, 5), [], 'no difference');
});

t.test('schema-1-images-and-schema-2-job-blocks-load-with-keyless-repeats', async (t) => {
  // What builds before Repeat.key wrote: the same values without the key, and the per-second
  // counts the state no longer keeps.
  const image = fullImage();
  const withoutKeys = JSON.parse(JSON.stringify(image)) as typeof image;
  for (const job of withoutKeys.jobs) if (job.repeat !== null) delete (job.repeat as { key?: string }).key;
  const seconds = [{ second: 1_700_000_000, pushed: 3, pulled: 1, completed: 1, failed: 2 ** 33 }];
  const v1Writer = createImageCodec(new Map([[1, { schema: schemaV1, upgrade: null }]]), 1);
  const upgraded = decodeImage(v1Writer.encodeImage({ ...withoutKeys, version: 1, stats: { ...withoutKeys.stats, seconds } as never }), 1);
  t.equal(upgraded.version, 2, 'the image takes the current layout version');
  t.same(upgraded.stats, image.stats, 'the per-second counts are dropped on read');
  t.same(
    upgraded.jobs.map((j) => j.repeat?.key),
    image.jobs.map((j) => (j.repeat === null ? undefined : '')),
    'every repeat has the key of a schedule from an older log',
  );

  // A schema-2 job block: its `jobs` array, written by a codec over that schema.
  const v2Writer = createImageCodec(new Map([[2, { schema: schemaV2.jobs, upgrade: null }]]), 2);
  const repeat = { every: 1_000, pattern: '', limit: null, immediately: false, count: 2, tz: '' };
  const options = { ...plainOptions, maxAttempts: 1, repeat };
  const v2Block = v2Writer.encodeImage([{ ...rowTemplate, id: 'r', data: '{}', options }] as never);
  const keys: unknown[] = [];
  decodeRowsInto(v2Block, new PayloadArena(), (r) => keys.push(r.options?.repeat?.key), 2);
  t.same(keys, [''], 'a schema-2 row of a repeating job reads with key ""');
  t.throws(() => decodeRowsInto(v2Block, new PayloadArena(), () => undefined, 1), { code: 'SNAPSHOT_CODEC', message: /schema version 1/ });
});

t.test('the-block-encoder-writes-what-encodeRows-writes-block-after-block', async (t) => {
  const random = mulberry32(11);
  const encoder = new JobBlockEncoder();
  for (const n of [0, 1, 63, 64, 200, 8_200]) {
    const rows = mixedRows(random, n);
    if (n === 200) rows[7] = { ...(rows[7] as JobRow), data: `"${'d'.repeat(3_000_000)}"` };
    for (const row of rows) encoder.add(row);
    t.equal(encoder.rowCount, n);
    const expected = encodeRows(rows);
    t.equal(encoder.rowBytes, expected.length - (n === 0 ? 1 : n < 64 ? 2 : n < 8_192 ? 3 : 4), `${n} rows: their bytes`);
    t.ok(encoder.take().equals(expected), `${n} rows: the same block`);
  }
});
