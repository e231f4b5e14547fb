// The session's own text frames are byte for byte what the ws library would send.

import { createRequire } from 'node:module';
import t from 'tap';
import { asciiTextFrame } from '../../src/api/realtime/frames.js';

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
