// WebSocket: `/ws` and `/ws/queues/:queue` (seed 004 "WebSocket"), events plus commands on one
// socket.
//
// Authentication. Seed 004 says both "the upgrade is rejected with 401 when the token is missing
// or invalid" and "alternatively, after connecting, authenticate with the Auth command"; both
// cannot hold for a client without a header. Resolution: the upgrade is rejected (401) when an
// Authorization header is present and invalid, and when there is none and the queue or `?from`
// is malformed; a headerless `?from` past the log's end is refused at Auth (an answer before it
// would tell a client without a token where the log ends). Without a header the socket is accepted
// unauthenticated: every command except Auth answers `{ok:false, error:"Unauthorized"}` and no
// event is sent until an Auth command succeeds (then the stream starts, from `?from` if given).
//
// Events are the seed-004 JSON objects plus `offset` (the log offset; a WebSocket has no `id:`
// field), so a client can reconnect with `?from=<offset>`. Commands run concurrently, each reply
// echoing its `reqId`; at most wsInflightMax run at once per socket. A slow reader is cut off with a
// final `{"ok": false, "error": …}` message and close code 1008. On close the client's pulled-and-still-active
// jobs are released (`broker.releaseOwner`, one `released` record each); when the server closes,
// that happens before its close resolves (goAway), not when the client's close frame comes back.

import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { wsAuthFailuresMax, wsShutdownCloseGraceMs } from '../../constants.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import type { BrokerEvent } from '../../broker/events.js';
import { replyJson } from '../../broker/json-text.js';
import type { Ctx, Failure } from '../../broker/types.js';
import type { Actor } from '../../record/types.js';
import { authenticate, bearerToken, tokenActorName, tokenMatches } from '../auth.js';
import { clientAddress } from '../context.js';
import { connections } from '../connections.js';
import { parsedData, parsePlainObject } from '../plain-json.js';
import { asciiTextFrame, pushReplyFrames } from './frames.js';
import { failure, isBrokerCommand, runCommand, startPush, toReply, unknownField, type Reply } from './commands.js';
import type { RealtimeDeps } from './deps.js';
import { parseResumeOffset, parseStreamParams, type StreamParams } from './params.js';
import { wsMessages } from './render.js';
import { drainPollMs, Subscription } from './subscription.js';

/** Close code for a slow consumer and for an authentication timeout: 1008 policy violation. */
export const wsPolicyViolationCode = 1008;
/** WebSocket close code for a server going down (RFC 6455). */
export const wsGoingAwayCode = 1001;

/** `sessions` gets each open session's goAway (for the plugin's preClose), until it closes. */
export function registerWs(app: FastifyInstance, deps: RealtimeDeps, sessions: Set<() => Promise<void>>): void {
  const preValidation = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    if (deps.config.authTokens.length > 0 && header !== undefined && !authenticate(header, deps.config)) {
      await reply.code(401).send({ ok: false, error: 'Unauthorized' });
      return;
    }
    // A client without a token learns nothing before it authenticates, as on SSE: a bad parameter
    // is a 401, and `?from` is checked against the log's end only at its Auth (WsSession.#auth),
    // since a 400 here, or a 400 for one offset and a 101 for the next, tells it where the log ends.
    const anonymous = deps.config.authTokens.length > 0 && header === undefined;
    const params = parseStreamParams(request.params, undefined, request.query, anonymous ? Number.POSITIVE_INFINITY : deps.log.durableOffset);
    if (!params.ok) {
      if (anonymous) await reply.code(401).send({ ok: false, error: 'Unauthorized' });
      else await reply.code(400).send(failure(params.error));
      return;
    }
    accepted.set(request, params.value);
  };
  // What preValidation parsed, for the handler: parsing again there could see a log grown since.
  const accepted = new WeakMap<FastifyRequest, StreamParams>();
  const wsHandler = (socket: WebSocket, request: FastifyRequest): void => {
    const params = accepted.get(request);
    if (params === undefined) throw new Error('ws route reached without parameters preValidation accepted');
    new WsSession(socket, request, deps, params, sessions).start();
  };
  // A plain GET (no Upgrade header) gets the error envelope, not @fastify/websocket's empty 404.
  const handler = async (_request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await reply.code(426).header('upgrade', 'websocket').send(failure('Upgrade required: connect with a WebSocket client'));
  };
  // 'exempt' from buildServer's auth hook, which would 401 every upgrade without a header: these
  // routes authenticate themselves (preValidation above, or the Auth command).
  // Hidden from the OpenAPI document, which describes HTTP operations (as @fastify/websocket's
  // `websocket: true` shorthand would hide them).
  const options = { preValidation, config: { auth: 'exempt' }, schema: { hide: true }, handler, wsHandler } as const;
  app.get('/ws', options);
  app.get('/ws/queues/:queue', options);
}

/** Pushes of one session answered together: their group commit's `durable`, and per push its
 *  job id and the command's reqId, in arrival order. */
interface PushGroup {
  durable: Promise<Failure | null>;
  ids: string[];
  reqIds: unknown[];
}

class WsSession {
  readonly #clientId = randomUUID();
  readonly #ctx: Ctx;
  readonly #abort = new AbortController();
  #authenticated: boolean;
  #inflight = 0;
  /** The pushes waiting on the newest group commit's durability; null when none is. */
  #pushes: PushGroup | null = null;
  #corked = false;
  #authFailures = 0;
  /** An Auth found the `?from` of a socket upgraded without a token past the log's end. */
  #resumeRefused = false;
  /** The poll waiting for the replies' backlog to drain while commands are not read. */
  #commandStall: NodeJS.Timeout | null = null;
  /** Commands received while the backlog was over its limit, run in order once it drains. */
  readonly #held: Array<{ data: RawData; isBinary: boolean }> = [];
  #subscription: Subscription | null = null;
  /** Offset of the last event sent; what the client should resume from. */
  #lastOffset: number | null;

  constructor(
    private readonly socket: WebSocket,
    private readonly request: FastifyRequest,
    private readonly deps: RealtimeDeps,
    private readonly filter: StreamParams,
    private readonly sessions: Set<() => Promise<void>>,
  ) {
    // A present-and-invalid header was rejected at upgrade, so a header here is a valid one.
    const token = deps.config.authTokens.length === 0 ? null : bearerToken(request.headers.authorization);
    this.#authenticated = deps.config.authTokens.length === 0 || token !== null;
    this.#ctx = { actor: actorOf(token, clientAddress(request)), owner: `ws:${this.#clientId}` };
    this.#lastOffset = filter.after;
  }

  start(): void {
    connections.ws += 1;
    // Every in-flight long-poll PULL listens on this signal: up to wsInflightMax of them.
    setMaxListeners(this.deps.limits.wsInflightMax + 1, this.#abort.signal);
    this.socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    this.socket.once('close', () => this.#onClose());
    this.sessions.add(this.#goAway);
    this.#armHeartbeat();
    if (this.#authenticated) this.#subscribe();
    else this.#armAuthDeadline();
  }

  /** A peer that vanished without closing (a host powered off, a NAT mapping dropped) sends no
   *  close and, with no events for its queue, gets no write that could fail: without a ping its
   *  session would hold its jobs and its connection for good. Clients answer pings by themselves
   *  (browsers and `ws` do); one that has not answered by the next ping is terminated, and
   *  #onClose releases its jobs. */
  #armHeartbeat(): void {
    let answered = true;
    this.socket.on('pong', () => {
      answered = true;
    });
    const timer = setInterval(() => {
      if (!answered) return this.socket.terminate();
      answered = false;
      this.socket.ping();
    }, this.deps.limits.wsPingMs);
    timer.unref();
    this.socket.once('close', () => clearInterval(timer));
  }

  /** An unauthenticated socket holds a connection and a slot in /health while doing nothing:
   *  it gets wsAuthDeadlineMs to authenticate, then it is closed (1008, policy violation). */
  #armAuthDeadline(): void {
    const timer = setTimeout(() => {
      if (this.#authenticated) return;
      this.#close('Authentication timeout: send {"cmd":"Auth","token":"..."} after connecting', wsPolicyViolationCode, 'Authentication timeout');
    }, this.deps.limits.wsAuthDeadlineMs);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  #subscribe(): void {
    const { log, limits } = this.deps;
    const sink = {
      deliver: (events: BrokerEvent[]): void => {
        this.#corkUntilNextTick();
        // Shared, never-mutated Buffers (render.ts) sent as text frames.
        for (const message of wsMessages(events)) this.socket.send(message, { binary: false });
        this.#lastOffset = events[events.length - 1]?.offset ?? this.#lastOffset;
      },
      backlogBytes: () => this.socket.bufferedAmount,
    };
    const subscription = new Subscription(log, { after: this.filter.after, queue: this.filter.queue, sink, limits });
    this.#subscription = subscription;
    // Until its first event, the client resumes from where its stream started (a cut-off for
    // unread replies can come before any event).
    this.#lastOffset = subscription.startAfter;
    void subscription.run().then((ended) => {
      if (ended.end === 'closed') return;
      if (ended.end === 'slow') this.#cutOffSlow();
      else this.#close(ended.error.message, 1011, 'Stream error');
    });
  }

  /** A client over its backlog limit for longer than stallMs (events or replies) is cut off,
   *  told where to resume. */
  #cutOffSlow(): void {
    const resume = this.#lastOffset === null ? '' : `; reconnect with ?from=${this.#lastOffset}`;
    this.#close(`Slow consumer: backlog limit exceeded${resume}`, wsPolicyViolationCode, 'Slow consumer');
  }

  /** Sends a final `{ok: false, error}` message (no reqId: it answers no command) and closes; a
   *  client that does not take it in closeGraceMs is destroyed. */
  #close(error: string, code: number, reason: string, graceMs = this.deps.limits.closeGraceMs): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(JSON.stringify({ ok: false, error }));
    this.socket.close(code, reason);
    // Read again (a stalled session stopped), so that the client's close frame completes the
    // handshake; commands still arriving are dropped (#onMessage).
    this.#held.length = 0;
    this.socket.resume();
    const timer = setTimeout(() => this.socket.terminate(), graceMs);
    this.socket.once('close', () => clearTimeout(timer));
  }

  /**
   * Replies to a client that sends commands but does not read would pile up without bound (the
   * subscription bounds only events). Once a reply leaves the socket's backlog over the limit,
   * the session stops reading (TCP pushes back on the client) and holds the commands it has
   * already received, running them in order once the backlog drains to half the limit; a client
   * that takes too little for stallMs is cut off, as a slow event consumer is. So a client's
   * backlog is at most the limit plus the replies of the commands already running when it
   * passed the limit (at most wsInflightMax of them).
   */
  #stallCommands(): void {
    if (this.#commandStall !== null) return;
    const { backlogBytesMax, stallMs } = this.deps.limits;
    this.socket.pause();
    let deadline = performance.now() + stallMs;
    const poll = (): void => {
      this.#commandStall = null;
      if (this.socket.readyState !== this.socket.OPEN) return;
      if (this.socket.bufferedAmount > backlogBytesMax / 2) {
        if (performance.now() >= deadline) return this.#cutOffSlow();
        this.#commandStall = setTimeout(poll, drainPollMs);
        return;
      }
      while (this.#held.length > 0 && this.#commandStall === null && this.socket.bufferedAmount <= backlogBytesMax) {
        const { data, isBinary } = this.#held.shift() as { data: RawData; isBinary: boolean };
        this.#run(data, isBinary);
      }
      // A reply that passed the limit again started a new stall, which goes on from here.
      if (this.#commandStall !== null) return;
      if (this.#held.length === 0) return this.socket.resume();
      deadline = performance.now() + stallMs;
      this.#commandStall = setTimeout(poll, drainPollMs);
    };
    this.#commandStall = setTimeout(poll, drainPollMs);
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.#commandStall !== null || this.socket.bufferedAmount > this.deps.limits.backlogBytesMax) {
      this.#held.push({ data, isBinary });
      this.#stallCommands();
      return;
    }
    this.#run(data, isBinary);
  }

  #run(data: RawData, isBinary: boolean): void {
    const text = textOf(data, isBinary);
    if (text === null) {
      this.#send(failure('Invalid JSON: the message is not UTF-8 text'), undefined);
      return;
    }
    // A plain PUSH is read without JSON.parse, its data kept as the text the log stores (plain-json.ts).
    let msg: unknown = parsePlainObject(text);
    if (msg === null) {
      try {
        msg = JSON.parse(text);
      } catch {
        this.#send(failure('Invalid JSON'), undefined);
        return;
      }
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.#send(failure('Invalid command: expected a JSON object'), undefined);
      return;
    }
    const fields = msg as Record<string, unknown>;
    const reqId = fields.reqId;
    // An empty cmd is missing, as an empty queue or id is (commands.ts, needString), not a command
    // named "" ("Unknown command: " names nothing).
    if (typeof fields.cmd !== 'string' || fields.cmd === '') {
      return this.#send(failure(fields.cmd === undefined || fields.cmd === null || fields.cmd === '' ? 'cmd is required' : 'cmd must be a string'), reqId);
    }
    // Case-insensitive in ASCII only: toUpperCase alone maps "ſ" (the long s) to "S", so "PUſH"
    // would run as PUSH. A name with anything else in it matches no command.
    const name = fields.cmd === 'PUSH' ? 'PUSH' : /^[A-Za-z]+$/.test(fields.cmd) ? fields.cmd.toUpperCase() : fields.cmd;
    if (name === 'AUTH') {
      // A malformed Auth is refused as any command is, not counted as a wrong token.
      const unknown = unknownField(name, fields);
      if (unknown !== null) return this.#send(unknown, reqId);
      const reply = this.#auth(fields.token);
      this.#send(reply, reqId);
      if (this.#resumeRefused) return this.#close(reply.error as string, wsPolicyViolationCode, 'Invalid resume offset');
      if (!reply.ok && ++this.#authFailures >= wsAuthFailuresMax) this.#close('Too many failed Auth attempts', wsPolicyViolationCode, 'Authentication failed');
      return;
    }
    if (!this.#authenticated) return this.#send(failure('Unauthorized'), reqId);
    if (!isBrokerCommand(name)) return this.#send(failure(`Unknown command: ${fields.cmd}`), reqId);
    if (this.#inflight >= this.deps.limits.wsInflightMax) return this.#send(failure('Too many in-flight commands'), reqId);

    if (name === 'PUSH') return this.#push(fields, reqId);
    parsedData(fields);
    this.#inflight += 1;
    const cmd = fields.cmd;
    runCommand(this.deps.broker, name, fields, this.#ctx, this.#abort.signal).then(
      (result) => {
        this.#inflight -= 1;
        this.#send(toReply(result), reqId);
      },
      (error: unknown) => this.#internalError(error, cmd, 1, [reqId]),
    );
  }

  /** Starts a push and answers it with the other pushes of its group commit, in order, once their
   *  records are durable: one continuation per group instead of two promises per push. */
  #push(fields: Record<string, unknown>, reqId: unknown): void {
    let started: ReturnType<typeof startPush>;
    try {
      started = startPush(this.deps.broker, fields, this.#ctx);
    } catch (error) {
      // A bug, not a bad command: answer it as runCommand's rejections are, never crash.
      return this.#internalError(error, 'PUSH', 0, [reqId]);
    }
    if ('ok' in started) return this.#send(started, reqId);
    let group = this.#pushes;
    if (group === null || group.durable !== started.durable) {
      const fresh: PushGroup = { durable: started.durable, ids: [], reqIds: [] };
      group = this.#pushes = fresh;
      started.durable.then(
        (failed) => this.#answerPushes(fresh, failed),
        (error: unknown) => {
          if (this.#pushes === fresh) this.#pushes = null;
          this.#internalError(error, 'PUSH', fresh.ids.length, fresh.reqIds);
        },
      );
    }
    group.ids.push(started.id);
    group.reqIds.push(reqId);
    this.#inflight += 1;
  }

  #answerPushes(group: PushGroup, failed: Failure | null): void {
    if (this.#pushes === group) this.#pushes = null;
    this.#inflight -= group.ids.length;
    if (this.socket.readyState !== this.socket.OPEN) return;
    // A failed sync answers every push of the group with the same error.
    const open = failed === null ? null : JSON.stringify(failure(failed.error)).slice(0, -1);
    this.#corkUntilNextTick();
    // Framed here and written at once (frames.ts); a reply that cannot be goes through `ws`, in order.
    const raw = this.request.raw.socket;
    const { ids, reqIds } = group;
    const plain = open === null ? pushReplyFrames(ids, reqIds) : null;
    if (plain !== null) {
      raw.write(plain);
      if (this.socket.bufferedAmount > this.deps.limits.backlogBytesMax) this.#stallCommands();
      return;
    }
    let frames = '';
    for (let i = 0; i < ids.length; i++) {
      // The success reply is JSON.stringify({ ok: true, id }) without its closing brace, built
      // directly: the hot path's one reply per push.
      const reply = withReqId(open ?? `{"ok":true,"id":${JSON.stringify(ids[i])}`, reqIds[i]);
      const frame = asciiTextFrame(reply);
      if (frame !== null) {
        frames += frame;
        continue;
      }
      if (frames !== '') raw.write(frames, 'latin1');
      frames = '';
      this.socket.send(reply);
    }
    if (frames !== '') raw.write(frames, 'latin1');
    if (this.socket.bufferedAmount > this.deps.limits.backlogBytesMax) this.#stallCommands();
  }

  #internalError(error: unknown, cmd: unknown, commands: number, reqIds: unknown[]): void {
    this.request.log.error({ err: error, cmd }, 'websocket command failed');
    this.#inflight -= commands;
    for (const reqId of reqIds) this.#send(failure('Internal server error'), reqId);
  }

  #auth(token: unknown): Reply {
    const { config } = this.deps;
    const valid =
      config.authTokens.length === 0 ||
      (typeof token === 'string' && token.length > 0 && tokenMatches(token, config));
    if (!valid) return failure('Invalid token');
    if (!this.#authenticated) {
      // Upgraded without a token: its `?from` is checked against the log's end now (registerWs).
      const resume = parseResumeOffset(undefined, this.request.query, this.deps.log.durableOffset);
      if (!resume.ok) {
        this.#resumeRefused = true;
        return failure(resume.error);
      }
    }
    if (config.authTokens.length > 0) this.#ctx.actor = actorOf(token as string, this.#ctx.actor?.address ?? 'unknown');
    if (!this.#authenticated) {
      this.#authenticated = true;
      this.#subscribe();
    }
    return { ok: true };
  }

  #send(reply: Reply, reqId: unknown): void {
    this.#sendOpen(replyJson(reply).slice(0, -1), reqId);
  }

  /** Sends a reply given as `open`, a JSON object's text without its closing brace (withReqId). */
  #sendOpen(open: string, reqId: unknown): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.#corkUntilNextTick();
    this.socket.send(withReqId(open, reqId));
    if (this.socket.bufferedAmount > this.deps.limits.backlogBytesMax) this.#stallCommands();
  }

  /** Replies resolved by one group commit and the events of one batch are sent in the same tick:
   *  corking the TCP socket until then turns hundreds of small writes into one writev. */
  #corkUntilNextTick(): void {
    if (this.#corked) return;
    const raw = this.request.raw.socket;
    raw.cork();
    this.#corked = true;
    process.nextTick(() => {
      this.#corked = false;
      raw.uncork();
    });
  }

  #onClose(): void {
    connections.ws -= 1;
    this.sessions.delete(this.#goAway);
    if (this.#commandStall !== null) clearTimeout(this.#commandStall);
    this.#held.length = 0;
    this.#abort.abort();
    this.#subscription?.close();
    void this.#release('connection closed');
  }

  /** The server is closing: say so, close with 1001 and release the client's jobs now, while the
   *  broker still takes records (main.ts closes it right after the server). Aborting first
   *  answers the session's long polls, so no job reaches it after the release; a closing socket
   *  runs no more commands (#onMessage). #onClose's release later finds nothing held. */
  readonly #goAway = (): Promise<void> => {
    // A peer that never answers the close frame is dropped after wsShutdownCloseGraceMs, not the
    // cut-off's grace: the server's close waits for every socket, within the shutdown's limit.
    this.#close('Server shutting down', wsGoingAwayCode, 'Server shutting down', wsShutdownCloseGraceMs);
    this.#abort.abort();
    return this.#release('server shutting down');
  };

  #release(reason: string): Promise<void> {
    return this.deps.broker.releaseOwner(this.#ctx.owner as string, reason).catch((error: unknown) => {
      this.request.log.error({ err: error, owner: this.#ctx.owner }, 'releasing a closed websocket\'s jobs failed');
    });
  }
}

/** A reply's JSON text from `open`, the reply object's text without its closing brace: reqId
 *  (parsed from the command's JSON, so it stringifies) goes in before that brace, which is
 *  cheaper than copying the reply into a new object to stringify. */
function withReqId(open: string, reqId: unknown): string {
  return reqId === undefined ? `${open}}` : `${open},"reqId":${JSON.stringify(reqId)}}`;
}

/** A frame's text; the default binaryType hands over one Buffer, the others are handled too.
 *  `ws` has checked a text frame's UTF-8 (closing with 1007 when it is not); a binary frame's
 *  bytes are unchecked, and decoding them as they are would turn each bad sequence into U+FFFD, so
 *  a command would run on data it was not sent: null for those. */
function textOf(data: RawData, isBinary: boolean): string | null {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
  if (isBinary && !isUtf8(bytes)) return null;
  return bytes.toString('utf8');
}

/** The actor stored in the records a socket appends: named as buildServer names token holders. */
function actorOf(token: string | null, address: string): Actor {
  return { name: token === null ? 'anonymous' : tokenActorName(token), address };
}
