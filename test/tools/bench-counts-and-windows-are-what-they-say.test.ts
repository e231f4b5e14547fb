// What the bench numbers are divided by and what they count: an error is counted once, a target
// is judged on runs without errors on both sides, a fixed amount of work is timed to its last
// answer (not to the load generator's next 1 s tick), a CPU figure is divided by the wall time it
// was taken over, and the chart says what the table says about errors and targets.

import t from 'tap';
import { cannonErrorCount } from '../../tools/bench-loadgen.js';

t.setTimeout(120_000);

t.test('a-timeout-is-one-error-not-two', async (t) => {
  // autocannon counts each timeout in `errors` too (its onTimeout does errors++ and timeouts++).
  const result = { duration: 1, errors: 3, timeouts: 2, non2xx: 4, '2xx': 10, requests: { total: 17 } };
  t.equal(cannonErrorCount(result), 7, '4 non-2xx + 1 socket error + 2 timeouts');
});
