// Upgrade requests that get an HTTP answer. @fastify/websocket routes every upgrade request (any
// path) through fastify; one that is not upgraded (an unknown path, an HTTP route, a 429 from the
// rate limit, a 401) is answered on a socket Node has handed over and no longer manages: nothing
// reads it or ends it. Left so, it stayed open after the client hung up (CLOSE_WAIT, one
// descriptor lost per answer) and held fastify's close, and so the shutdown, for ever.
// @fastify/websocket closes such a socket only for its own routes' answers, and only when its
// own onRequest hook ran before the answer, which a 429 or 401 from an earlier hook prevents.
// So every upgrade answered over HTTP has its connection closed once the answer is written.
// An upgrade that is upgraded is hijacked and never reaches onResponse.

import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

/** Node's parser sets `upgrade` on a request it hands to the 'upgrade' event (the field is not in
 *  @types/node). */
type ParsedRequest = IncomingMessage & { upgrade?: boolean };

export function closeUpgradesAnsweredOverHttp(app: FastifyInstance): void {
  app.addHook('onResponse', (request, _reply, done) => {
    if ((request.raw as ParsedRequest).upgrade === true) request.raw.socket.destroySoon();
    done();
  });
}
