// SPEC 3 "A bad checksum inside a sealed segment stops startup with a message naming file, byte
// offset and record offset, unless the operator passes an explicit repair flag."
//
// A data dir with several sealed segments (a real broker workload, 4 KiB segments) gets one bit
// flipped at a seeded random byte of a sealed segment: in a frame header, a payload, or the
// segment header. The real `tapeq serve` must exit non-zero without ever answering /ready, its
// stderr naming the segment file, the byte position of the damaged frame and its record offset
// (computed here independently by walking the frames), and every file of the data dir must be
// byte-identical afterwards. `tapeq verify` must refuse the same way.
//
// Fast: 3 flips. TAPEQ_LONG=1: 25 flips.

import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { spawn } from 'node:child_process';
import { cliPath, freePort, runTapeq, plainNode } from '../fixtures/process.js';
import { LONG, hashTree, seededRng, tempDir } from '../fixtures/reliability/common.js';
import { writeWorkload } from '../fixtures/reliability/workload.js';

const flips = LONG ? 25 : 3;
const segmentHeaderBytes = 40;
const frameHeaderBytes = 8;

/** Frame start positions of a segment file (walking the length fields of an intact copy). */
function frameStarts(bytes: Buffer): number[] {
  const starts: number[] = [];
  for (let pos = segmentHeaderBytes; pos + frameHeaderBytes <= bytes.length; ) {
    starts.push(pos);
    pos += frameHeaderBytes + bytes.readUInt32LE(pos);
  }
  return starts;
}

/** Runs `tapeq serve` to its exit (bounded): exit code, stderr, and whether /ready ever said 200. */
async function serveUntilExit(dataDir: string, timeoutMs = 30_000): Promise<{ code: number | null; stderr: string; becameReady: boolean }> {
  const port = await freePort();
  const child = spawn(...plainNode([cliPath, 'serve']), {
    env: { ...process.env, HOST: '127.0.0.1', HTTP_PORT: String(port), DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let becameReady = false;
  const deadline = Date.now() + timeoutMs;
  while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
    const ready = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    becameReady ||= ready;
    if (ready) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  return { code: await exited, stderr, becameReady };
}

t.test('a flipped bit in a sealed segment refuses start, names the place and leaves the dir untouched', async (t) => {
  const rng = seededRng(t, 'sealed-bit-flip');
  const root = await tempDir(t, 'bitflip');
  const pristine = join(root, 'pristine');
  await writeWorkload(join(pristine, 'log'), rng.seed, 400, { segmentBytes: 4096 });
  const segments = (await readdir(join(pristine, 'log'))).filter((n) => n.endsWith('.log')).sort();
  t.ok(segments.length >= 3, `workload spans ${segments.length} segments`);
  const sealed = segments.slice(0, -1);

  let refused = 0;
  for (let i = 0; i < flips; i++) {
    const dataDir = join(root, `flip-${i}`);
    await cp(pristine, dataDir, { recursive: true });
    const file = rng.pick(sealed);
    const path = join(dataDir, 'log', file);
    const bytes = await readFile(path);
    const baseOffset = Number(file.slice(0, 20));
    const starts = frameStarts(bytes);
    // One flip in five lands in the segment header; the rest anywhere in the frames.
    const position = i % 5 === 4 ? rng.int(segmentHeaderBytes) : segmentHeaderBytes + rng.int(bytes.length - segmentHeaderBytes);
    const bit = rng.int(8);
    bytes[position] = (bytes[position] as number) ^ (1 << bit);
    await writeFile(path, bytes);
    let frameIndex = -1;
    for (let f = 0; f < starts.length && (starts[f] as number) <= position; f++) frameIndex = f;
    const wantByte = frameIndex < 0 ? 0 : (starts[frameIndex] as number);
    const wantOffset = baseOffset + Math.max(frameIndex, 0);
    const what = `flip ${i}: ${file} byte ${position} bit ${bit} → expect byte ${wantByte}, record offset ${wantOffset}`;

    const before = await hashTree(dataDir);
    const served = await serveUntilExit(dataDir);
    t.not(served.code, 0, `${what}: serve exits non-zero (got ${served.code})`);
    t.notOk(served.becameReady, `${what}: /ready never answered 200`);
    t.match(served.stderr, file, `${what}: stderr names the segment`);
    t.match(served.stderr, `byte ${wantByte}`, `${what}: stderr names the byte position`);
    t.match(served.stderr, `record offset ${wantOffset}`, `${what}: stderr names the record offset`);
    const verify = await runTapeq(['verify', '--dir', join(dataDir, 'log')]);
    t.equal(verify.code, 1, `${what}: verify exits 1`);
    t.match(verify.stdout, new RegExp(`${file}.*byte ${wantByte}.*record offset ${wantOffset}`), `${what}: verify names the same place`);
    t.same(await hashTree(dataDir), before, `${what}: every file of the data dir is byte-identical afterwards`);
    if (served.code !== 0 && !served.becameReady) refused++;
  }
  t.comment(`sealed-bit-flip: flips=${flips} refused=${refused} sealed segments=${sealed.length}`);
});
