import t from 'tap';
import { createImageCodec, decodeImage, encodeImage, schemaVersionCurrent } from '../../src/snapshot/codec.js';
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
