// Canonical text of a StateImage: JSON with object keys sorted at every level, so two images that
// are deep-equal serialize to the same string whatever order their keys were built in. The hash
// is taken by the caller (src/broker/digest.ts), keeping this module free of node:crypto.

import type { StateImage } from './image.js';

function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`stateDigest: non-finite number`);
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  const parts: string[] = [];
  for (const key of keys) {
    if (obj[key] === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${canonical(obj[key])}`);
  }
  return `{${parts.join(',')}}`;
}

export function stateDigest(image: StateImage): string {
  return canonical(image);
}
