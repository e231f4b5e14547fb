// A JSON object read without JSON.parse when it is the common flat kind: its values are strings
// without escapes, numbers, true, false or null, and a `data` in the form the log stores it
// (broker/json-text.ts), which is kept as its text. That is every plain push (a WebSocket PUSH,
// an HTTP push body), whose data would otherwise be parsed into objects only to be turned back
// into the same text for the log.
//
// parsePlainObject returns what JSON.parse would (the same keys in the same order, the last of a
// repeated key winning), with `data` as a JsonText, or null for anything else: nested values
// besides `data`, escapes in a key or a string, a `__proto__` key, any text that is not JSON.
// The caller then parses as it always did, which answers those as before. Whitespace between
// tokens is allowed as JSON allows it.

import { JsonText, canonicalEnd, literalEnd, numberEnd } from '../broker/json-text.js';

const quote = 0x22;

export function parsePlainObject(text: string): Record<string, unknown> | null {
  let i = spaceEnd(text, 0);
  if (text.charCodeAt(i) !== 0x7b) return null; // {
  const fields: Record<string, unknown> = {};
  i = spaceEnd(text, i + 1);
  if (text.charCodeAt(i) === 0x7d) return spaceEnd(text, i + 1) === text.length ? fields : null; // {}
  for (;;) {
    if (text.charCodeAt(i) !== quote) return null;
    const keyEnd = plainStringEnd(text, i);
    if (keyEnd < 0) return null;
    const key = knownKey(text, i, keyEnd) ?? text.slice(i + 1, keyEnd - 1);
    if (key === '__proto__') return null; // an own property for JSON.parse, the prototype for `=`
    i = spaceEnd(text, keyEnd);
    if (text.charCodeAt(i) !== 0x3a) return null; // :
    i = spaceEnd(text, i + 1);
    // The envelope is scanned a character at a time (it is short); the data, often most of the
    // text, by canonicalEnd, which finds its strings' ends with indexOf when it can.
    const end = key === 'data' ? canonicalEnd(text, i) : scalarEnd(text, i);
    if (end < 0) return null;
    store(fields, key, key === 'data' ? new JsonText(text.slice(i, end)) : scalar(text, i, end));
    i = spaceEnd(text, end);
    const c = text.charCodeAt(i);
    if (c === 0x7d) return spaceEnd(text, i + 1) === text.length ? fields : null; // }
    if (c !== 0x2c) return null; // ,
    i = spaceEnd(text, i + 1);
  }
}

/** `fields.data` as JSON.parse gives it, for the commands that read it as a value (all but PUSH). */
export function parsedData(fields: Record<string, unknown>): void {
  const data = fields['data'];
  if (data instanceof JsonText) fields['data'] = JSON.parse(data.text);
}

/** fields[key] = value, with a store of its own for each envelope key: in the usual order each
 *  is a store V8 has seen on the same object shape before, where a store by a varying key is not. */
function store(fields: Record<string, unknown>, key: string, value: unknown): void {
  switch (key) {
    case 'cmd':
      fields.cmd = value;
      return;
    case 'queue':
      fields.queue = value;
      return;
    case 'data':
      fields.data = value;
      return;
    case 'reqId':
      fields.reqId = value;
      return;
    default:
      fields[key] = value;
  }
}

/** The keys of a plain push (the WebSocket envelope and `data`), as constants: a key sliced from the text would be a new string to
 *  look up in V8's string table before it could name a property. */
const envelopeKeys = ['cmd', 'queue', 'data', 'reqId'];

/** The envelope key whose text (quotes included) is [start, end), or undefined. */
function knownKey(text: string, start: number, end: number): string | undefined {
  for (const key of envelopeKeys) if (key.length === end - start - 2 && text.startsWith(key, start + 1)) return key;
  return undefined;
}

function spaceEnd(text: string, at: number): number {
  let i = at;
  for (let c = text.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(++i));
  return i;
}

/** The end of a string with no escape and no control character, or -1. */
function plainStringEnd(text: string, at: number): number {
  for (let i = at + 1; ; i++) {
    const c = text.charCodeAt(i);
    if (c === quote) return i + 1;
    if (c === 0x5c || c < 0x20 || Number.isNaN(c)) return -1;
  }
}

/** The end of a plain string, a number, true, false or null at `at`, or -1. */
function scalarEnd(text: string, at: number): number {
  const c = text.charCodeAt(at);
  if (c === quote) return plainStringEnd(text, at);
  const literal = literalEnd(text, at);
  return literal >= 0 ? literal : numberEnd(text, at, false);
}

function scalar(text: string, at: number, end: number): unknown {
  switch (text.charCodeAt(at)) {
    case quote:
      return text.slice(at + 1, end - 1);
    case 0x74:
      return true;
    case 0x66:
      return false;
    case 0x6e:
      return null;
    default:
      return Number(text.slice(at, end));
  }
}
