import { readFileSync } from 'node:fs';
import t from 'tap';
import { ConfigError, ENV_VARIABLES, loadConfig, misspeltVariableWarnings } from '../src/config.js';
import * as C from '../src/constants.js';
import { openFilesSoftLimit } from '../src/open-files-limit.js';

t.test('defaults-match-constants-when-env-is-empty', async (t) => {
  const config = loadConfig({});
  t.equal(config.httpPort, C.httpPortDefault);
  t.equal(config.host, '0.0.0.0');
  t.equal(config.dataDir, './data');
  t.same(config.authTokens, []);
  t.equal(config.corsAllowOrigin, '*');
  t.equal(config.rateLimitMaxRequests, Infinity);
  t.equal(config.logSync, 'always');
  t.equal(config.metricsPrefix, 'bunqueue');
});

t.test('every-problem-is-reported-together', async (t) => {
  const error = t.throws(() =>
    loadConfig({ HTTP_PORT: 'abc', LOG_SYNC: 'sometimes', RATE_LIMIT_WINDOW_MS: '-5', METRICS_AUTH: 'yes' }),
  ) as unknown as ConfigError;
  t.ok(error instanceof ConfigError);
  t.equal(error.problems.length, 4);
  t.match(error.message, /HTTP_PORT/);
  t.match(error.message, /LOG_SYNC/);
  t.match(error.message, /RATE_LIMIT_WINDOW_MS/);
  t.match(error.message, /METRICS_AUTH/);
});

t.test('heap-growing-percent-defaults-to-30-and-takes-0-to-300', async (t) => {
  t.equal(loadConfig({}).heapGrowingPercent, 30);
  t.equal(loadConfig({ HEAP_GROWING_PERCENT: '0' }).heapGrowingPercent, 0, '0 leaves the factor to V8');
  t.equal(loadConfig({ HEAP_GROWING_PERCENT: '300' }).heapGrowingPercent, 300);
  for (const bad of ['-1', '301', '12.5', 'lots']) {
    t.throws(() => loadConfig({ HEAP_GROWING_PERCENT: bad }), { message: new RegExp(`HEAP_GROWING_PERCENT must be an integer from 0 to 300 \\(got "${bad}"\\)`) });
  }
});

t.test('snapshot-recovery-points-default-to-4-and-take-0-to-100', async (t) => {
  t.equal(loadConfig({}).snapshotRecoveryPoints, 4);
  t.equal(loadConfig({ SNAPSHOT_RECOVERY_POINTS: '0' }).snapshotRecoveryPoints, 0, '0 keeps only the two newest');
  t.equal(loadConfig({ SNAPSHOT_RECOVERY_POINTS: '100' }).snapshotRecoveryPoints, 100);
  for (const bad of ['-1', '101', '2.5', 'many']) {
    t.throws(() => loadConfig({ SNAPSHOT_RECOVERY_POINTS: bad }), { message: new RegExp(`SNAPSHOT_RECOVERY_POINTS must be an integer from 0 to 100 \\(got "${bad}"\\)`) });
  }
});

t.test('scrub-interval-defaults-to-a-day-and-0-turns-it-off', async (t) => {
  t.equal(loadConfig({}).scrubIntervalMs, 86_400_000);
  t.equal(loadConfig({ SCRUB_INTERVAL_MS: '0' }).scrubIntervalMs, 0, '0: no scrub');
  t.equal(loadConfig({ SCRUB_INTERVAL_MS: '2147483647' }).scrubIntervalMs, 2_147_483_647, "setInterval's longest period");
  for (const bad of ['-1', '2147483648', '1.5', 'daily']) {
    t.throws(() => loadConfig({ SCRUB_INTERVAL_MS: bad }), { message: new RegExp(`SCRUB_INTERVAL_MS must be an integer from 0 to 2147483647 \\(got "${bad}"\\)`) });
  }
});

t.test('auth-tokens-are-split-and-trimmed', async (t) => {
  t.same(loadConfig({ AUTH_TOKENS: ' a, b ,,c ' }).authTokens, ['a', 'b', 'c']);
});

t.test('readme-documents-every-env-variable-with-its-default', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const v of ENV_VARIABLES) {
    t.ok(readme.includes(`| \`${v.name}\` | \`${v.default}\` | ${v.description} |`), `${v.name} documented with default ${v.default} and its description`);
  }
});

t.test('integers-are-decimal-and-auth-tokens-set-to-nothing-are-refused', async (t) => {
  for (const bad of ['0x10', '1e3', '0b1', '12.0.0']) {
    t.throws(() => loadConfig({ HTTP_PORT: bad }), { message: new RegExp(`HTTP_PORT must be an integer from 0 to 65535 \\(got "${bad}"\\)`) }, bad);
  }
  t.equal(loadConfig({ HTTP_PORT: ' 8080 ' }).httpPort, 8080);
  t.throws(() => loadConfig({ AUTH_TOKENS: ', ,' }), { message: /AUTH_TOKENS has no token \(got ", ,"\); unset it to run without auth/ });
  t.same(loadConfig({ AUTH_TOKENS: '' }).authTokens, [], 'empty is unset');
  t.equal(loadConfig({ LOG_SYNC: '' }).logSync, 'always', 'an empty LOG_SYNC is unset, as every other variable');
  t.equal(loadConfig({ LOG_SYNC: ' interval ' }).logSync, 'interval');
});

t.test('max-connections-defaults-to-the-open-file-limit-less-a-reserve-and-takes-a-positive-integer', async (t) => {
  t.equal(loadConfig({}, 300).maxConnections, 225, 'a quarter of 300 kept for the log');
  t.equal(loadConfig({}, 1024).maxConnections, 768);
  t.equal(loadConfig({}, 100).maxConnections, 100 - C.descriptorsReservedMin, 'at least descriptorsReservedMin kept');
  t.equal(loadConfig({}, 10).maxConnections, 1, 'never below 1');
  t.equal(loadConfig({}, null).maxConnections, C.maxConnectionsFallback, 'a fixed default when the limit is unknown');
  t.equal(loadConfig({ MAX_CONNECTIONS: '5000' }, 300).maxConnections, 5000, 'set, it is taken as it is');
  for (const bad of ['0', '-1', '1.5', 'many']) {
    t.throws(() => loadConfig({ MAX_CONNECTIONS: bad }), { message: new RegExp(`MAX_CONNECTIONS must be an integer from 1 to \\d+ \\(got "${bad}"\\)`) }, bad);
  }
});

t.test('the-open-file-limit-is-the-soft-one-of-proc-self-limits', async (t) => {
  const dir = t.testdir({
    limits: 'Limit                     Soft Limit           Hard Limit           Units     \nMax processes             63704                63704                processes \nMax open files            300                  1048576              files     \n',
    unlimited: 'Max open files            unlimited            unlimited            files     \n',
  });
  t.equal(openFilesSoftLimit(`${dir}/limits`), 300);
  t.equal(openFilesSoftLimit(`${dir}/unlimited`), null);
  t.equal(openFilesSoftLimit(`${dir}/absent`), null);
  if (process.platform === 'linux') t.type(openFilesSoftLimit(), 'number', 'this process has one');
});

t.test('cors-allow-origin-that-is-no-valid-header-value-is-refused', async (t) => {
  // A control character made every response a 500 (Node refuses the header), /health included.
  for (const bad of ['https://a.example\nX-Evil: 1', 'a\rb', 'tab\x00nul']) {
    t.throws(() => loadConfig({ CORS_ALLOW_ORIGIN: bad }), { message: /CORS_ALLOW_ORIGIN must be a valid HTTP header value/ }, JSON.stringify(bad));
  }
  t.equal(loadConfig({ CORS_ALLOW_ORIGIN: 'https://app.example:8443' }).corsAllowOrigin, 'https://app.example:8443');
});

t.test('an-empty-metrics-prefix-is-unset-as-every-other-variable', async (t) => {
  t.equal(loadConfig({ METRICS_PREFIX: '' }).metricsPrefix, 'bunqueue');
  t.throws(() => loadConfig({ METRICS_PREFIX: 'my-app' }), { message: /METRICS_PREFIX must match/ });
});

t.test('rate-limit-cleanup-period-stops-at-what-a-timer-can-wait', async (t) => {
  // Node runs a timer of more than 2^31 - 1 ms after 1 ms: a cleanup every 35 days became a
  // busy loop, every millisecond.
  const timerMsMax = 2 ** 31 - 1;
  t.throws(() => loadConfig({ RATE_LIMIT_CLEANUP_MS: String(timerMsMax + 1) }), { message: new RegExp(`RATE_LIMIT_CLEANUP_MS must be an integer from 1 to ${timerMsMax}`) });
  t.equal(loadConfig({ RATE_LIMIT_CLEANUP_MS: String(timerMsMax) }).rateLimitCleanupMs, timerMsMax);
});

t.test('near-misses-of-a-variable-name-are-warned-about-and-other-programs-variables-are-not', async (t) => {
  const warnings = misspeltVariableWarnings({
    AUTH_TOKEN: 's',
    HTTP_PROT: '1',
    LOG_SYNC_INTERVAL: '5',
    RATE_LIMIT_MAX_REQUEST: '9',
    HOME: '/root',
    HOSTNAME: 'vm',
    HTTP_PROXY: 'x',
    PATH: '/bin',
    NODE_ENV: 'production',
    TAPEQ_SERVICE_HOST: '10.0.0.1',
    HTTP_PORT: '1',
  });
  t.strictSame(warnings, [
    'AUTH_TOKEN is not a tapeq variable and is ignored: did you mean AUTH_TOKENS?',
    'HTTP_PROT is not a tapeq variable and is ignored: did you mean HTTP_PORT?',
    'LOG_SYNC_INTERVAL is not a tapeq variable and is ignored: did you mean LOG_SYNC_INTERVAL_MS?',
    'RATE_LIMIT_MAX_REQUEST is not a tapeq variable and is ignored: did you mean RATE_LIMIT_MAX_REQUESTS?',
  ]);
  // One edit of each kind is a near miss; two edits are not.
  const meant = (name: string): string | undefined => misspeltVariableWarnings({ [name]: '1' })[0]?.split('did you mean ')[1];
  t.equal(meant('HTTP_POXT'), 'HTTP_PORT?', 'a character substituted');
  t.equal(meant('HTP_PORT'), 'HTTP_PORT?', 'a character left out');
  t.equal(meant('HTTPP_PORT'), 'HTTP_PORT?', 'a character added');
  t.equal(meant('LCOK_MS'), 'LOCK_MS?', 'two neighbours swapped');
  t.equal(meant('HTTP_PRTO'), undefined, 'two edits');
  t.equal(meant('HTPP_PORX'), undefined, 'two substitutions');
});

t.test('an-archive-dir-that-is-the-log-directory-is-refused', async (t) => {
  t.throws(() => loadConfig({ DATA_DIR: '/srv/tapeq', ARCHIVE_DIR: '/srv/tapeq/log/' }), { message: /ARCHIVE_DIR must not be the log directory itself/ });
  t.throws(() => loadConfig({ ARCHIVE_DIR: 'data/log' }), { message: /ARCHIVE_DIR/ }, 'relative, against the default DATA_DIR');
  t.equal(loadConfig({ DATA_DIR: '/srv/tapeq', ARCHIVE_DIR: '/srv/tapeq/archive' }).archiveDir, '/srv/tapeq/archive');
});

t.test('an-auth-token-no-bearer-header-can-carry-is-refused-without-printing-it', async (t) => {
  // `Authorization: Bearer <token>` carries one run of visible ASCII: a token with a space, a tab
  // or a non-ASCII letter was taken and could never be presented, every request answered 401.
  for (const bad of ['secret one', 'a,tab\there', 'toké']) {
    const error = t.throws(() => loadConfig({ AUTH_TOKENS: bad })) as unknown as ConfigError;
    t.match(error.message, /AUTH_TOKENS token \d of \d must be visible ASCII without spaces/, JSON.stringify(bad));
    t.notMatch(error.message, /secret|here|toké/, 'the token itself is not printed');
  }
  t.same(loadConfig({ AUTH_TOKENS: 'A-z0._~+/9=,x' }).authTokens, ['A-z0._~+/9=', 'x']);
});

t.test('a-data-dir-archive-dir-or-host-with-surrounding-whitespace-is-refused', async (t) => {
  // DATA_DIR="/srv/tapeq " (a trailing blank from an env file) started an empty server in a new
  // directory "/srv/tapeq " beside the real one, and " " made one named by a blank in the cwd.
  for (const name of ['DATA_DIR', 'ARCHIVE_DIR', 'HOST']) {
    for (const bad of ['/srv/tapeq ', ' 127.0.0.1', ' ', '\t']) {
      t.throws(() => loadConfig({ [name]: bad }), { message: new RegExp(`${name} must not start or end with whitespace \\(got ${JSON.stringify(JSON.stringify(bad)).slice(1, -1).replace(/\./g, '\\.')}\\)`) }, `${name}=${JSON.stringify(bad)}`);
    }
  }
  const problems = (t.throws(() => loadConfig({ DATA_DIR: ' d', HOST: 'h ' })) as unknown as ConfigError).problems;
  t.equal(problems.length, 2, 'both reported together');
  t.equal(loadConfig({ DATA_DIR: '/srv/my data' }).dataDir, '/srv/my data', 'a blank inside a path is a path');
});

t.test('metrics-auth-without-auth-tokens-is-refused-not-left-open', async (t) => {
  // With no token to ask for, METRICS_AUTH=true left /prometheus open to anyone without a word.
  t.throws(() => loadConfig({ METRICS_AUTH: 'true' }), { message: /METRICS_AUTH=true needs AUTH_TOKENS/ });
  t.equal(loadConfig({ METRICS_AUTH: 'true', AUTH_TOKENS: 'a' }).metricsAuth, true);
  t.equal(loadConfig({ METRICS_AUTH: 'false' }).metricsAuth, false);
});
