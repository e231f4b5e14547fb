import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t, { type Test } from 'tap';
import { createDataDir } from '../src/data-dir-create.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-datadir-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a-data-dir-made-with-its-parents-is-removed-with-them-while-empty', async (t) => {
  const root = await tempDir(t);
  const made = await createDataDir(join(root, 'a', 'b', 'data'));
  // What a start makes inside before it fails, and leaves empty.
  await mkdir(join(root, 'a', 'b', 'data', 'log'));
  await mkdir(join(root, 'a', 'b', 'data', 'snapshots', 'aside'), { recursive: true });
  await made.removeIfEmpty();
  t.same(await readdir(root), [], 'the data dir, the parents it needed and the empty directories inside are gone');
});

t.test('a-relative-data-dir-is-removed-as-well', async (t) => {
  const root = await tempDir(t);
  const made = await createDataDir(relative(process.cwd(), join(root, 'x', 'data')));
  await made.removeIfEmpty();
  t.same(await readdir(root), []);
});

t.test('a-file-anywhere-inside-keeps-it-and-every-directory-above-it', async (t) => {
  const root = await tempDir(t);
  const dataDir = join(root, 'a', 'data');
  const made = await createDataDir(dataDir);
  await mkdir(join(dataDir, 'log'));
  await mkdir(join(dataDir, 'snapshots'));
  await writeFile(join(dataDir, 'log', '00000000000000000000.log'), 'records');
  await made.removeIfEmpty();
  t.same(await readdir(dataDir), ['log'], 'the empty snapshots/ goes, log/ with its file stays');
  t.same(await readdir(join(dataDir, 'log')), ['00000000000000000000.log']);
  t.same(await readdir(root), ['a'], 'and the parent it made stays');
});

t.test('a-data-dir-that-existed-is-never-removed-even-empty', async (t) => {
  const root = await tempDir(t);
  const dataDir = join(root, 'data');
  await mkdir(join(dataDir, 'log'), { recursive: true });
  const made = await createDataDir(dataDir);
  await made.removeIfEmpty();
  t.same(await readdir(dataDir), ['log'], 'neither it nor the empty directory in it');
});

t.test('only-the-parents-this-call-made-are-removed', async (t) => {
  const root = await tempDir(t);
  await mkdir(join(root, 'existing'));
  const made = await createDataDir(join(root, 'existing', 'new', 'data'));
  await made.removeIfEmpty();
  t.same(await readdir(root), ['existing'], 'the parent that existed stays, empty as it was');
  t.same(await readdir(join(root, 'existing')), []);
});

t.test('a-data-dir-named-through-dot-dot-is-made-where-the-server-looks-and-removed-alone', async (t) => {
  // mkdir -p of `gone/../new/data` makes `gone` first and reports it, which is no parent of the
  // data dir: the start failed on an assertion, leaving all three directories behind.
  const root = await tempDir(t);
  const made = await createDataDir(`${root}/gone/../new/data`);
  t.same((await readdir(root)).sort(), ['new'], 'only the directories the server uses (join is lexical) are made');
  t.same(await readdir(join(root, 'new')), ['data']);
  await made.removeIfEmpty();
  t.same(await readdir(root), [], 'and they are removed while empty');
});
