// The wire form of a record's events, built once and shared by every subscriber.
//
// Live subscribers are handed the same events array for a record (subscription.ts,
// eventsOfShared), so its SSE message and its WebSocket frames' payloads are rendered once per
// array and every socket queues the same Buffers. A thousand subscribers that stop reading then
// hold references to one copy of each event, not a thousand copies (a 500 KB job's `pushed` event
// to 1,000 stalled SSE clients took the server from 0.3 to 4.5 GB and out of heap). Subscribers
// catching up from disk get arrays of their own; they are rendered for them alone, paced by the
// log. The Buffers are never written to after they are built.

import type { BrokerEvent } from '../../broker/events.js';

const sseByEvents = new WeakMap<readonly BrokerEvent[], Buffer>();
const wsByEvents = new WeakMap<readonly BrokerEvent[], Buffer[]>();

/** One SSE message per event, all under the record's offset as `id` (the offset travels only
 *  there, so `data` is exactly seed 004's shape). */
export function sseMessages(events: readonly BrokerEvent[]): Buffer {
  let rendered = sseByEvents.get(events);
  if (rendered === undefined) {
    let text = '';
    for (const { offset, ...event } of events) text += `id: ${offset}\ndata: ${JSON.stringify(event)}\n\n`;
    rendered = Buffer.from(text, 'utf8');
    sseByEvents.set(events, rendered);
  }
  return rendered;
}

/** One WebSocket text message per event, `offset` included. */
export function wsMessages(events: readonly BrokerEvent[]): Buffer[] {
  let rendered = wsByEvents.get(events);
  if (rendered === undefined) {
    rendered = events.map((event) => Buffer.from(JSON.stringify(event), 'utf8'));
    wsByEvents.set(events, rendered);
  }
  return rendered;
}
