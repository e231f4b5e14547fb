// Runs the log tools as real child processes through the test-only entry point.

import { spawn, type ChildProcess } from 'node:child_process';
import { plainNode } from '../fixtures/process.js';
import { fileURLToPath } from 'node:url';

export const cliEntry = fileURLToPath(new URL('../fixtures/log-cli.js', import.meta.url));

export function runCli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(...plainNode([cliEntry, ...args]), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd === undefined ? {} : { cwd }) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export function spawnCli(args: string[]): ChildProcess {
  return spawn(...plainNode([cliEntry, ...args]), { stdio: ['ignore', 'pipe', 'pipe'] });
}
