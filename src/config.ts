// Configuration from environment variables: parsed once at startup, every problem reported
// together (one ConfigError listing them all), defaults from src/constants.ts. The README's
// configuration table documents the same names and defaults; a test keeps the two in step.

import { resolve } from 'node:path';
import * as C from './constants.js';
import { maxConnectionsDefault, openFilesSoftLimit } from './open-files-limit.js';

export interface Config {
  httpPort: number;
  host: string;
  dataDir: string;
  authTokens: string[];
  corsAllowOrigin: string;
  rateLimitWindowMs: number;
  rateLimitMaxRequests: number;
  rateLimitCleanupMs: number;
  /** requireAuthForMetrics: /prometheus needs a token when AUTH_TOKENS is set. */
  metricsAuth: boolean;
  metricsPrefix: string;
  bodyBytesMax: number;
  segmentBytes: number;
  logSync: 'always' | 'interval';
  logSyncIntervalMs: number;
  snapshotEveryRecords: number;
  snapshotIntervalMs: number;
  historyRetentionMs: number;
  archiveDir: string | null;
  snapshotRecoveryPoints: number;
  /** Period of the scrub of log segments and snapshots (ms); 0 = off. */
  scrubIntervalMs: number;
  lockMs: number;
  /** V8's --heap-growing-percent for `tapeq serve`; 0 = V8's own heuristic. */
  heapGrowingPercent: number;
  /** Connections the HTTP server holds at once (HTTP, SSE, WebSocket); more are closed on arrival. */
  maxConnections: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Each env variable with its default (as text) and meaning; the README table mirrors this. */
export const ENV_VARIABLES: ReadonlyArray<{ name: string; default: string; description: string }> = [
  { name: 'HTTP_PORT', default: String(C.httpPortDefault), description: 'HTTP, WebSocket and SSE port (0–65535; 0 picks a free one, the same for the startup probe and the server, named on stderr from the start)' },
  { name: 'HOST', default: C.hostDefault, description: 'Listen address' },
  { name: 'DATA_DIR', default: './data', description: 'Log segments, indexes and snapshots' },
  { name: 'AUTH_TOKENS', default: '(none)', description: 'Comma-separated bearer tokens (visible ASCII, no spaces); unset = no auth' },
  { name: 'CORS_ALLOW_ORIGIN', default: '*', description: 'Access-Control-Allow-Origin value' },
  { name: 'RATE_LIMIT_WINDOW_MS', default: String(C.rateLimitWindowMsDefault), description: 'Sliding window (ms, at least 1)' },
  { name: 'RATE_LIMIT_MAX_REQUESTS', default: 'Infinity', description: 'Max requests per window per IP (at least 1; `Infinity` = no limit)' },
  { name: 'RATE_LIMIT_CLEANUP_MS', default: String(C.rateLimitCleanupMsDefault), description: 'Cleanup interval for expired entries (ms, 1–2147483647)' },
  { name: 'METRICS_AUTH', default: 'false', description: 'requireAuthForMetrics: /prometheus needs a token (needs AUTH_TOKENS)' },
  { name: 'METRICS_PREFIX', default: 'bunqueue', description: 'Prefix of Prometheus metric names' },
  { name: 'MAX_BODY_BYTES', default: String(C.bodyBytesMaxDefault), description: 'Largest request body in bytes, 1024–4194304 (413 above); job `data` is at most 524288 bytes as JSON whatever this says' },
  { name: 'SEGMENT_BYTES', default: String(C.segmentBytesDefault), description: 'Size at which a log segment is sealed (bytes, 4096–1073741824)' },
  { name: 'LOG_SYNC', default: C.logSyncDefault, description: '`always`: ack after the group fdatasync; `interval`: ack after write, sync every LOG_SYNC_INTERVAL_MS' },
  { name: 'LOG_SYNC_INTERVAL_MS', default: String(C.logSyncIntervalMsDefault), description: 'fdatasync period in interval mode (ms, 1–60000)' },
  { name: 'SNAPSHOT_EVERY_RECORDS', default: String(C.snapshotEveryRecordsDefault), description: 'Snapshot after this many records (at least 1)' },
  { name: 'SNAPSHOT_INTERVAL_MS', default: String(C.snapshotIntervalMsDefault), description: 'Snapshot at least this often when records arrived (ms, at least 1)' },
  { name: 'HISTORY_RETENTION_MS', default: String(C.historyRetentionMsDefault), description: 'Keep segments at least this long (ms, 0 or more)' },
  { name: 'SNAPSHOT_RECOVERY_POINTS', default: String(C.snapshotRecoveryPointsDefault), description: `Snapshots kept spread over HISTORY_RETENTION_MS, plus one older than it, so \`recover --until\` reaches every point the log keeps (0 to ${C.snapshotRecoveryPointsMax}; 0: only the two newest are kept)` },
  { name: 'SCRUB_INTERVAL_MS', default: String(C.scrubIntervalMsDefault), description: `Re-read every log segment (the active one up to its synced end) and snapshot this often (ms, 0 to ${C.scrubIntervalMsMax}; 0 = never) to find damage at rest; findings in the server's log, \`GET /health\` and \`/prometheus\`` },
  { name: 'ARCHIVE_DIR', default: '(none)', description: 'Move expired segments here instead of deleting them' },
  { name: 'LOCK_MS', default: String(C.lockMsDefault), description: 'Lock (ms, 1–86400000) held by a pull before the job counts as stalled; a job with a longer `timeout` is locked for timeout + 2 s' },
  {
    name: 'MAX_CONNECTIONS',
    default: `open-file limit − max(${C.descriptorsReservedMin}, ¼ of it)`,
    description: 'Most client connections (HTTP, SSE, WebSocket) held at once; further ones are closed as they arrive, so that a flood cannot take the descriptors the log needs. The default keeps a quarter of the soft open-file limit (`ulimit -n`, read from /proc/self/limits), at least ' +
      `${C.descriptorsReservedMin}, for the log; ${C.maxConnectionsFallback} where that limit cannot be read`,
  },
  {
    name: 'HEAP_GROWING_PERCENT',
    default: String(C.heapGrowingPercentDefault),
    description: 'How far (%, 0–300) the JS heap may grow past its live size before a full GC; while the heap is small, 64 MB of growth instead (that headroom is capped at 100%); 0 = V8 decides (less GC, more RSS)',
  },
];

type Env = Record<string, string | undefined>;

/** Whether one edit turns `a` into `b`: insert or delete a character, substitute one, or swap two
 *  neighbours. */
function oneEditApart(a: string, b: string): boolean {
  const [short, long] = a.length <= b.length ? [a, b] : [b, a];
  if (long.length - short.length > 1) return false;
  let i = 0;
  while (i < short.length && short[i] === long[i]) i++;
  if (short.length < long.length) return short.slice(i) === long.slice(i + 1);
  return (
    short.slice(i + 1) === long.slice(i + 1) ||
    (short[i] === long[i + 1] && short[i + 1] === long[i] && short.slice(i + 2) === long.slice(i + 2))
  );
}

/** Warnings for variables that look like a misspelt tapeq variable (`AUTH_TOKEN`, `HTTP_PROT`,
 *  `LOG_SYNC_INTERVAL`): unknown names are otherwise ignored, and a typo in AUTH_TOKENS would
 *  run the server without auth. Only near misses are named, since the environment holds many
 *  other programs' variables (HOME is two edits from HOST, so one edit and five letters at least). */
export function misspeltVariableWarnings(env: Env): string[] {
  const known = ENV_VARIABLES.map((v) => v.name);
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (known.includes(name)) continue;
    const meant =
      known.find((k) => name.includes('_') && k.startsWith(`${name}_`)) ??
      known.find((k) => name.length >= 5 && oneEditApart(name, k));
    if (meant !== undefined) warnings.push(`${name} is not a tapeq variable and is ignored: did you mean ${meant}?`);
  }
  return warnings;
}

/** What Node's HTTP layer accepts in a header value (its checkInvalidHeaderChar): tab, visible
 *  ASCII, space and obs-text. */
const headerValuePattern = /^[\t\x20-\x7e\x80-\xff]*$/;

/** `openFilesLimit` is the process's soft open-file limit (null: unknown), for MAX_CONNECTIONS'
 *  default. */
export function loadConfig(env: Env = process.env, openFilesLimit: number | null = openFilesSoftLimit()): Config {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    // Decimal digits only: Number() would also take "0x10", "1e3" and "0b1".
    const value = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  };
  // A path or address with a blank at either end (an env file's trailing space) is almost never
  // meant: DATA_DIR="/srv/tapeq " started an empty server in a new directory beside the real one.
  const text = (name: string, fallback: string): string => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (raw.trim() !== raw) problems.push(`${name} must not start or end with whitespace (got ${JSON.stringify(raw)})`);
    return raw;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };

  const maxRequestsRaw = env.RATE_LIMIT_MAX_REQUESTS;
  const rateLimitMaxRequests =
    maxRequestsRaw === undefined || maxRequestsRaw === '' || maxRequestsRaw === 'Infinity'
      ? C.rateLimitMaxRequestsDefault
      : int('RATE_LIMIT_MAX_REQUESTS', C.rateLimitMaxRequestsDefault, 1);

  const logSync = env.LOG_SYNC === undefined || env.LOG_SYNC.trim() === '' ? C.logSyncDefault : env.LOG_SYNC.trim();
  if (logSync !== 'always' && logSync !== 'interval') {
    problems.push(`LOG_SYNC must be "always" or "interval" (got "${logSync}")`);
  }
  const tokens = (env.AUTH_TOKENS ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  // Set but holding no token (",", " "): auth would silently be off, which is not what was meant.
  if (env.AUTH_TOKENS !== undefined && env.AUTH_TOKENS !== '' && tokens.length === 0) {
    problems.push(`AUTH_TOKENS has no token (got "${env.AUTH_TOKENS}"); unset it to run without auth`);
  }
  // A Bearer header carries one run of visible ASCII (auth.ts bearerToken): any other token could
  // never be presented. Named by position, since the token is a secret.
  tokens.forEach((token, i) => {
    if (!/^[\x21-\x7e]+$/.test(token)) {
      problems.push(`AUTH_TOKENS token ${i + 1} of ${tokens.length} must be visible ASCII without spaces (an Authorization: Bearer header could not carry it)`);
    }
  });
  const prefix = env.METRICS_PREFIX === undefined || env.METRICS_PREFIX === '' ? 'bunqueue' : env.METRICS_PREFIX;
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    problems.push(`METRICS_PREFIX must match [a-zA-Z_:][a-zA-Z0-9_:]* (got "${prefix}")`);
  }
  const corsAllowOrigin = env.CORS_ALLOW_ORIGIN && env.CORS_ALLOW_ORIGIN.length > 0 ? env.CORS_ALLOW_ORIGIN : '*';
  // Sent on every response: a value Node refuses as a header (a control character) would turn
  // each of them, /health included, into a 500.
  if (!headerValuePattern.test(corsAllowOrigin)) {
    problems.push(`CORS_ALLOW_ORIGIN must be a valid HTTP header value, without control characters (got ${JSON.stringify(corsAllowOrigin)})`);
  }

  const config: Config = {
    httpPort: int('HTTP_PORT', C.httpPortDefault, 0, 65535),
    host: text('HOST', C.hostDefault),
    dataDir: text('DATA_DIR', './data'),
    authTokens: tokens,
    corsAllowOrigin,
    rateLimitWindowMs: int('RATE_LIMIT_WINDOW_MS', C.rateLimitWindowMsDefault, 1),
    rateLimitMaxRequests,
    rateLimitCleanupMs: int('RATE_LIMIT_CLEANUP_MS', C.rateLimitCleanupMsDefault, 1, C.rateLimitCleanupMsMax),
    metricsAuth: bool('METRICS_AUTH', false),
    metricsPrefix: prefix,
    bodyBytesMax: int('MAX_BODY_BYTES', C.bodyBytesMaxDefault, 1024, C.recordBytesMax),
    segmentBytes: int('SEGMENT_BYTES', C.segmentBytesDefault, C.segmentBytesMin, 1024 * 1024 * 1024),
    logSync: logSync === 'interval' ? 'interval' : 'always',
    logSyncIntervalMs: int('LOG_SYNC_INTERVAL_MS', C.logSyncIntervalMsDefault, 1, 60_000),
    snapshotEveryRecords: int('SNAPSHOT_EVERY_RECORDS', C.snapshotEveryRecordsDefault, 1),
    snapshotIntervalMs: int('SNAPSHOT_INTERVAL_MS', C.snapshotIntervalMsDefault, 1),
    historyRetentionMs: int('HISTORY_RETENTION_MS', C.historyRetentionMsDefault, 0),
    archiveDir: text('ARCHIVE_DIR', '') || null,
    snapshotRecoveryPoints: int('SNAPSHOT_RECOVERY_POINTS', C.snapshotRecoveryPointsDefault, 0, C.snapshotRecoveryPointsMax),
    scrubIntervalMs: int('SCRUB_INTERVAL_MS', C.scrubIntervalMsDefault, 0, C.scrubIntervalMsMax),
    lockMs: int('LOCK_MS', C.lockMsDefault, 1, C.lockMsMax),
    heapGrowingPercent: int('HEAP_GROWING_PERCENT', C.heapGrowingPercentDefault, 0, C.heapGrowingPercentMax),
    maxConnections: int('MAX_CONNECTIONS', maxConnectionsDefault(openFilesLimit), 1),
  };
  // Archiving renames a segment into ARCHIVE_DIR: into its own directory that is no move at all,
  // and retention would never free a byte while reporting segments removed.
  if (config.archiveDir !== null && resolve(config.archiveDir) === resolve(config.dataDir, 'log')) {
    problems.push(`ARCHIVE_DIR must not be the log directory itself (got "${config.archiveDir}", DATA_DIR "${config.dataDir}")`);
  }
  // Nothing can ask /prometheus for a token when there are none: it would stay open to anyone.
  if (config.metricsAuth && config.authTokens.length === 0) {
    problems.push('METRICS_AUTH=true needs AUTH_TOKENS (without tokens /prometheus would be open to anyone)');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
