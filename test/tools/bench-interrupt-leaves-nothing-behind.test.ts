// ^C (SIGINT) or SIGTERM to a running `tapeq bench` kills every process it started, their own
// children included (tapeq's snapshot process), and removes its temp directories.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { plainNode } from '../fixtures/process.js';

t.setTimeout(60_000);

const procUrl = new URL('../../tools/bench-proc.js', import.meta.url).href;

/** Starts a tapeq server the way a scenario does, prints its data dir and process tree, waits. */
const script = `
const { processTree, startTapeq, tempDir } = await import(${JSON.stringify(procUrl)});
const data = await tempDir('tapeq-bench-interrupt-');
const server = await startTapeq(data.dir);
let tree = processTree(server.pid);
for (let i = 0; i < 100 && tree.length < 2; i++) {
  await new Promise((r) => setTimeout(r, 50));
  tree = processTree(server.pid);
}
console.log(JSON.stringify({ dir: data.dir, tree }));
setInterval(() => {}, 1_000);
`;

function alive(pid: number): boolean {
  try {
    // A zombie (exited, not yet reaped) is gone for our purpose.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  t.test(`${signal.toLowerCase()}-kills-the-tree-and-removes-temp-dirs`, async (t) => {
    const child = spawn(...plainNode(['--input-type=module', '-e', script]), { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    let out = '';
    child.stdout.setEncoding('utf8');
    const started = await new Promise<{ dir: string; tree: number[] }>((resolve, reject) => {
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        const line = out.split('\n')[0];
        if (out.includes('\n') && line !== undefined) resolve(JSON.parse(line) as { dir: string; tree: number[] });
      });
      child.once('exit', () => reject(new Error(`script exited early: ${out}`)));
    });
    t.ok(existsSync(started.dir), 'the data dir exists while the server runs');
    t.ok(started.tree.length >= 2, `server and snapshot process: ${started.tree.join(', ')}`);
    child.kill(signal);
    t.equal(await exited, code, `exit code ${code}`);
    for (let i = 0; i < 50 && started.tree.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    t.same(started.tree.filter(alive), [], 'no process of the server\'s tree is left');
    t.notOk(existsSync(started.dir), 'the temp data dir is removed');
  });
}
