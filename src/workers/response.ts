// What an endpoint's answer means for the job: a pure function from the HTTP outcome to an ack
// (with its result) or a failure (with its reason). No I/O, no clock.
//
// - 2xx: the result is the parsed body when the response says JSON (`application/json` or any
//   `+json` type), else the body text. An empty body is a null result. JSON that does not parse
//   fails the attempt: the endpoint promised JSON and sent something else.
// - any other status: `HTTP <status> from <METHOD> <url>: <first errorBodyChars chars of the body>`.
// - a 2xx whose body was cut at the client's limit fails the attempt: there is no result to keep.
// - so does a 2xx with a Content-Encoding (a registered Accept-Encoding asked for it): the body is
//   read as it comes, and its compressed bytes are no result either.
// - no answer: the transport's reason (or `timeout after <ms> ms`) plus where it was going.

import { truncateText } from '../record/text.js';
import type { CallOutcome } from './http-client.js';

export type Verdict =
  | { kind: 'ack'; result: unknown }
  | { kind: 'fail'; reason: string; answered: boolean };

export function judge(outcome: CallOutcome, method: string, url: string, errorBodyChars: number): Verdict {
  const target = `${method} ${url}`;
  if (outcome.kind === 'unreachable') return { kind: 'fail', reason: `${outcome.reason} (${target})`, answered: false };
  if (outcome.kind === 'timedOut') return { kind: 'fail', reason: `timeout after ${outcome.afterMs} ms (${target})`, answered: false };
  const { status, body } = outcome;
  if (status < 200 || status > 299) {
    const excerpt = truncateText(body, errorBodyChars);
    return { kind: 'fail', reason: `HTTP ${status} from ${target}${excerpt === '' ? '' : `: ${excerpt}`}`, answered: true };
  }
  if (outcome.cutAtBytes !== null) {
    return { kind: 'fail', reason: `response body over ${outcome.cutAtBytes} bytes in HTTP ${status} from ${target}`, answered: true };
  }
  const encoding = outcome.contentEncoding.trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    const reason = `body with content-encoding ${encoding} in HTTP ${status} from ${target} (the broker reads bodies uncompressed: register no Accept-Encoding)`;
    return { kind: 'fail', reason, answered: true };
  }
  if (body === '') return { kind: 'ack', result: null };
  if (!isJsonType(outcome.contentType)) return { kind: 'ack', result: body };
  try {
    return { kind: 'ack', result: JSON.parse(body) as unknown };
  } catch {
    const excerpt = truncateText(body, errorBodyChars);
    return { kind: 'fail', reason: `invalid JSON in HTTP ${status} from ${target}: ${excerpt}`, answered: true };
  }
}

function isJsonType(contentType: string): boolean {
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}
