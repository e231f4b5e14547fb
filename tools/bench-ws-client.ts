// The load generator's WebSocket client (RFC 6455), written to spend as little of the machine's
// two shared cores as a correct client can, so that what `tapeq bench ws` measures is the server.
//
// The `ws` library's client cost the load generator about 4.4 µs per pipelined PUSH (a promise,
// a sender with a header and a payload buffer per frame, `JSON.parse` of every reply): 0.43 of a
// core at 97,000 commands/s, taken from the server under test. This client builds the frames of a
// tick into one buffer, masked with fresh random keys as the RFC requires of every client frame,
// writes it in one call, and reads the server's frames straight from the socket's chunks. Replies
// are matched to their commands by the echoed `reqId`; how a reply is judged is the caller's
// (`JSON.parse` for PULL → ACK, a prefix check for PUSH).

import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';

const acceptGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const opText = 0x1;
const opClose = 0x8;
const opPing = 0x9;
const opPong = 0xa;
const finBit = 0x80;
const maskBit = 0x80;
const writeBufferBytes = 256 * 1024;
const maskPoolBytes = 64 * 1024;
const reqIdKey = '"reqId":"';

/** Called with a reply's text and the `performance.now()` its command was sent at. */
export type ReplyHandler = (text: string, sentAt: number) => void;

export class WsLoadClient {
  #next = 0;
  readonly #handlers = new Map<number, ReplyHandler>();
  readonly #sentAt = new Map<number, number>();
  #out: Buffer | null = null;
  #outLength = 0;
  #masks = randomBytes(maskPoolBytes);
  #maskAt = 0;
  #in: Buffer | null = null;
  #failure: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('the server closed the WebSocket')));
  }

  /** Opens a WebSocket (the HTTP upgrade, its Sec-WebSocket-Accept checked) to `url` (ws://). */
  static open(url: string): Promise<WsLoadClient> {
    const key = randomBytes(16).toString('base64');
    const expected = createHash('sha1').update(key + acceptGuid).digest('base64');
    return new Promise((resolve, reject) => {
      const req = request(url.replace(/^ws/, 'http'), {
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' },
      });
      req.once('upgrade', (res, socket, head) => {
        if (res.headers['sec-websocket-accept'] !== expected) {
          socket.destroy();
          reject(new Error(`WebSocket upgrade of ${url}: wrong Sec-WebSocket-Accept`));
          return;
        }
        const client = new WsLoadClient(socket);
        if (head.length > 0) client.#receive(head);
        resolve(client);
      });
      req.once('response', (res) => {
        res.resume();
        reject(new Error(`WebSocket upgrade of ${url} answered ${res.statusCode}`));
      });
      req.once('error', reject);
      req.end();
    });
  }

  /** Sends `head` (an ASCII JSON object text without its closing brace) with the next reqId; the
   *  reply that echoes it goes to `handler`. Frames sent in one tick leave in one write. False
   *  (nothing sent) once the connection has failed; its commands in flight were answered then
   *  with `{ok: false, error}`. */
  send(head: string, handler: ReplyHandler): boolean {
    if (this.#failure !== null) return false;
    const reqId = this.#next++;
    this.#handlers.set(reqId, handler);
    this.#sentAt.set(reqId, performance.now());
    this.#frame(`${head},"reqId":"${reqId}"}`);
    return true;
  }

  /** `send` as a promise of the parsed reply. */
  call<T>(head: string): Promise<T> {
    return new Promise((resolve, reject) => {
      if (!this.send(head, (text) => resolve(JSON.parse(text) as T))) reject(this.#failure);
    });
  }

  /** Commands sent and not yet answered. */
  get inFlight(): number {
    return this.#handlers.size;
  }

  close(): void {
    this.#failure ??= new Error('closed by the load generator');
    this.socket.destroy();
  }

  #frame(text: string): void {
    const length = text.length;
    const headerBytes = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
    const frameBytes = headerBytes + 4 + length;
    if (this.#out === null || this.#outLength + frameBytes > this.#out.length) {
      if (this.#out !== null) this.#flush();
      else process.nextTick(() => this.#flush());
      this.#out = Buffer.allocUnsafe(Math.max(writeBufferBytes, frameBytes));
    }
    const out = this.#out;
    let at = this.#outLength;
    out[at++] = finBit | opText;
    if (length < 126) {
      out[at++] = maskBit | length;
    } else if (length < 0x10000) {
      out[at++] = maskBit | 126;
      out.writeUInt16BE(length, at);
      at += 2;
    } else {
      out[at++] = maskBit | 127;
      out.writeBigUInt64BE(BigInt(length), at);
      at += 8;
    }
    if (this.#maskAt + 4 > this.#masks.length) {
      randomFillSync(this.#masks);
      this.#maskAt = 0;
    }
    const masks = this.#masks;
    const m = this.#maskAt;
    this.#maskAt += 4;
    out[at] = masks[m]!;
    out[at + 1] = masks[m + 1]!;
    out[at + 2] = masks[m + 2]!;
    out[at + 3] = masks[m + 3]!;
    at += 4;
    const written = out.write(text, at, 'latin1');
    if (written !== length) throw new Error('a command longer than the write buffer');
    for (let i = 0; i < length; i++) out[at + i]! ^= masks[m + (i & 3)]!;
    this.#outLength = at + length;
  }

  #flush(): void {
    const out = this.#out;
    if (out === null || this.#outLength === 0) return;
    this.socket.write(out.subarray(0, this.#outLength));
    this.#out = null;
    this.#outLength = 0;
  }

  #receive(chunk: Buffer): void {
    let buf = this.#in === null ? chunk : Buffer.concat([this.#in, chunk]);
    let at = 0;
    while (buf.length - at >= 2) {
      const first = buf[at]!;
      const second = buf[at + 1]!;
      if ((second & maskBit) !== 0) return this.#fail(new Error('a masked frame from the server'));
      let length = second & 0x7f;
      let start = at + 2;
      if (length === 126) {
        if (buf.length - at < 4) break;
        length = buf.readUInt16BE(at + 2);
        start = at + 4;
      } else if (length === 127) {
        if (buf.length - at < 10) break;
        length = Number(buf.readBigUInt64BE(at + 2));
        start = at + 10;
      }
      if (buf.length < start + length) break;
      const opcode = first & 0x0f;
      if ((first & finBit) === 0 || opcode === 0) return this.#fail(new Error('a fragmented message (not expected from the server)'));
      if (opcode === opText) this.#reply(buf.toString('utf8', start, start + length));
      else if (opcode === opPing) this.#control(opPong, buf.subarray(start, start + length));
      else if (opcode === opClose) return this.#fail(new Error(`the server closed the WebSocket: ${buf.toString('utf8', start + 2, start + length)}`));
      else if (opcode !== opPong) return this.#fail(new Error(`a frame of opcode ${opcode}`));
      at = start + length;
    }
    this.#in = at === buf.length ? null : buf.subarray(at);
  }

  #reply(text: string): void {
    const key = text.lastIndexOf(reqIdKey);
    if (key < 0) return; // an event, not a reply
    const end = text.indexOf('"', key + reqIdKey.length);
    const reqId = end < 0 ? NaN : Number(text.slice(key + reqIdKey.length, end));
    const handler = this.#handlers.get(reqId);
    if (handler === undefined) return this.#fail(new Error(`a reply to no command sent: ${text.slice(0, 200)}`));
    const sentAt = this.#sentAt.get(reqId)!;
    this.#handlers.delete(reqId);
    this.#sentAt.delete(reqId);
    handler(text, sentAt);
  }

  /** A pong answering the server's ping, masked, ahead of the commands of this tick. */
  #control(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const frame = Buffer.allocUnsafe(6 + payload.length);
    frame[0] = finBit | opcode;
    frame[1] = maskBit | payload.length;
    mask.copy(frame, 2);
    for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(frame);
  }

  #fail(error: Error): void {
    if (this.#failure !== null) return;
    this.#failure = error;
    this.socket.destroy();
    const pending = [...this.#handlers.values()];
    this.#handlers.clear();
    this.#sentAt.clear();
    for (const handler of pending) handler(JSON.stringify({ ok: false, error: error.message }), performance.now());
  }
}
