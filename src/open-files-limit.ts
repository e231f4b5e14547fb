// The process's open-file limit, and what it leaves for client connections. Linux shows the soft
// limit (what EMFILE enforces) in /proc/self/limits; elsewhere, or when it says "unlimited", the
// limit is unknown and MAX_CONNECTIONS' default is a fixed number (config.ts).
//
//   Max open files            1024                 1048576              files
//                             ^ soft               ^ hard

import { readFileSync } from 'node:fs';
import { descriptorsReservedMin, maxConnectionsFallback } from './constants.js';

/** The soft limit on open files, or null when this system does not say. */
export function openFilesSoftLimit(limitsPath = '/proc/self/limits'): number | null {
  let text: string;
  try {
    text = readFileSync(limitsPath, 'utf8');
  } catch {
    return null;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : null;
}

/** MAX_CONNECTIONS' default: the limit less a quarter of it (at least descriptorsReservedMin),
 *  kept for the log's files, readers, snapshots and push workers; at least 1. */
export function maxConnectionsDefault(openFilesLimit: number | null): number {
  if (openFilesLimit === null) return maxConnectionsFallback;
  return Math.max(1, openFilesLimit - Math.max(descriptorsReservedMin, Math.ceil(openFilesLimit / 4)));
}
