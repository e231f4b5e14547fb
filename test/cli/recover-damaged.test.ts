// Point-in-time recovery over a log with a damaged sealed segment: recover, replay and export with
// --until read only the records the point needs, so damage after the point (in a later segment or
// later in the point's own) does not stop them (the state just before bit rot is what recovery is
// for), and damage the point needs still does, naming the file, byte and offset. Without --until
// the whole log is verified, as before.

import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { openReadOnly } from '../../src/log/log.js';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { runTapeq, startTapeq } from '../fixtures/process.js';
import { hashTree, runWorkload, tempDir, type Workload } from '../history/workload.js';

interface Seg {
  file: string;
  base: number;
}

async function segmentsOf(logDir: string): Promise<Seg[]> {
  return (await readdir(logDir))
    .filter((n) => /^\d{20}\.log$/.test(n))
    .sort()
    .map((file) => ({ file, base: Number(file.slice(0, 20)) }));
}

/** Flips a bit in the payload of the segment's first record: a bad checksum at its first frame. */
async function damage(path: string): Promise<void> {
  const buf = await readFile(path);
  const at = segmentHeaderBytes + 8 + 3;
  buf[at] = (buf[at] as number) ^ 0x10;
  await writeFile(path, buf);
}

/** Flips a bit in the payload of the segment's record `index` (counted from 0): its checksum fails. */
async function damageRecord(path: string, index: number): Promise<number> {
  const buf = await readFile(path);
  let position = segmentHeaderBytes;
  for (let i = 0; i < index; i++) position += 8 + buf.readUInt32LE(position);
  buf[position + 8 + 3] = (buf[position + 8 + 3] as number) ^ 0x10;
  await writeFile(path, buf);
  return position;
}

async function digestOf(dir: string, until?: string): Promise<{ code: number | null; digest: string; stderr: string }> {
  const r = await runTapeq(['replay', '--dir', dir, '--digest', ...(until === undefined ? [] : ['--until', until])]);
  return { code: r.code, digest: r.stdout.trim(), stderr: r.stderr };
}

/** A workload whose segment after the one holding checkpoint `cp`'s offset is damaged: the point
 *  (offset or time) lies in a sound segment, and a record stamped after it too, before the damage. */
async function damagedAfter(t: Test, cpIndex: number): Promise<{ w: Workload; cp: Workload['checkpoints'][number]; victim: Seg }> {
  const w = await runWorkload(join(await tempDir(t, 'tapeq-pitr-damaged-'), 'data'));
  const cp = w.checkpoints[cpIndex];
  if (cp === undefined) throw new Error('no checkpoint');
  const segs = await segmentsOf(join(w.dir, 'log'));
  const holding = segs.filter((s) => s.base <= cp.offset).length - 1;
  const victim = segs[holding + 1];
  if (victim === undefined || holding + 1 === segs.length - 1) throw new Error('the workload needs a sealed segment after the point');
  await damage(join(w.dir, 'log', victim.file));
  return { w, cp, victim };
}

t.test('recover-until-a-point-before-a-damaged-segment-forks-a-log-serve-starts-from', async (t) => {
  const { w, cp, victim } = await damagedAfter(t, 1);
  const before = await hashTree(w.dir);

  const whole = await digestOf(w.dir);
  t.equal(whole.code, 1, 'without --until the whole log is verified and the damage refused');
  t.match(whole.stderr, `corrupt record in ${join(w.dir, 'log', victim.file)} at byte ${segmentHeaderBytes}`);

  const iso = new Date(cp.timestamp).toISOString();
  for (const until of [String(cp.offset), iso]) {
    const r = await digestOf(w.dir, until);
    t.equal(r.code, 0, `replay --until ${until}: ${r.stderr}`);
    t.equal(r.digest, cp.digest, `replay --until ${until} = live digest`);
  }

  // A time stamped past the damaged segment's records: resolving it needs that segment.
  const late = new Date((w.checkpoints.at(-1) as Workload['checkpoints'][number]).timestamp).toISOString();
  const needed = await digestOf(w.dir, late);
  t.equal(needed.code, 1, `replay --until ${late} needs the damaged segment`);
  t.match(needed.stderr, `corrupt record in ${join(w.dir, 'log', victim.file)} at byte ${segmentHeaderBytes}`);
  t.match(needed.stderr, `--until ${late} needs record ${victim.base} of ${victim.file}: no record before it is stamped after that time`);
  t.match(needed.stderr, `--until ${victim.base} (an offset) stops before it`, 'and names the offset point that does not');
  t.equal((await digestOf(w.dir, String(victim.base))).code, 0, `replay --until ${victim.base} runs`);

  const outRoot = await tempDir(t, 'tapeq-pitr-damaged-out-');
  const avro = join(outRoot, 'x.avro');
  const exported = await runTapeq(['export', '--dir', w.dir, '--until', String(cp.offset), '--avro', avro]);
  t.equal(exported.code, 0, `export --until: ${exported.stderr}`);
  t.match(exported.stderr, `${cp.offset} records (offsets 0..${cp.offset - 1})`);

  const dry = await runTapeq(['recover', '--dir', w.dir, '--until', String(cp.offset), '--out', join(outRoot, 'dry'), '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  const planned = JSON.parse(dry.stdout);
  t.equal(planned.laterSegments.damaged.file, join(w.dir, 'log', victim.file), 'the dry run names the damaged segment');
  t.ok(planned.segments.every((s: { file: string }) => s.file < victim.file), 'and plans to copy none of it or after it');
  await t.rejects(stat(join(outRoot, 'dry')), 'the dry run created nothing');

  for (const [kind, until] of [['offset', String(cp.offset)], ['time', iso]] as const) {
    const out = join(outRoot, kind);
    const r = await runTapeq(['recover', '--dir', w.dir, '--until', until, '--out', out]);
    t.equal(r.code, 0, `recover --until ${until}: ${r.stderr}`);
    const report = JSON.parse(r.stdout);
    t.equal(report.until, cp.offset, `${until} resolves to offset ${cp.offset}`);
    t.equal(report.laterSegments.damaged.file, join(w.dir, 'log', victim.file), 'the report names the damaged later segment');
    t.equal(report.laterSegments.damaged.offset, victim.base);
    t.ok(report.leftOut.records < w.records - cp.offset, 'left-out counts stop at the damage');
    t.match(r.stderr, victim.file, 'and says so on stderr');
    t.ok((await segmentsOf(join(out, 'log'))).every((s) => s.base < victim.base), 'the fork holds no segment from the damaged one on');
    const recovered = await digestOf(out);
    t.equal(recovered.code, 0, recovered.stderr);
    t.equal(recovered.digest, cp.digest, `recovered (${kind}) digest = live digest`);
  }

  const p = await startTapeq(join(outRoot, 'offset'));
  t.teardown(() => p.kill());
  const job = await (await fetch(`${p.url}/jobs/${w.ids[0] as string}`)).json();
  t.equal(job.ok, true, 'serve starts from the fork and a job from before the cut is there');
  const pushed = await fetch(`${p.url}/queues/q0/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: 1 }) });
  t.equal(pushed.status, 200, 'and it accepts writes');

  t.same(await hashTree(w.dir), before, 'the source data directory is byte-identical');
});

t.test('recover-until-a-point-whose-segment-is-damaged-is-refused-naming-file-byte-and-offset', async (t) => {
  const w = await runWorkload(join(await tempDir(t, 'tapeq-pitr-needed-'), 'data'));
  const cp = w.checkpoints.at(-1);
  if (cp === undefined) throw new Error('no checkpoint');
  const segs = await segmentsOf(join(w.dir, 'log'));
  const victim = segs[1];
  if (victim === undefined || victim.base >= cp.offset) throw new Error('the workload needs a sealed segment before the point');
  await damage(join(w.dir, 'log', victim.file));
  // Every segment below the point is verified, even one a snapshot would spare replaying.
  const before = await hashTree(w.dir);
  const expected = `corrupt record in ${join(w.dir, 'log', victim.file)} at byte ${segmentHeaderBytes} (record offset ${victim.base})`;
  const iso = new Date(cp.timestamp).toISOString();
  for (const args of [
    ['replay', '--until', String(cp.offset), '--digest'],
    ['replay', '--until', iso, '--digest'],
    ['export', '--until', String(cp.offset), '--avro', join(await tempDir(t, 'tapeq-pitr-needed-out-'), 'x.avro')],
    ['recover', '--until', String(cp.offset), '--out', join(await tempDir(t, 'tapeq-pitr-needed-out-'), 'out')],
  ]) {
    const r = await runTapeq([...args, '--dir', w.dir]);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, expected, `${args[0]} names the file, byte and offset`);
  }
  t.same(await hashTree(w.dir), before, 'the source data directory is byte-identical');
});

t.test('replay-export-and-recover-until-the-damaged-record-run-on-the-sound-records-of-its-segment', async (t) => {
  // The point lies in the damaged segment, before the bad record: the records it needs are all
  // sound, so the tools run as logcat --to does, where they once refused the whole segment.
  const root = await tempDir(t, 'tapeq-pitr-in-segment-');
  const w = await runWorkload(join(root, 'data'));
  const clean = join(root, 'clean');
  await cp(w.dir, clean, { recursive: true });
  const victim = (await segmentsOf(join(w.dir, 'log')))[1];
  if (victim === undefined) throw new Error('the workload needs a second sealed segment');
  const position = await damageRecord(join(w.dir, 'log', victim.file), 5);
  const bad = victim.base + 5;
  const before = await hashTree(w.dir);

  const log = await openReadOnly(join(clean, 'log'));
  const stamp = (await log.readOne(bad - 1))?.timestamp;
  await log.close();
  if (stamp === undefined) throw new Error('no record before the damage');
  // Record bad - 1 is stamped after this time: it resolves before the damage.
  for (const until of [String(bad), String(bad - 2), new Date(stamp - 1).toISOString()]) {
    const r = await digestOf(w.dir, until);
    t.equal(r.code, 0, `replay --until ${until}: ${r.stderr}`);
    t.equal(r.digest, (await digestOf(clean, until)).digest, `replay --until ${until} = the undamaged log's state there`);
  }
  const past = await digestOf(w.dir, String(bad + 1));
  t.equal(past.code, 1, 'a point past the bad record is refused');
  t.match(past.stderr, `corrupt record in ${join(w.dir, 'log', victim.file)} at byte ${position} (record offset ${bad})`);
  t.match(past.stderr, `--until ${bad + 1} needs record ${bad} of ${victim.file}, which lies before that offset; --until ${bad} (an offset) stops before it`);

  const outRoot = await tempDir(t, 'tapeq-pitr-in-segment-out-');
  const exported = await runTapeq(['export', '--dir', w.dir, '--until', String(bad), '--avro', join(outRoot, 'x.avro')]);
  t.equal(exported.code, 0, exported.stderr);
  t.match(exported.stderr, `${bad} records (offsets 0..${bad - 1})`);

  const out = join(outRoot, 'fork');
  const r = await runTapeq(['recover', '--dir', w.dir, '--until', String(bad), '--out', out]);
  t.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  t.has(report.laterSegments.damaged, { file: join(w.dir, 'log', victim.file), byte: position, offset: bad }, 'the report names the bad record');
  t.equal(report.laterSegments.fromOffset, bad);
  t.equal(report.leftOut.records, 0, 'nothing sound lies between the point and the damage');
  t.same(report.segments.at(-1), { file: victim.file, baseOffset: victim.base, nextOffset: bad, kind: 'cut' }, 'the damaged segment is cut before the bad record');
  const recovered = await digestOf(out);
  t.equal(recovered.code, 0, recovered.stderr);
  t.equal(recovered.digest, (await digestOf(clean, String(bad))).digest, 'the fork holds the state just before the damage');
  t.equal((await runTapeq(['verify', '--dir', out])).code, 0, 'and none of the damage');

  t.same(await hashTree(w.dir), before, 'the source data directory is byte-identical');
});
