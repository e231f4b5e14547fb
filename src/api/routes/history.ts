// The audit trail of one job (SPEC section 4, "history"):
//   GET /jobs/:id/history                 → {ok, history: [{offset, timestamp, time, type, actor?, ...fields}]}
//   GET /jobs/:id/history?format=ndjson   → the same entries, one JSON object per line, streamed
// Entries are recordToJson views of every record that mentions the job, oldest first. They come
// from the log (through the per-job index), not from the state, so they outlive the job: removed
// or completed-and-removed jobs keep their history while retention keeps the segments. The JSON
// form says `complete: true` when the history starts at the job's push, false when retention has
// removed its beginning (a live job whose every record is gone answers an empty, incomplete
// history). The NDJSON form, which has no envelope, says the same in the `tapeq-history-complete`
// header (both forms send it). 404 "Job not found" only when no retained record mentions the id
// and no such job exists. The JSON form is built in memory, so it is refused (400, nothing read
// beyond the bound) past historyJsonLengthMax characters; the NDJSON form streams any length.
// Registered on the main app, so auth, rate limiting and CORS apply as for every route.

import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { historyJsonLengthMax } from '../../constants.js';
import { recordToJson } from '../../record/codec.js';
import type { LogRecord } from '../../record/types.js';
import { sendApiError } from '../errors.js';
import { errors, idParams, idRefused, queryRefused } from '../schemas.js';

/** Where history comes from (src/history/history.ts's JobHistory). */
export interface HistorySource {
  records(jobId: string): AsyncGenerator<LogRecord>;
}

/** Whether the history starts at the job's push (retention has not removed its beginning). */
export const completeHeader = 'tapeq-history-complete';

const historyQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { format: { type: 'string', enum: ['json', 'ndjson'], default: 'json' } },
} as const;

async function* ndjsonLines(first: LogRecord, rest: AsyncGenerator<LogRecord>): AsyncGenerator<string> {
  yield `${JSON.stringify(recordToJson(first))}\n`;
  for await (const record of rest) yield `${JSON.stringify(recordToJson(record))}\n`;
}

export function historyRoutes(app: FastifyInstance, history: HistorySource, jobExists: (id: string) => boolean): void {
  app.get<{ Params: { id: string }; Querystring: { format: 'json' | 'ndjson' } }>(
    '/jobs/:id/history',
    {
      schema: {
        operationId: 'getJobHistory',
        summary: 'Every log record that touched the job, oldest first (JSON, or NDJSON with ?format=ndjson)',
        tags: ['jobs'],
        params: idParams,
        querystring: historyQuery,
        response: {
          200: { description: '{ok, history} or NDJSON lines' },
          ...errors(
            {
              400: `${queryRefused}, or the history is over ${historyJsonLengthMax} characters as JSON (ask for ?format=ndjson)`,
              404: 'no job with this id exists and no retained record mentions it ("Job not found")',
            },
            idRefused,
          ),
        },
      },
    },
    async (request, reply) => {
      const records = history.records(request.params.id);
      const first = await records.next();
      if (first.done === true && !jobExists(request.params.id)) return sendApiError(reply, 'jobNotFound');
      const complete = first.done !== true && first.value.body.type === 'pushed';
      reply.header(completeHeader, String(complete)).header('access-control-expose-headers', completeHeader);
      if (request.query.format === 'ndjson') {
        reply.type('application/x-ndjson');
        if (first.done === true) return reply.send(Readable.from([]));
        return reply.send(Readable.from(ndjsonLines(first.value, records), { objectMode: false }));
      }
      if (first.done === true) return { ok: true, history: [], complete };
      // Serialized entry by entry, so the bound is checked before the answer is held twice.
      const entries = [JSON.stringify(recordToJson(first.value))];
      let length = (entries[0] as string).length;
      for await (const record of records) {
        const entry = JSON.stringify(recordToJson(record));
        length += entry.length + 1;
        if (length > historyJsonLengthMax) {
          await records.return(undefined);
          return sendApiError(reply, 'historyTooLong');
        }
        entries.push(entry);
      }
      reply.type('application/json');
      return reply.send(`{"ok":true,"history":[${entries.join(',')}],"complete":${String(complete)}}`);
    },
  );
}
