// parsePlainObject (api/plain-json.ts) reads a plain WebSocket command or HTTP push body without
// JSON.parse.
// Whatever it returns must be what JSON.parse returns (the same keys, in the same order, the same
// values, `data` kept as the text the log stores); anything else it must leave to JSON.parse.
// Over a real socket, a PUSH stores the same data text whichever way its command was read, the
// same text an HTTP push of that data stores. A failure prints its seed.

import t from 'tap';
import { JsonText } from '../../src/broker/json-text.js';
import { parsePlainObject } from '../../src/api/plain-json.js';
import { mulberry32 } from '../fixtures/random.js';
import { WsClient } from './clients.js';
import { startRealtime } from './harness.js';

const seed = Number(process.env.TAPEQ_SEED ?? Date.now() % 2 ** 31);
t.comment(`seed ${seed} (TAPEQ_SEED=${seed} replays this run)`);
const random = mulberry32(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const keys = ['cmd', 'queue', 'data', 'reqId', 'durable', 'priority', 'name', 'k"q', 'k\\b', '__proto__', '1', 'é', ''];
const scalars = ['"PUSH"', '"push"', '"q"', '""', '"a\\"b"', '"\\u0041"', '"é😀"', '1', '-2', '0.5', '1e3', '-0', '12345678901234567890', 'true', 'false', 'null', '{}', '[1]', '{"a":1}'];
const datas = ['{"a":1}', '{"a":1.0}', '{"b":1,"1":2}', '{"a":1,"a":2}', '[1, 2]', '"x\\/y"', '"\\u00e9"', '42', '-0', 'null', '{"s":"t\\n\\"u\\""}', '{"deep":{"er":[{"x":[]}]}}', '"\ud83d\ude00"'];
const spaces = ['', '', '', ' ', '\n', '\t ', '\r\n'];
const noise: Array<(s: string) => string> = [(s) => s, (s) => s, (s) => s, (s) => s.slice(0, -1), (s) => `${s}x`, (s) => s.replace(',', ',,'), (s) => s.replace(':', ''), (s) => `[${s}]`];

function randomCommand(): string {
  const parts: string[] = [];
  for (let n = 1 + Math.floor(random() * 5); n > 0; n--) {
    const key = pick(keys);
    const value = key === 'data' || random() < 0.2 ? pick(datas) : pick(scalars);
    parts.push(`${pick(spaces)}${JSON.stringify(key)}${pick(spaces)}:${pick(spaces)}${value}${pick(spaces)}`);
  }
  return pick(noise)(`${pick(spaces)}{${parts.join(',')}}${pick(spaces)}`);
}

/** `fields` with its JsonText data parsed, as JSON.parse would have given it. */
function unwrapped(fields: Record<string, unknown>): Record<string, unknown> {
  const data = fields['data'];
  return data instanceof JsonText ? { ...fields, data: JSON.parse(data.text) as unknown } : fields;
}

t.test('what-it-returns-is-what-json-parse-returns', async (t) => {
  let taken = 0;
  let tried = 0;
  for (let i = 0; i < 20_000; i++) {
    const text = randomCommand();
    const fields = parsePlainObject(text);
    if (fields === null) continue;
    tried += 1;
    let expected: unknown;
    try {
      expected = JSON.parse(text);
    } catch (error) {
      t.fail(`took ${JSON.stringify(text)}, which JSON.parse refuses: ${String(error)} (seed ${seed})`);
      return;
    }
    const got = unwrapped(fields);
    if (JSON.stringify(Object.keys(got)) !== JSON.stringify(Object.keys(expected as object)) || JSON.stringify(got) !== JSON.stringify(expected)) {
      t.fail(`${JSON.stringify(text)}: ${JSON.stringify(got)} against JSON.parse's ${JSON.stringify(expected)} (seed ${seed})`);
      return;
    }
    const data = fields['data'];
    if (data instanceof JsonText && data.text !== JSON.stringify(JSON.parse(data.text))) {
      t.fail(`${JSON.stringify(text)}: data kept as ${data.text}, not as JSON.stringify writes it (seed ${seed})`);
      return;
    }
    if (data instanceof JsonText) taken += 1;
  }
  t.ok(taken > 100, `${tried} of 20,000 random commands read without JSON.parse, ${taken} with their data kept as text`);
});

t.test('the-plain-push-is-read-and-the-rest-left-to-json-parse', async (t) => {
  const plain = '{"cmd":"PUSH","queue":"emails","data":{"to":"a@b.c","n":1},"reqId":"7"}';
  const fields = parsePlainObject(plain);
  t.ok(fields !== null && fields['data'] instanceof JsonText, 'a plain PUSH');
  t.strictSame(fields && unwrapped(fields), JSON.parse(plain));
  for (const text of [
    '{"cmd":"PUSH","queue":"q","data":{},"opts":{"delay":5}}', // a nested value besides data
    '{"cmd":"PUSH","queue":"q\\u0041","data":{}}', // an escape outside data
    '{"__proto__":{"x":1},"cmd":"PUSH"}', // the one key `=` would not store as JSON.parse does
    '{"cmd":"PUSH","data":{"a":1.50}}', // data not in stored form
    '{"cmd":"PUSH","data":1,}', // not JSON
    '["PUSH"]',
    '',
  ]) {
    t.equal(parsePlainObject(text), null, text);
  }
});

t.test('a-push-stores-the-same-data-text-however-its-command-was-read', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  const datas = [
    '{"to":"a@b.c","n":1,"tags":["x","y"]}', // the stored form: read without JSON.parse
    '{ "to" : "a@b.c" , "n" : 1.0 }', // whitespace and 1.0: JSON.parse, then stored as {"to":"a@b.c","n":1}
    '{"b":1,"2":"two","a":"\\/\\u00e9"}', // an index key, escapes
    '{"dup":1,"dup":2}',
    '[1e2,-0,12345678901234567890,"\\ud83d\\ude00"]',
  ];
  const ids: string[] = [];
  for (const [i, data] of datas.entries()) {
    ws.send(`{"cmd":"PUSH","queue":"text","data":${data},"reqId":"p${i}"}`);
    const reply = await ws.reply(`p${i}`);
    t.match(reply, { ok: true }, data);
    ids.push(reply.id as string);
  }
  // One job per request (the route that reads its body with plain-json.ts) and a bulk (which does not).
  for (const data of datas) {
    const one = await h.server.request('POST', '/queues/text/jobs', { raw: `{"data":${data}}` });
    t.equal(one.status, 200, data);
    ids.push((one.json as { id: string }).id);
  }
  const http = await h.server.request('POST', '/queues/text/jobs/bulk', { raw: `{"jobs":[${datas.map((d) => `{"data":${d}}`).join(',')}]}` });
  t.equal(http.status, 200);
  ids.push(...(http.json as { ids: string[] }).ids);

  const stored = new Map<string, string>();
  for await (const record of h.fixture.log.read(h.fixture.log.firstOffset)) {
    if (record.body.type === 'pushed') stored.set(record.body.job.id, record.body.job.data);
  }
  for (const [i, data] of datas.entries()) {
    const expected = JSON.stringify(JSON.parse(data));
    t.equal(stored.get(ids[i]!), expected, `over WebSocket: ${data}`);
    t.equal(stored.get(ids[i + datas.length]!), expected, `over HTTP, one job: ${data}`);
    t.equal(stored.get(ids[i + 2 * datas.length]!), expected, `over HTTP, in a bulk: ${data}`);
  }
});

t.test('an-http-push-body-is-refused-or-taken-as-the-json-parser-did', async (t) => {
  // The JSON parser refuses `__proto__` anywhere and `constructor.prototype`; a body with either
  // word never takes the plain path, so those answers are what they were.
  const h = await startRealtime();
  t.teardown(() => h.close());
  const before = h.fixture.log.nextOffset;
  for (const body of ['{"data":{"__proto__":{"x":1}}}', '{"data":{"constructor":{"prototype":{"x":1}}}}', '{"data":{"a":1},"__proto__":{}}']) {
    const res = await h.server.request('POST', '/queues/p/jobs', { raw: body });
    t.strictSame([res.status, res.json], [400, { ok: false, error: 'Invalid JSON body' }], body);
  }
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');
  for (const [body, error] of [
    ['{"data":{"a":1},"priorty":1}', 'priorty is not an allowed field'],
    ['{"data":{"a":1},"priority":"high"}', 'priority must be a number'],
    ['{"priority":1}', 'data is required'],
    ['{"data":{"a":1}', 'Invalid JSON body'],
  ] as const) {
    const res = await h.server.request('POST', '/queues/p/jobs', { raw: body });
    t.strictSame([res.status, res.json], [400, { ok: false, error }], body);
  }
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');
  const res = await h.server.request('POST', '/queues/p/jobs', { raw: '{"data":{"constructor":1}}' });
  t.equal(res.status, 200, 'a key named constructor alone is data like any other');
  t.match(h.fixture.broker.getJob((res.json as { id: string }).id), { data: { constructor: 1 } });
});
