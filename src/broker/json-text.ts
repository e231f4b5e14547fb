// JSON text that is already in the form the log stores: a job's data is kept as
// JSON.stringify(value), and a command whose `data` arrives in exactly that form can pass the
// text through instead of paying JSON.parse for a tree of objects that JSON.stringify turns back
// into the same characters (about a sixth of a WebSocket PUSH's CPU).
//
// `canonicalEnd` says where a value ends if its text is what JSON.stringify would write for it,
// and -1 otherwise (or when it is not JSON at all), so that the caller falls back to JSON.parse.
// "What JSON.stringify would write" means, with no exception:
//   - no whitespace between tokens;
//   - strings: any character from U+0020 up except `"` and `\`, surrogates only in pairs, and
//     the escapes \" \\ \b \f \n \r \t; no other escape (\/ and \uXXXX are refused; stringify
//     writes \u only for the other control characters and lone surrogates, left to JSON.parse);
//   - numbers: the text String(Number(text)) gives back (no 1.0, 1e2, -0, or digits past what a
//     double keeps); plain integers of up to 15 digits are that by construction;
//   - objects: no key that starts with a digit (JSON.stringify writes array-index keys first, in
//     numeric order, whatever order they came in), no key twice (the last would win), at most
//     `keysMax` keys (the duplicate check compares pairs);
//   - at most `depthMax` levels of nesting.
// Anything refused here is still accepted by the caller's JSON.parse path when it is JSON: this
// only picks out the texts that need no work.

const depthMax = 64;
const keysMax = 32;

const quote = 0x22;
const backslash = 0x5c;
const comma = 0x2c;
const colon = 0x3a;
const minus = 0x2d;
const zero = 0x30;
const nine = 0x39;

/** A JSON value as text in JSON.stringify's own form: a job's data as the log stores it (checked
 *  by canonicalEnd), or a whole job as the API serves it (view.ts, jobJson). `replyJson` writes
 *  it as it is; JSON.stringify, through toJSON, writes the same text the slow way. */
export class JsonText {
  constructor(readonly text: string) {}

  toJSON(): unknown {
    return JSON.parse(this.text) as unknown;
  }
}

/** `JSON.stringify(reply)` for an API reply, a JsonText among the reply's own values written as
 *  its text instead of parsed and serialised again (a pulled job: view.ts, jobJson). */
export function replyJson(reply: object): string {
  let spliced = false;
  for (const key in reply) {
    if ((reply as Record<string, unknown>)[key] instanceof JsonText) {
      spliced = true;
      break;
    }
  }
  if (!spliced) return JSON.stringify(reply);
  let out = '';
  for (const key in reply) {
    if (!Object.hasOwn(reply, key)) continue;
    const value = (reply as Record<string, unknown>)[key];
    const text = value instanceof JsonText ? value.text : JSON.stringify(value);
    if (text === undefined) continue; // left out, as JSON.stringify leaves out undefined and functions
    out += (out === '' ? '{' : ',') + keyJson(key) + text;
  }
  return out === '' ? '{}' : `${out}}`;
}

const keyTexts = new Map<string, string>();

/** `"key":` for a key of a reply: a few dozen names, each made once. */
function keyJson(key: string): string {
  let text = keyTexts.get(key);
  if (text === undefined) {
    text = `${JSON.stringify(key)}:`;
    if (keyTexts.size < 256) keyTexts.set(key, text);
  }
  return text;
}

/** A backslash, a control character or a surrogate: a text without any from `at` on has strings
 *  there that end at their next quote, found by indexOf instead of a look at each character. */
const specialCharacter = /[\\\x00-\x1f\ud800-\udfff]/g;

/** Whether `text` has no backslash, control character or surrogate from index `at` on. */
function isPlainFrom(text: string, at: number): boolean {
  specialCharacter.lastIndex = at;
  return !specialCharacter.test(text);
}

/** The index after the canonical JSON value that starts at `at`, or -1 (see the module comment). */
export function canonicalEnd(text: string, at: number): number {
  return value(text, at, 0, 0, isPlainFrom(text, at));
}

/** The start and end of each key of the objects being scanned, outermost first: an object's keys
 *  from index `top` on, an object inside it from past them. One scan runs at a time (no await). */
const keySpans = new Int32Array(2 * keysMax * depthMax);

function value(text: string, at: number, depth: number, top: number, plain: boolean): number {
  const c = text.charCodeAt(at);
  if (c === quote) return stringEnd(text, at, plain);
  if (c === 0x7b) return depth < depthMax ? objectEnd(text, at, depth + 1, top, plain) : -1; // {
  if (c === 0x5b) return depth < depthMax ? arrayEnd(text, at, depth + 1, top, plain) : -1; // [
  if (c === minus || (c >= zero && c <= nine)) return numberEnd(text, at, true);
  return literalEnd(text, at);
}

/** The index after the true, false or null at `at`, or -1. */
export function literalEnd(text: string, at: number): number {
  const c = text.charCodeAt(at);
  if (c === 0x74) return text.startsWith('true', at) ? at + 4 : -1;
  if (c === 0x66) return text.startsWith('false', at) ? at + 5 : -1;
  if (c === 0x6e) return text.startsWith('null', at) ? at + 4 : -1;
  return -1;
}

/** The index after the canonical string that starts (at its quote) at `at`, or -1. */
function stringEnd(text: string, at: number, plain: boolean): number {
  if (plain) {
    const end = text.indexOf('"', at + 1);
    return end < 0 ? -1 : end + 1;
  }
  const length = text.length;
  for (let i = at + 1; i < length; ) {
    const c = text.charCodeAt(i);
    if (c === quote) return i + 1;
    if (c === backslash) {
      const e = text.charCodeAt(i + 1);
      // \" \\ \b \f \n \r \t
      if (e === quote || e === backslash || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
        continue;
      }
      return -1;
    }
    if (c < 0x20) return -1; // a control character
    if (c >= 0xd800 && c <= 0xdfff) {
      const low = text.charCodeAt(i + 1);
      if (c > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) return -1;
      i += 2;
      continue;
    }
    i += 1;
  }
  return -1; // the text ended inside the string
}

/** The index after the JSON number at `at`, or -1. With `canonical`, -1 also for a number whose
 *  text is not what String(Number(text)) gives. */
export function numberEnd(text: string, at: number, canonical: boolean): number {
  let i = at;
  if (text.charCodeAt(i) === minus) i += 1;
  const first = text.charCodeAt(i);
  if (first === zero) i += 1;
  else if (first > zero && first <= nine) i = digitsEnd(text, i);
  else return -1;
  let plain = true;
  if (text.charCodeAt(i) === 0x2e) {
    // .digits
    const end = digitsEnd(text, i + 1);
    if (end === i + 1) return -1;
    i = end;
    plain = false;
  }
  const e = text.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    // e or E, a sign, digits
    i += 1;
    const sign = text.charCodeAt(i);
    if (sign === 0x2b || sign === minus) i += 1;
    const end = digitsEnd(text, i);
    if (end === i) return -1;
    i = end;
    plain = false;
  }
  if (!canonical) return i;
  // A plain integer of up to 15 digits is exact in a double and prints as it came, but for -0.
  if (plain && i - at <= 15 && !(text.charCodeAt(at) === minus && text.charCodeAt(at + 1) === zero)) return i;
  const token = text.slice(at, i);
  return String(Number(token)) === token ? i : -1;
}

function digitsEnd(text: string, at: number): number {
  let i = at;
  for (let c = text.charCodeAt(i); c >= zero && c <= nine; c = text.charCodeAt(++i));
  return i;
}

function objectEnd(text: string, at: number, depth: number, top: number, plain: boolean): number {
  let i = at + 1;
  if (text.charCodeAt(i) === 0x7d) return i + 1; // {}
  let next = top; // where this object's next key span goes
  for (;;) {
    if (text.charCodeAt(i) !== quote) return -1;
    const first = text.charCodeAt(i + 1);
    if (first >= zero && first <= nine) return -1;
    const keyEnd = stringEnd(text, i, plain);
    if (keyEnd < 0 || next - top >= 2 * keysMax || seenKey(text, top, next, i, keyEnd)) return -1;
    keySpans[next] = i;
    keySpans[next + 1] = keyEnd;
    next += 2;
    if (text.charCodeAt(keyEnd) !== colon) return -1;
    i = value(text, keyEnd + 1, depth, next, plain);
    if (i < 0) return -1;
    const c = text.charCodeAt(i);
    if (c === 0x7d) return i + 1; // }
    if (c !== comma) return -1;
    i += 1;
  }
}

/** Whether the key text [start, end) equals one of the object's keys so far (keySpans[top, next)).
 *  Canonical strings are equal exactly when their texts are: each string has one canonical text. */
function seenKey(text: string, top: number, next: number, start: number, end: number): boolean {
  const length = end - start;
  for (let k = top; k < next; k += 2) {
    const other = keySpans[k]!;
    if (keySpans[k + 1]! - other !== length) continue;
    let j = 1; // both start with a quote
    while (j < length && text.charCodeAt(start + j) === text.charCodeAt(other + j)) j += 1;
    if (j === length) return true;
  }
  return false;
}

function arrayEnd(text: string, at: number, depth: number, top: number, plain: boolean): number {
  let i = at + 1;
  if (text.charCodeAt(i) === 0x5d) return i + 1; // []
  for (;;) {
    i = value(text, i, depth, top, plain);
    if (i < 0) return -1;
    const c = text.charCodeAt(i);
    if (c === 0x5d) return i + 1; // ]
    if (c !== comma) return -1;
    i += 1;
  }
}
