// Telling a request handler that its client went away: the request's connection closed.
//
// Watched on the socket, not on the response. A request pipelined behind another one on the same
// HTTP/1.1 connection has a response that is not on the socket yet (it waits for the one before
// it), and when the connection closes Node emits no 'close' on such a response: a long poll or an
// event stream held for it ran on for nobody (a long poll then took the next job for a client
// that was gone; an event stream stayed subscribed and counted in /health for good).
//
// One 'close' listener per socket, however many requests wait on it (a client may pipeline many),
// so the socket never trips the listener-leak warning.

import type { Socket } from 'node:net';

const waiting = new WeakMap<Socket, Set<() => void>>();

/** Calls `gone` once `socket` closes (at once when it already has); the returned function stops
 *  watching. Each call needs its own `gone` (a fresh closure): watches are kept by function. */
export function onConnectionClose(socket: Socket, gone: () => void): () => void {
  if (socket.destroyed) {
    gone();
    return () => {};
  }
  let listeners = waiting.get(socket);
  if (listeners === undefined) {
    const created = new Set<() => void>();
    waiting.set(socket, created);
    socket.once('close', () => {
      waiting.delete(socket);
      for (const listener of created) listener();
    });
    listeners = created;
  }
  const own = listeners;
  own.add(gone);
  return () => {
    own.delete(gone);
  };
}
