// The payload arena against a Map model: every payload reads back as stored through stores,
// frees, chunk releases and relocations; chunks are given up as payloads leave; and a Job reads
// the same data and timestamps whichever way they were handed to it.
import t from 'tap';
import { BackoffType, JobState, RemoveReason, type JobSpec, type LogRecord, type RecordBody } from '../../src/record/types.js';
import { Job } from '../../src/state/job.js';
import { PayloadArena, payloadBytesMax } from '../../src/state/payloads.js';
import { apply, createState, NO_IDS, type State } from '../../src/state/index.js';
import { mulberry32 } from '../fixtures/random.js';

const MiB = 1 << 20;

/** Text of about `length` characters: ASCII, or with 2-, 3- and 4-byte UTF-8 sequences mixed in. */
function textOf(random: () => number, length: number): string {
  const pieces = ['a', 'Z', '"', '{', 'é', '€', '😀', '7'];
  let out = '';
  while (out.length < length) out += pieces[Math.floor(random() * (random() < 0.8 ? 2 : pieces.length))];
  return out;
}

t.test('reads back every payload through 100,000 random stores, frees and relocations', async (t) => {
  const random = mulberry32(7);
  const arena = new PayloadArena();
  const model: { at: number; bytes: number; text: string }[] = [];
  // Each entry holds the payload's UTF-8 bytes after a 2-byte length.
  const wrong: string[] = [];
  for (let i = 0; i < 100_000; i++) {
    const r = random();
    if (r < 0.6 || model.length === 0) {
      const text = textOf(random, 1 + Math.floor(random() * 300));
      const bytes = 2 + Buffer.byteLength(text);
      const at = arena.store(text);
      if (at < 0) wrong.push(`op ${i}: refused ${bytes} bytes`);
      else model.push({ at, bytes, text });
      continue;
    }
    const k = Math.floor(random() * model.length);
    const entry = model[k]!;
    if (r < 0.9) {
      if (arena.read(entry.at) !== entry.text) wrong.push(`op ${i}: read before free`);
      arena.free(entry.at);
      model[k] = model[model.length - 1]!;
      model.pop();
    } else {
      entry.at = arena.relocate(entry.at);
    }
  }
  for (const [k, entry] of model.entries()) if (arena.read(entry.at) !== entry.text) wrong.push(`end: read ${k}`);
  t.same(wrong, []);
  t.equal(arena.liveBytes, model.reduce((sum, e) => sum + e.bytes, 0), 'live bytes are the sum of the stored entries');
  for (const entry of model) arena.free(entry.at);
  t.equal(arena.liveBytes, 0);
  t.ok(arena.heldBytes <= MiB, `with nothing live only the current chunk is held (${arena.heldBytes} bytes)`);
});

t.test('refuses empty and oversized payloads, which the Job then keeps as strings', async (t) => {
  const arena = new PayloadArena();
  t.equal(arena.store(''), -1);
  const big = 'x'.repeat(payloadBytesMax + 1);
  t.equal(arena.store(big), -1);
  t.ok(arena.store('x'.repeat(payloadBytesMax)) >= 0, 'payloadBytesMax itself fits');
  // 3 bytes per character: few enough characters to pass the length check, too many bytes.
  const wide = '€'.repeat(Math.floor(payloadBytesMax / 2));
  for (const data of ['', big, wide]) {
    const job = new Job(arena, 'j', 'q', 'default', data, 0, 0, 0, 0, JobState.WAITING, NO_IDS, null);
    t.equal(job.data, data, `${data.length} characters read back`);
  }
});

t.test('a chunk is released once nothing in it is live, and wasteful() asks for relocation', async (t) => {
  const arena = new PayloadArena();
  const text = 'p'.repeat(998);
  const perChunk = Math.floor(MiB / 1000);
  const ats: number[] = [];
  for (let i = 0; i < 40 * perChunk + 40; i++) ats.push(arena.store(text));
  const held = arena.heldBytes;
  t.equal(held, 41 * MiB, `1,000-byte entries fill ${perChunk} per chunk`);
  // Free all but one payload per chunk: each chunk stays held by the one left.
  const kept = ats.filter((_, i) => i % perChunk === 0);
  for (const [i, at] of ats.entries()) if (i % perChunk !== 0) arena.free(at);
  t.equal(arena.heldBytes, held, 'a chunk with one live payload is kept');
  t.ok(arena.wasteful(), 'held far beyond live');
  const moved = kept.map((at) => (arena.sparse(at) ? arena.relocate(at) : at));
  t.ok(arena.heldBytes <= 2 * MiB, `relocation released the sparse chunks (${arena.heldBytes} bytes held)`);
  t.notOk(arena.wasteful());
  for (const at of moved) t.equal(arena.read(at), text);
});

t.test('storeBytes keeps the bytes as they are; a Job decodes them like Buffer#toString', async (t) => {
  const arena = new PayloadArena();
  const bytes = Buffer.concat([Buffer.from('{"a":"é'), Buffer.from([0xff, 0xc3]), Buffer.from('"}')]);
  const at = arena.storeBytes(bytes, 0, bytes.length);
  t.type(at, 'number');
  const job = new Job(arena, 'j', 'q', 'default', at, 0, 0, 0, 0, JobState.WAITING, NO_IDS, null);
  t.equal(job.data, bytes.toString('utf8'), 'invalid sequences become U+FFFD exactly as a string decode does');
  const big = Buffer.alloc(payloadBytesMax + 1, 0x61);
  t.equal(arena.storeBytes(big, 0, big.length), big.toString(), 'too large: handed back as the string');
});

t.test('timestamps and data read back exactly, whatever their size', async (t) => {
  const arena = new PayloadArena();
  for (const ms of [0, 1, 1.5, -5, 2 ** 24 - 1, 2 ** 24, 1_733_450_123_456, 2 ** 53 - 1, -(2 ** 40) - 3]) {
    const job = new Job(arena, 'j', 'q', 'default', '{}', 0, ms, 0, ms, JobState.WAITING, NO_IDS, null);
    t.equal(job.createdAt, ms, `createdAt ${ms}`);
    t.equal(job.runAt, ms, `runAt ${ms}`);
    job.runAt = ms + 1;
    t.equal(job.runAt, ms + 1, `runAt set to ${ms + 1}`);
  }
});

t.test('a detached job keeps its data after the arena reuses the space', async (t) => {
  const arena = new PayloadArena();
  const job = new Job(arena, 'j', 'q', 'default', '{"mine":1}', 0, 0, 0, 0, JobState.WAITING, NO_IDS, null);
  const other = new Job(arena, 'k', 'q', 'default', '{"next":2}', 0, 0, 0, 0, JobState.WAITING, NO_IDS, null);
  job.detachData();
  job.detachData();
  t.equal(arena.liveBytes, 2 + '{"next":2}'.length, 'the detached payload was freed, once');
  for (let i = 0; i < 3; i++) new Job(arena, `f${i}`, 'q', 'default', '{"fill":3}', 0, 0, 0, 0, JobState.WAITING, NO_IDS, null);
  t.equal(job.data, '{"mine":1}');
  t.equal(other.data, '{"next":2}');
});

function spec(id: string, data: string): JobSpec {
  return {
    id, queue: 'q', name: 'default', data, priority: 0, runAt: 1000, maxAttempts: 3, backoff: 1000,
    backoffType: BackoffType.EXPONENTIAL, ttl: null, timeout: null, uniqueKey: '', customId: false, tags: [],
    groupId: '', lifo: false, removeOnComplete: null, removeOnFail: null, dependsOn: [], repeat: null, maxStalled: null,
  };
}

function feed(state: State, body: RecordBody): void {
  const record: LogRecord = { offset: state.offset, timestamp: 1000, actor: null, body };
  apply(state, record);
}

t.test('the fold compacts payloads as jobs leave, and every remaining job keeps its data', async (t) => {
  const state = createState();
  const dataOf = (i: number) => JSON.stringify({ i, pad: 'd'.repeat(200) });
  const count = 300_000;
  for (let i = 0; i < count; i++) feed(state, { type: 'pushed', job: spec(`j${i}`, dataOf(i)), state: JobState.WAITING, pendingDeps: [] });
  const heldFull = state.payloads.heldBytes;
  // Cancel all but every 50th job: each chunk keeps a few live payloads.
  for (let i = 0; i < count; i++) {
    if (i % 50 === 0) continue;
    feed(state, { type: 'removed', queue: 'q', jobs: [{ jobId: `j${i}`, prev: JobState.WAITING }], reason: RemoveReason.CANCELLED });
  }
  const live = state.payloads.liveBytes;
  t.ok(state.payloads.heldBytes <= 2 * live + 17 * MiB, `held ${state.payloads.heldBytes} of ${heldFull} for ${live} live bytes`);
  t.ok(state.payloads.heldBytes < heldFull / 2, 'most chunks were given up');
  const wrong: string[] = [];
  for (let i = 0; i < count; i += 50) if (state.jobs.get(`j${i}`)?.data !== dataOf(i)) wrong.push(`j${i}`);
  t.same(wrong, []);
});
