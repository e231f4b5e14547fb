import t from 'tap';
import { decodeRecord, encodeRecord, PROTO_BODY_TYPES, recordToJson } from '../../src/record/codec.js';
import { RECORD_TYPES, type LogRecord } from '../../src/record/types.js';
import { sampleRecord, smallPushDraft } from '../fixtures/records.js';

t.test('schema-body-types-match-RECORD_TYPES', async (t) => {
  t.strictSame([...PROTO_BODY_TYPES], [...RECORD_TYPES]);
});

t.test('every-record-kind-round-trips-fully-populated', async (t) => {
  for (const type of RECORD_TYPES) {
    const r = sampleRecord(type, 123_456_789_012, 1_700_000_000_123);
    const bytes = encodeRecord(r);
    const back = decodeRecord(bytes);
    t.strictSame(back, r, type);
    t.strictSame(decodeRecord(bytes), back, `${type}: two decodes are deepEqual`);
  }
});

t.test('absent-optional-fields-decode-as-null-and-empty-lists', async (t) => {
  const d = smallPushDraft(1);
  const r: LogRecord = { offset: 0, ...d };
  const back = decodeRecord(encodeRecord(r));
  t.strictSame(back, r);
  if (back.body.type !== 'pushed') throw new Error('type');
  t.equal(back.body.job.ttl, null);
  t.equal(back.body.job.repeat, null);
  t.strictSame(back.body.job.tags, []);
  t.equal(back.actor, null);
  t.equal(Object.getPrototypeOf(back.body.job), Object.prototype, 'plain object');
});

t.test('uint64-values-up-to-2^53-round-trip', async (t) => {
  for (const n of [0, 1, 127, 128, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 1, 1_700_000_000_000, Number.MAX_SAFE_INTEGER]) {
    const r = sampleRecord('pulled', n, n);
    if (r.body.type !== 'pulled') throw new Error('type');
    r.body.lockMs = n;
    t.strictSame(decodeRecord(encodeRecord(r)), r, String(n));
  }
});

t.test('zero-is-not-null-for-optional-fields', async (t) => {
  const r = sampleRecord('pushed');
  if (r.body.type !== 'pushed') throw new Error('type');
  r.body.job.ttl = 0;
  r.body.job.maxStalled = 0;
  const back = decodeRecord(encodeRecord(r));
  t.strictSame(back, r);
});

t.test('decode-of-a-slice-honours-start-and-end', async (t) => {
  const r = sampleRecord('failed');
  const bytes = encodeRecord(r);
  const padded = new Uint8Array(bytes.length + 10);
  padded.set(bytes, 5);
  t.strictSame(decodeRecord(padded, 5, 5 + bytes.length), r);
});

t.test('garbage-bytes-throw-a-decode-error', async (t) => {
  t.throws(() => decodeRecord(new Uint8Array([0xff, 0xff, 0xff])));
  t.throws(() => decodeRecord(encodeRecord(sampleRecord('pushed')).subarray(0, 3)));
});

t.test('recordToJson-names-enums-and-keeps-fields', async (t) => {
  const j = recordToJson(sampleRecord('removed', 3, 0));
  t.match(j, { offset: 3, timestamp: 0, time: '1970-01-01T00:00:00.000Z', type: 'removed', queue: 'emails', reason: 'remove-on-fail' });
  t.strictSame(j['jobs'], [
    { jobId: 'job-1', prev: 'waiting' },
    { jobId: 'job-2', prev: 'delayed' },
  ]);
  t.match(recordToJson(sampleRecord('failed')), { outcome: 'dead' });
  t.match(recordToJson(sampleRecord('stalled')), { outcome: 'stall-failed' });
  t.match(recordToJson(sampleRecord('retried')), { prev: 'failed' });
  t.match(recordToJson(sampleRecord('pushed')), { state: 'waiting-children', job: { backoffType: 'fixed' } });
  t.match(recordToJson(sampleRecord('pulled')), { actor: { name: 'tok:ab12' } });
  t.equal(JSON.parse(JSON.stringify(j)).type, 'removed');
});

t.test('non-ascii-strings-short-and-long-round-trip', async (t) => {
  const r = sampleRecord('logged');
  if (r.body.type !== 'logged') throw new Error('type');
  for (const message of ['é', 'naïve ☃', '日本語のメッセージ、とても長いテキストです', '🎉'.repeat(40), 'x'.repeat(16), 'y'.repeat(17)]) {
    r.body.message = message;
    r.body.jobId = message.slice(0, 4);
    t.strictSame(decodeRecord(encodeRecord(r)), r, message.slice(0, 10));
  }
});

t.test('encoding-is-the-worked-example-of-the-format-doc', async (t) => {
  const r = { offset: 5, timestamp: 1_700_000_000_000, actor: null, body: { type: 'queuePaused', queue: 'emails' } } as LogRecord;
  t.equal(Buffer.from(encodeRecord(r)).toString('hex'), '0805' + '1080d095ffbc31' + 'ba0108' + '0a06656d61696c73');
});

t.test('nested-messages-of-128-bytes-and-more-get-a-wider-length-and-round-trip', async (t) => {
  for (const dataBytes of [60, 100, 127, 128, 200, 16_500]) {
    const r = sampleRecord('pushed');
    if (r.body.type !== 'pushed') throw new Error('sample');
    r.body.job.data = 'x'.repeat(dataBytes);
    const bytes = encodeRecord(r);
    t.strictSame(decodeRecord(bytes), r, `data of ${dataBytes} bytes`);
  }
});

t.test('short-strings-decode-exactly-when-many-share-an-intern-slot', async (t) => {
  const names = Array.from({ length: 5_000 }, (_, i) => (i % 3 === 0 ? `q${i}` : i % 3 === 1 ? `queue-${i}-é` : `x`.repeat(i % 30)));
  let wrong = 0;
  for (let round = 0; round < 2; round++) {
    for (const queue of names) {
      const r = { offset: 1, timestamp: 2, actor: null, body: { type: 'queuePaused', queue } } as LogRecord;
      const back = decodeRecord(encodeRecord(r));
      if (back.body.type !== 'queuePaused' || back.body.queue !== queue) wrong++;
    }
  }
  t.equal(wrong, 0);
});
