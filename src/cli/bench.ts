// `tapeq bench [scenario ...] [--json]`: the benchmark harness lives in tools/ (it is developer
// tooling and pulls in load generators); this subcommand only forwards to it.

export async function benchCommand(argv: string[]): Promise<number> {
  const { benchMain } = await import('../../tools/bench.js');
  return benchMain(argv);
}
