// What the scrub's server tests share: a real server on 127.0.0.1 over a fresh data directory,
// pushes over HTTP, the scrub's status polled from GET /health, and a bit flipped at rest.

import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { serve, type Running } from '../../src/main.js';

export interface Served {
  s: Running;
  dir: string;
  url: string;
  lines: string[];
}

/** Runs `body` against a server started with `defaults` and then `env`, and removes its data. */
export async function withScrubServer(defaults: Record<string, string>, env: Record<string, string>, body: (served: Served) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-scrub-'));
  const lines: string[] = [];
  const config = loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1', ...defaults, ...env });
  const s = await serve(config, { logger: (line) => lines.push(line) });
  try {
    await body({ s, dir, url: `http://127.0.0.1:${s.port}`, lines });
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Pushes job `i` (about 80 bytes of data) to queue q. */
export async function push(url: string, i: number, durable = false): Promise<{ ok: boolean }> {
  const response = await fetch(`${url}/queues/q/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { i, pad: 'x'.repeat(60) }, ...(durable ? { durable: true } : {}) }),
  });
  return (await response.json()) as { ok: boolean };
}

export async function health(url: string): Promise<any> {
  return (await fetch(`${url}/health`)).json();
}

/** Polls GET /health until `done` holds for its `scrub` (up to 15 s). */
export async function scrubUntil(url: string, what: string, done: (scrub: any) => boolean): Promise<any> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const scrub = (await health(url)).scrub;
    if (done(scrub)) return scrub;
    if (Date.now() > deadline) throw new Error(`scrub: ${what} not seen within 15 s; last: ${JSON.stringify(scrub)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Flips one bit of the byte at `position` (again: puts it back). */
export async function flip(file: string, position: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, position);
    b[0] = (b[0] as number) ^ 0x40;
    await fh.write(b, 0, 1, position);
  } finally {
    await fh.close();
  }
}
