// The one-shot tools as the left side of a pipeline whose reader leaves before they write
// (`tapeq replay | grep -q …`, `| true`): the output has nowhere to go, which is no failure of
// the command; it must not end in an unhandled EPIPE and its stack trace.

import { join } from 'node:path';
import t from 'tap';
import { spawn } from 'node:child_process';
import { cliPath, plainNode } from '../fixtures/process.js';
import { tempDir, writeLog } from '../log/helpers.js';

function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(...plainNode([cliPath, ...args]), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

t.test('a-reader-that-leaves-early-ends-replay-verify-and-recover-quietly', async (t) => {
  const dir = await tempDir(t);
  await writeLog(join(dir, 'log'), 20);
  const out = join(await tempDir(t), 'never');
  for (const args of [['replay'], ['replay', '--digest'], ['verify'], ['recover', '--until', '5', '--out', out, '--dry-run']]) {
    const r = await runWithClosedStdout([...args, '--dir', dir]);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    t.notMatch(r.stderr, /EPIPE|Unhandled|\n\s+at /, `${args.join(' ')}: no error and no stack trace`);
  }
});
