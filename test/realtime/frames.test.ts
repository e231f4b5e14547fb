// The session's own text frames are byte for byte what the ws library would send, and a group's
// push replies written straight into a Buffer are those frames of JSON.stringify's replies.

import { createRequire } from 'node:module';
import t from 'tap';
import { asciiTextFrame, pushReplyFrames } from '../../src/api/realtime/frames.js';

type Frame = (data: Buffer, options: Record<string, unknown>) => Buffer[];
const wsFrame = (createRequire(import.meta.url)('ws') as { Sender: { frame: Frame } }).Sender.frame;

function byWs(message: string): Buffer {
  const options = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false };
  return Buffer.concat(wsFrame(Buffer.from(message, 'utf8'), options));
}

t.test('ascii-messages-of-every-length-form-frame-as-ws-frames-them', async (t) => {
  for (const length of [0, 1, 125, 126, 127, 255, 256, 65_535]) {
    const message = 'q'.repeat(length);
    const frame = asciiTextFrame(message);
    if (frame === null) {
      t.fail(`length ${length} got no frame`);
      continue;
    }
    t.strictSame(Buffer.from(frame, 'latin1'), byWs(message), `length ${length}`);
  }
  t.strictSame(Buffer.from(asciiTextFrame('{"ok":true,"id":"1","reqId":"\\u00e9"}') ?? '', 'latin1'), byWs('{"ok":true,"id":"1","reqId":"\\u00e9"}'));
});

t.test('non-ascii-and-over-64-KiB-messages-are-left-to-ws', async (t) => {
  for (const message of ['é', 'caf\u00e9', '\u0080', '日本', '\u{1F600}', 'a'.repeat(10) + '\u00ff']) t.equal(asciiTextFrame(message), null, JSON.stringify(message));
  t.equal(asciiTextFrame('q'.repeat(65_536)), null, '65,536 characters need an 8-byte length');
});

t.test('push-replies-in-one-buffer-are-the-frames-of-json-stringify-replies', async (t) => {
  const replyFrames = (ids: string[], reqIds: unknown[]): Buffer =>
    Buffer.concat(ids.map((id, i) => byWs(JSON.stringify(reqIds[i] === undefined ? { ok: true, id } : { ok: true, id, reqId: reqIds[i] }))));
  const cases: Array<[string, string[], unknown[]]> = [
    ['string reqIds', ['019af0c2-1b2c-7d3e-8f40-5a6b7c8d9e0f', 'j2'], ['1', 'r-2']],
    ['number reqIds and none', ['a', 'b', 'c'], [7, undefined, -12]],
    ['replies across the 125/126 byte length forms', ['x'.repeat(80), 'y'.repeat(100), 'z'.repeat(150)], ['q'.repeat(20), '', 'q'.repeat(300)]],
    ['a reply just under 64 KiB', ['i'.repeat(65_500)], ['r']],
    ['no replies', [], []],
  ];
  for (const [what, ids, reqIds] of cases) {
    const out = pushReplyFrames(ids, reqIds);
    t.ok(out !== null && out.equals(replyFrames(ids, reqIds)), what);
  }
  const refused: Array<[string, string[], unknown[]]> = [
    ['an id JSON escapes', ['a"b'], ['1']],
    ['a reqId JSON escapes', ['a'], ['x\\y']],
    ['a control character', ['a'], ['x\ny']],
    ['a non-ASCII id', ['café'], ['1']],
    ['a reqId that is not a safe integer', ['a'], [1.5]],
    ['an object reqId', ['a'], [{ n: 1 }]],
    ['null as reqId', ['a'], [null]],
    ['a reply of 64 KiB', ['i'.repeat(65_600)], ['r']],
  ];
  for (const [what, ids, reqIds] of refused) t.equal(pushReplyFrames(['ok', ...ids], [undefined, ...reqIds]), null, what);
});
