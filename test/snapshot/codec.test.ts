import t from 'tap';
import {
  createImageCodec,
  decodeImage,
  decodeRows,
  decodeRowsInto,
  encodeImage,
  encodeRows,
  schemaVersionCurrent,
  type JobRow,
} from '../../src/snapshot/codec.js';
import { PayloadArena } from '../../src/state/payloads.js';
import { JobState } from '../../src/record/types.js';
import schemaV1 from '../../src/snapshot/schema-v1.json' with { type: 'json' };
import { emptyImage, fullImage } from './images.js';

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
  const v0 = JSON.parse(JSON.stringify(schemaV1)) as {
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
      [1, { schema: schemaV1, upgrade: null }],
    ]),
    1,
  );
  const image = fullImage();
  for (const job of image.jobs) job.logs = [];
  const oldPayload = oldWriter.encodeImage(image);
  t.strictSame(reader.decodeImage(oldPayload, 0), image, 'v0 payload read through the v0→v1 upgrade');
  t.strictSame(reader.decodeImage(reader.encodeImage(image), 1), image, 'current version still reads');
  t.throws(() => createImageCodec(new Map([[0, { schema: v0, upgrade: null }], [1, { schema: schemaV1, upgrade: null }]]), 1), {
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
  t.throws(() => decodeRowsInto(block, arena), { code: 'SNAPSHOT_CODEC' });
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

t.test('decodeRowsInto stores each row\'s id and data in the arena and keeps every other field', async (t) => {
  const rows = [
    { ...rowTemplate, id: 'a', data: '{"x":1}' },
    { ...rowTemplate, id: 'b', data: '{"é":"€😀"}' },
  ];
  const arena = new PayloadArena();
  const stored = decodeRowsInto(encodeRows(rows), arena);
  t.same(
    stored.map((r) => ({
      ...r,
      id: typeof r.id === 'number' ? arena.read(r.id) : r.id,
      data: typeof r.data === 'number' ? arena.read(r.data) : r.data,
    })),
    decodeRows(encodeRows(rows)),
  );
});
