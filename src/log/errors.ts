// The log's one error type. Every I/O or corruption failure of the storage engine is a LogError
// with a stable code; where it applies, `file`, `position` (byte in that file) and `offset` (the
// record offset expected there) locate it. Bugs are assertions (plain Error), never LogError.

export type LogErrorCode =
  | 'LOG_FAILED' // an earlier write or sync failed: the log accepts nothing more
  | 'LOG_WRITE'
  | 'LOG_SYNC'
  | 'LOG_NO_SPACE'
  | 'LOG_CORRUPT' // bad checksum, bad header, undecodable frame, damaged segment
  | 'LOG_GAP' // offsets not contiguous (inside or across segments)
  | 'LOG_RECORD_TOO_LARGE'
  | 'LOG_CLOSED'
  | 'LOG_NOT_FOUND' // read-only open of a directory without segments
  | 'LOG_SHRANK'; // a file ended before the size a reader took (a live writer trimmed its zeros)

export interface LogErrorLocation {
  file?: string;
  position?: number;
  offset?: number;
  cause?: unknown;
}

export class LogError extends Error {
  override readonly name = 'LogError';
  readonly code: LogErrorCode;
  readonly file: string | undefined;
  readonly position: number | undefined;
  readonly offset: number | undefined;

  constructor(code: LogErrorCode, message: string, where: LogErrorLocation = {}) {
    super(message, where.cause === undefined ? undefined : { cause: where.cause });
    this.code = code;
    this.file = where.file;
    this.position = where.position;
    this.offset = where.offset;
  }
}

/** True for the error of a read that found the file shorter than the size it was started with:
 *  readers beside a live broker see it when a roll or a close trims the preallocated zeros. */
export function isShrank(err: unknown): err is LogError {
  return err instanceof LogError && err.code === 'LOG_SHRANK';
}

/** The `code` of a system (or LogError) error, whatever was thrown. */
export function errnoOf(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}

/** An error's message, whatever was thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Maps a failed write/sync to its code: a full disk is LOG_NO_SPACE (507 upstream). */
export function ioError(op: 'write' | 'sync', file: string, cause: unknown): LogError {
  const errno = errnoOf(cause);
  const code = errno === 'ENOSPC' || errno === 'EDQUOT' ? 'LOG_NO_SPACE' : op === 'write' ? 'LOG_WRITE' : 'LOG_SYNC';
  const detail = messageOf(cause);
  return new LogError(code, `log ${op} failed on ${file}: ${detail}`, { file, cause });
}
