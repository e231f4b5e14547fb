import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runTapeq } from '../fixtures/process.js';

const commands = ['serve', 'logcat', 'verify', 'replay', 'recover', 'export'];

t.test('every-subcommand-answers-help-with-its-options-on-stdout-and-exit-0', async (t) => {
  for (const command of commands) {
    for (const flag of ['--help', '-h']) {
      const r = await runTapeq([command, flag]);
      t.equal(r.code, 0, `${command} ${flag} exits 0`);
      t.match(r.stdout, new RegExp(`^usage: tapeq ${command}`), `${command} ${flag} prints its usage`);
      t.equal(r.stderr, '');
      t.match(r.stdout, /Exit 0/, `${command} ${flag} names its exit codes, as the README promises`);
    }
  }
  const logcat = await runTapeq(['logcat', '--help']);
  for (const flag of ['--dir', '--from', '--to', '--since', '--until', '--kind', '--queue', '--job', '--follow']) t.match(logcat.stdout, flag);
  const serve = await runTapeq(['serve', '--help']);
  t.match(serve.stdout, '--repair');
  t.match(serve.stdout, '--until');
});

t.test('top-level-help-points-to-each-commands-help', async (t) => {
  const r = await runTapeq(['--help']);
  t.equal(r.code, 0);
  for (const command of [...commands, 'bench']) t.match(r.stdout, new RegExp(`^  ${command} `, 'm'));
  t.match(r.stdout, '`tapeq <command> --help` lists its options');
});

t.test('bench-help-prints-usage-and-scenarios-on-stdout-while-a-bad-flag-exits-2-on-stderr', async (t) => {
  const help = await runTapeq(['bench', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^usage: tapeq bench/);
  t.match(help.stdout, /^ {2}http-push /m);
  t.match(help.stdout, /^Exit 0; 1 when a scenario failed[^\n]*; 2 on a usage error\.$/m, 'names its exit codes, as the README promises of every command');
  t.equal(help.stderr, '');
  const bad = await runTapeq(['bench', '--nope']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, 'tapeq bench: unknown option --nope');
  t.equal(bad.stdout, '');
});

t.test('an-empty-flag-value-is-a-usage-error-naming-the-flag-and-writes-nothing', async (t) => {
  // `--out "$OUT"` with the variable unset: before, recover built `.recovering-<pid>` in the
  // working directory and failed on a rename, export wrote `.tmp-<pid>` there, and an empty
  // --kind printed every record as if no filter was given. An empty --queue or --job filtered to
  // nothing: export wrote a file of 0 records (exit 0), replay summed up a queue named "" and said
  // the job "" did not exist, logcat printed nothing.
  const cwd = await mkdtemp(join(tmpdir(), 'tapeq-empty-flag-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  const cases: Array<[string[], string]> = [
    [['logcat', '--kind', ''], '--kind: no record type given'],
    [['logcat', '--kind', ','], '--kind: no record type given'],
    [['recover', '--until', '5', '--out', ''], '--out: empty'],
    [['export', '--avro', ''], '--avro: empty'],
    ...['logcat', 'verify', 'replay', 'export'].map((c): [string[], string] => [[c, '--dir', '', ...(c === 'export' ? ['--avro', 'x.avro'] : [])], '--dir: empty']),
    [['recover', '--dir', '', '--until', '5', '--out', 'out'], '--dir: empty'],
    [['export', '--avro', 'x.avro', '--queue', ''], '--queue: empty'],
    [['replay', '--queue', ''], '--queue: empty'],
    [['replay', '--job', ''], '--job: empty'],
    [['logcat', '--queue', ''], '--queue: empty'],
    [['logcat', '--job', ''], '--job: empty'],
  ];
  for (const [args, message] of cases) {
    const r = await runTapeq(args, { DATA_DIR: join(cwd, 'data') }, cwd);
    t.equal(r.code, 2, `${JSON.stringify(args)} exits 2`);
    t.match(r.stderr, `tapeq ${args[0]}: ${message}`);
    t.equal(r.stdout, '');
  }
  t.same(await readdir(cwd), [], 'nothing was written in the working directory');
});
