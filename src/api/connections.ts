// Live real-time connection counts shown by GET /health (`connections.ws`, `connections.sse`).
// The real-time layer (src/api/realtime) increments on open and decrements on close; the HTTP
// layer only reads. `tcp` is always 0: tapeq has no raw TCP protocol.

export const connections = { ws: 0, sse: 0 };
