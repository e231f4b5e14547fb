// Every limit and default of tapeq, in one place (TigerBeetle's constants.zig is the model).
// Units are in the names. `checkConstants()` runs at startup and in a test: it asserts how the
// limits relate, so a change that breaks a relation fails loudly instead of misbehaving later.
//
// This module imports nothing and is safe for the pure fold to import.

const KiB = 1024;
const MiB = 1024 * KiB;

// ── Log ────────────────────────────────────────────────────────────────────────────────────
/** Default size at which the active segment is sealed and a new one started (SEGMENT_BYTES). */
export const segmentBytesDefault = 64 * MiB;
/** Smallest SEGMENT_BYTES accepted (tests use small segments to force rolls). */
export const segmentBytesMin = 4 * KiB;
/** Largest encoded record payload. Checked before any allocation when reading a frame. */
export const recordBytesMax = 4 * MiB;
/** Bytes of log between two sparse index entries. */
export const indexIntervalBytes = 4 * KiB;
/** The recently appended records the log keeps decoded in memory for tail readers: at most this
 *  many, and at most tailRingBytes of them as encoded (a record's heap is ~2.5× its encoded bytes
 *  when small, ~1× when its data dominates). Older records are read from the segments. */
export const tailRingRecords = 16_384;
export const tailRingBytes = 16 * MiB;
/** Default group-commit policy and interval (LOG_SYNC, LOG_SYNC_INTERVAL_MS). */
export const logSyncDefault = 'always' as const;
export const logSyncIntervalMsDefault = 5;
/** Torn-tail copies kept for one byte position of a segment (each later tear there gets its own). */
export const tornCopiesPerPositionMax = 1_000;
/** Upper bound of bytes written by one group commit; a larger batch is split. */
export const groupCommitBytesMax = 8 * MiB;
/** A group-commit write up to this size is a synchronous write() on the main thread; a larger one
 *  goes through the thread pool (see src/log/group-commit.ts). */
export const groupCommitSyncWriteBytesMax = 256 * 1024;
/** The active segment is zero-filled this far ahead of its writes (src/log/group-commit.ts). */
export const segmentPreallocBytes = 1 * MiB;
/** How long a roll retries opening the next segment while descriptors or kernel memory are short
 *  (EMFILE, ENFILE, EAGAIN) before the log fails; its pauses double from first to max. */
export const segmentOpenRetryMsMax = 5_000;
export const segmentOpenRetryPauseMsFirst = 10;
export const segmentOpenRetryPauseMsMax = 1_000;

// ── Requests and jobs ──────────────────────────────────────────────────────────────────────
/** MAX_BODY_BYTES default: largest HTTP request body. */
export const bodyBytesMaxDefault = 1 * MiB;
/** Largest `data` payload of one job, as JSON text. */
export const jobDataBytesMax = 512 * KiB;
export const queueNameLengthMax = 128;
/** Queue names: 1 to queueNameLengthMax letters, digits and . _ - : only; never used as a file
 *  path. The length is in the pattern so that one rule, said in one text, covers both. */
export const queueNamePattern = new RegExp(`^[A-Za-z0-9._:-]{1,${queueNameLengthMax}}$`);
/** Neither a queue name nor a job id: a URL client (fetch, a browser, curl) removes these path
 *  segments as dot segments (RFC 3986 section 5.2.4), so no API URL could name the queue or job. */
export const dotSegments: readonly string[] = ['.', '..'];
export const jobIdLengthMax = 128;
export const jobNameLengthMax = 256;
export const tagsCountMax = 32;
export const tagLengthMax = 128;
export const dependsOnCountMax = 100;
export const bulkJobsMax = 1_000;
export const errorTextLengthMax = 4 * KiB;
export const logMessageLengthMax = 4 * KiB;
export const progressMessageLengthMax = 4 * KiB;
/** Logs kept per job in the projection (the log keeps every one): at most this many lines, and
 *  at most jobLogsLengthMax characters of them in all, oldest dropped first. By count alone a job
 *  held 1,000 lines of 4,096 characters: 4 MB of heap, 8 MB when they are not Latin-1. */
export const jobLogsMax = 1_000;
export const jobLogsLengthMax = 256 * KiB;
export const listLengthMax = 100;

/** Name of a job pushed without one. */
export const jobNameDefault = 'default';
export const maxAttemptsDefault = 3;
export const backoffMsDefault = 1_000;
/** Lock held by a pull before the job counts as stalled. */
export const lockMsDefault = 30_000;
export const lockMsMax = 24 * 60 * 60 * 1_000;
/** Stalls allowed before a job fails (BullMQ's maxStalledCount). */
export const maxStalledDefault = 1;
/** Longest long-poll `timeout` accepted on pull. */
export const pullTimeoutMsMax = 60_000;
/** Most long-poll waiters held at once across all queues. */
export const pullWaitersMax = 10_000;
/** Largest delay, backoff, ttl or timeout accepted (about 10 years). */
export const durationMsMax = 10 * 365 * 24 * 60 * 60 * 1_000;
/** Entries the broker's due heap may hold beyond twice its live ones and one per job before it is
 *  rebuilt from the state, dropping those of jobs gone or moved on (broker/timers.ts). */
export const dueHeapSlackEntries = 4_096;
/** Ids per JobsRemoved / JobsPromoted record; larger sets are split into several records. */
export const idsPerRecordMax = 1_000;
/** Jobs a queue-wide action (drain, clean, obliterate, promote-jobs, DLQ retry and purge) decides,
 *  appends and applies in one event-loop turn; a larger action goes on over the next turns, so
 *  that no request holds the main thread for all of it (drain of 600,000 jobs: one 1.5 s block
 *  before; about 25 ms per step of 5,000 on the benchmark VM). */
export const actionStepJobsMax = 5_000;
/** Longest `POST /gc` waits after its compaction for the RSS to stop falling. */
export const gcSettleMsMax = 3_000;
/** How far V8 lets the old generation grow past the live heap before its next full GC
 *  (HEAP_GROWING_PERCENT; 0 leaves V8's own factor, which reaches 1.5–4× on a large heap).
 *  30: a server filled with 1,000,000 jobs holds 572–582 MB right after the fill instead of
 *  771–885 MB (about 510 MB after a full GC either way). */
export const heapGrowingPercentDefault = 30;
export const heapGrowingPercentMax = 300;
/** …but a heap may always grow this much past its live size (a small heap collected every few
 *  MB made WebSocket push 5–7% slower, heap-growth.ts)… */
export const heapHeadroomBytes = 64 * MiB;
/** …and never more than this percentage for the headroom's sake. */
export const heapGrowingPercentCeiling = 100;

// ── Snapshots and retention ────────────────────────────────────────────────────────────────
export const snapshotEveryRecordsDefault = 1_000_000;
export const snapshotIntervalMsDefault = 10 * 60 * 1_000;
export const snapshotsKept = 2;
/** Snapshots kept spread over the retention window for point-in-time recovery (keep.ts): with the
 *  7-day default, one per 42 hours, so the log kept is at most the window plus about 42 hours and
 *  at most 4 + 2 + 2 snapshot files stay. */
export const snapshotRecoveryPointsDefault = 4;
/** Each kept snapshot is read in full once per snapshot-process start (its first prune) and on
 *  the server's main thread by retention's first run: 100 bounds that work. */
export const snapshotRecoveryPointsMax = 100;
/** How often the server re-reads its segments and snapshots to find damage at rest (the
 *  scrub, src/snapshot/scrub.ts): once a day by default; 0 turns it off. */
export const scrubIntervalMsDefault = 24 * 60 * 60 * 1_000;
/** setInterval's longest period (a longer one fires at once). */
export const scrubIntervalMsMax = 2_147_483_647;
/** Share of the time the scrub's worker reads and checks: after each file it pauses three times
 *  as long as that file took, so that over a run it takes about a quarter of a core and of the
 *  disk (a file itself, a 64 MiB segment, is read at full speed). */
export const scrubDutyCycle = 0.25;
/** Faults a scrub run lists (it counts them all). */
export const scrubFaultsListedMax = 20;
/** Valid snapshots retention needs before it removes a segment (src/snapshot/retention.ts): the
 *  newest, and one to fall back to should the newest prove bad at the next start. */
export const retentionSnapshotsValidMin = 2;
/** Nice level of the snapshot process (src/snapshot/snapshot-process.ts): the server's request
 *  loop wins the CPU when both want it, yet snapshots still progress under full load. */
export const snapshotProcessNice = 10;
/** Longest wait of the automatic snapshot triggers after failed snapshots (doubling from 1 s). */
export const snapshotRetryMsMax = 5 * 60 * 1_000;
export const historyRetentionMsDefault = 7 * 24 * 60 * 60 * 1_000;
/** A snapshot block (file format 2, src/snapshot/format-v2.ts) ends once its rows' encoded bytes
 *  reach this, as well as at 4,096 rows. Without it, 4,096 jobs of 500 KB made one 2 GB block:
 *  more than one read() can return, and the writer, the loader and retention's verification each
 *  held it (or two) in memory. A block exceeds it by at most its last row. */
export const snapshotBlockBytesMax = 16 * MiB;
/** Largest single read of a snapshot file. One read() returns at most about 2 GiB (Linux) and
 *  Node refuses longer ones; files written before snapshotBlockBytesMax may hold blocks up to
 *  4 GiB, which are read in pieces of this size (and verified piece by piece, never held). */
export const snapshotReadBytesMax = 64 * MiB;

// ── History, recovery and export ──────────────────────────────────────────────────────────
/** Sealed-segment job indexes kept in memory (LRU) for history lookups. */
export const jobIndexCacheBytesMax = 64 * MiB;
/** Longest `GET /jobs/:id/history` answer in its JSON form (characters): the log keeps every
 *  record of a job, so a job with a million log lines has a history of gigabytes, which the JSON
 *  form built in memory (entries, then one string) until the heap ran out. A longer history is
 *  refused with a pointer to `?format=ndjson`, which streams any length. */
export const historyJsonLengthMax = 16 * MiB;
/** Bytes copied per read when `recover` copies segments into a new data directory. */
export const recoverCopyChunkBytes = 1 * MiB;
/** Target size of one block of an Avro export file. */
export const avroExportBlockBytes = 256 * KiB;

// ── Real-time ──────────────────────────────────────────────────────────────────────────────
/** Bytes buffered for one SSE or WebSocket client before it is cut off as too slow. */
export const subscriberBacklogBytesMax = 4 * MiB;
export const sseKeepAliveMs = 15_000;
export const wsFrameBytesMax = 1 * MiB;
/** Commands one WebSocket may have in flight before it must wait for replies. */
export const wsInflightMax = 1_024;
/** How long a WebSocket opened without credentials may stay open before its Auth command. */
export const wsAuthDeadlineMs = 10_000;
/** Failed Auth commands one WebSocket may send before it is closed (no guessing tokens on one
 *  socket; the HTTP rate limit covers opening new ones). */
export const wsAuthFailuresMax = 5;
/** How long a client over its backlog may take to drain to half before it is cut off. */
export const subscriberStallMs = sseKeepAliveMs;
/** A WebSocket is pinged this often, and one that has not answered by the next ping is closed: a
 *  peer that vanished without closing would hold its jobs and its connection for good. Twice the
 *  stall window, so that a client that reads as fast as the backlog rule demands (half of a full
 *  backlog per stall window) gets a ping queued behind that backlog in time. */
export const wsPingMs = 2 * subscriberStallMs;
/** How long a cut-off client gets to read its final message before its socket is destroyed. */
export const subscriberCloseGraceMs = sseKeepAliveMs;

// ── Rate limiting (seed 004 defaults) ──────────────────────────────────────────────────────
export const rateLimitWindowMsDefault = 60_000;
export const rateLimitMaxRequestsDefault = Number.POSITIVE_INFINITY;
export const rateLimitCleanupMsDefault = 60_000;
/** The longest period a Node timer takes (2^31 - 1 ms, about 24.8 days): a longer one fires after
 *  1 ms, so RATE_LIMIT_CLEANUP_MS, an interval, must not exceed it. */
export const rateLimitCleanupMsMax = 2 ** 31 - 1;
/** Client IPs tracked at once; past that the least recently seen is forgotten. X-Forwarded-For
 *  is client-controlled, so a client can fill it: ~2.1 KB each, ~210 MB full (rate-limit.ts). */
export const rateLimitTrackedIpsMax = 100_000;
/** Longest client address kept (the rate limiter's key, the actor's address): an IPv6 address
 *  with a zone and a port fits. X-Forwarded-For is client-controlled, and its first entry in
 *  full (up to Node's 16 KiB header limit) made each of those keys up to 16 KB. */
export const clientAddressLengthMax = 64;

// ── Push workers ───────────────────────────────────────────────────────────────────────────
export const workerTimeoutMsDefault = 3_000;
export const workerConcurrencyDefault = 1;
export const workerConcurrencyMax = 1_000;
export const workerResponseBytesMax = 1 * MiB;
/** Characters of an endpoint's response body quoted in a failure reason. */
export const workerErrorBodyChars = 200;
/** Added to the endpoint timeout to form the lock of a pushed job: the ack/fail has this long to land. */
export const workerLockMarginMs = 2_000;
/** The longest processing timeout, a job's `timeout` or a push worker endpoint's: the lock it is
 *  pulled under (timeout + workerLockMarginMs) must fit lockMsMax, or the job would stall and go
 *  to a second consumer while the first may still finish in time. */
export const processingTimeoutMsMax = lockMsMax - workerLockMarginMs;
/** First pause of a worker after its endpoint stopped answering (network error or timeout). */
export const workerBackoffMsFirst = 100;
/** The pause doubles per consecutive unreachable round, up to this. */
export const workerBackoffMsMax = 5_000;
/** Sockets one origin may get; above the largest concurrency of one worker. */
export const workerConnectionsPerOriginMax = 1_024;
/** Idle keep-alive socket lifetime when the endpoint sends no Keep-Alive hint. */
export const workerKeepAliveMs = 4_000;
/** Cap on opening one socket to an endpoint (the endpoint timeout applies when shorter). */
export const workerConnectTimeoutMs = 10_000;
/** Registered endpoint headers, as sent (`name: value` lines): half of the 16 KiB header section
 *  Node's HTTP server accepts by default, leaving room for the ones the broker adds. */
export const workerHeadersBytesMax = 8 * KiB;

// ── Server ─────────────────────────────────────────────────────────────────────────────────
export const httpPortDefault = 6790;
export const hostDefault = '0.0.0.0';
export const shutdownGraceMs = 10_000;
/** While closing, connections that have turned idle (their request answered) are closed this
 *  often: fastify closes only those idle when closing begins (unavailable.ts). */
export const closingIdleSweepMs = 20;
/** The writing server touches DATA_DIR/LOCK this often, and a LOCK of another host that nobody
 *  touched for dataDirLockStaleMs is stale (data-dir-lock.ts). */
export const dataDirLockRefreshMs = 2_000;
/** How long a shutdown waits for a WebSocket peer to answer the close frame before dropping it. */
export const wsShutdownCloseGraceMs = 2_000;
export const dataDirLockStaleMs = 10_000;
/** How long a shutdown lets push-worker calls already running finish; the ones still running
 *  then are abandoned and their jobs released (a `released` record, not a stall): the rest of
 *  the shutdown must fit in what is left of shutdownGraceMs. */
export const workerShutdownGraceMs = 5_000;
/** Descriptors kept out of MAX_CONNECTIONS' default for the log, readers, snapshots and push
 *  workers: a quarter of the open-file limit, and at least this many. */
export const descriptorsReservedMin = 64;
/** MAX_CONNECTIONS' default where the open-file limit cannot be read (no /proc/self/limits):
 *  three quarters of the usual 1024. */
export const maxConnectionsFallback = 768;

// ── Broker and projection ──────────────────────────────────────────────────────────────────
export const uniqueKeyLengthMax = 256;
export const groupIdLengthMax = 256;
export const maxAttemptsMax = 1_000_000;
/** Job priorities are sint32 in the log. */
export const priorityMin = -2_147_483_648;
export const priorityMax = 2_147_483_647;
/** BullMQ's priority range (1 is highest); converted to tapeq's by negation. */
export const bullPriorityMax = 2_097_152;
/** Longest the broker's timer sleeps before it reads the wall clock again. setTimeout counts
 *  monotonic time, so a wall clock stepped forward while it sleeps (NTP, a resumed VM) would
 *  otherwise leave everything that fell due waiting for up to the whole sleep (days, for a far
 *  delay); the cost is one heap peek a second while anything is scheduled. */
export const timerSleepMsMax = 1_000;
/** Queues the projection holds at once: a queue counts from its first job or pause until it is
 *  obliterated (state.ts), about 1.2–1.4 KB of heap while it holds a job or is paused, its name
 *  alone once it holds neither. A push or pause that would add one more is refused (409). */
export const queuesMax = 100_000;
/** Push workers registered at once (one per queue): each is ~10 KB of heap with 8 KiB of headers,
 *  runs a worker of its own, and `GET /workers` lists them all in one response. */
export const workersMax = 1_000;
/** Repeat limits (runs) and cron pattern length accepted on push. */
export const repeatLimitMax = 1_000_000_000;
export const cronPatternLengthMax = 128;

export function checkConstants(): void {
  const rules: Array<[boolean, string]> = [
    [segmentBytesMin <= segmentBytesDefault, 'segmentBytesMin <= segmentBytesDefault'],
    [recordBytesMax < segmentBytesDefault, 'a record must fit in a default segment'],
    [jobDataBytesMax < recordBytesMax, 'a job payload must fit in one record'],
    [bodyBytesMaxDefault <= recordBytesMax, 'a request body must fit in one record'],
    [groupCommitBytesMax >= recordBytesMax, 'one group commit must hold the largest record'],
    [groupCommitSyncWriteBytesMax <= groupCommitBytesMax, 'a synchronous write is at most one group commit'],
    [indexIntervalBytes <= segmentBytesMin, 'a segment must hold at least one index interval'],
    [idsPerRecordMax * (jobIdLengthMax + 8) < recordBytesMax, 'an id list must fit in one record'],
    [actionStepJobsMax >= idsPerRecordMax, 'a step of a queue-wide action fills its records'],
    [bulkJobsMax * 64 <= bodyBytesMaxDefault * 64, 'bulk limit is sane'],
    [listLengthMax > 0 && pullTimeoutMsMax > 0, 'positive limits'],
    [logMessageLengthMax <= jobLogsLengthMax, "a job keeps at least its newest log line"],
    [2 * jobLogsLengthMax <= jobDataBytesMax, "a job's kept logs (2 bytes a character at most) take no more heap than its data may"],
    [lockMsDefault <= lockMsMax, 'lockMsDefault <= lockMsMax'],
    [timerSleepMsMax > 0 && timerSleepMsMax <= 2_147_483_647, 'a timer sleep is one setTimeout (Node caps them at 2^31-1 ms)'],
    [workersMax <= queuesMax, 'no more push workers than queues (one per queue)'],
    [wsFrameBytesMax <= subscriberBacklogBytesMax, 'a frame must fit in a subscriber backlog'],
    [workerBackoffMsFirst > 0 && workerBackoffMsFirst <= workerBackoffMsMax, 'worker backoff first <= max'],
    [workerTimeoutMsDefault + workerLockMarginMs <= lockMsMax, 'a pushed job lock fits lockMsMax'],
    [workerConcurrencyMax <= workerConnectionsPerOriginMax, 'one worker at full concurrency fits the pool'],
    [subscriberStallMs > 0 && subscriberCloseGraceMs > 0, 'positive subscriber cut-off times'],
    [wsPingMs >= 2 * subscriberStallMs, 'a WebSocket draining at the backlog rule answers a ping in time'],
    [segmentOpenRetryMsMax < shutdownGraceMs, 'a roll retrying its next segment ends within a shutdown'],
    [dataDirLockStaleMs >= 4 * dataDirLockRefreshMs, 'a live lock holder touches its lock several times per stale window'],
    [workerShutdownGraceMs + wsShutdownCloseGraceMs < shutdownGraceMs, 'push-worker calls and WebSocket closes fit a shutdown'],
    [workerShutdownGraceMs <= shutdownGraceMs / 2, 'push-worker calls leave half the shutdown for the rest'],
    [segmentOpenRetryPauseMsFirst > 0 && segmentOpenRetryPauseMsFirst <= segmentOpenRetryPauseMsMax, 'segment open pause first <= max'],
    [snapshotsKept >= retentionSnapshotsValidMin, 'pruning keeps as many snapshots as retention needs before it removes anything'],
    [snapshotBlockBytesMax <= snapshotReadBytesMax, 'a snapshot block of the byte bound is one read'],
    [snapshotReadBytesMax < 2 ** 31 - 4 * KiB, 'a snapshot read fits one read() call'],
    [snapshotBlockBytesMax + 64 * recordBytesMax < 2 ** 32, "a block's length fits its u32 frame field"],
  ];
  const broken = rules.filter(([ok]) => !ok).map(([, name]) => name);
  if (broken.length > 0) throw new Error(`constants broken: ${broken.join('; ')}`);
}
