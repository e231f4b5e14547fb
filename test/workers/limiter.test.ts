import t from 'tap';
import { StartLimiter } from '../../src/workers/limiter.js';

t.test('at-most-max-starts-per-window-then-wait-until-the-oldest-leaves', async (t) => {
  const l = new StartLimiter({ max: 2, duration: 100 });
  t.equal(l.tryReserve(0), 0);
  l.started(0);
  t.equal(l.tryReserve(10), 0);
  l.started(10);
  t.equal(l.tryReserve(20), 80, 'oldest start at 0 leaves the window at 100');
  t.equal(l.tryReserve(100), 0, 'window is (t - duration, t]');
  l.started(100);
  t.equal(l.tryReserve(105), 5);
});

t.test('reserved-slots-count-and-unused-ones-come-back', async (t) => {
  const l = new StartLimiter({ max: 2, duration: 100 });
  t.equal(l.tryReserve(0), 0);
  t.equal(l.tryReserve(0), 0);
  t.equal(l.tryReserve(0), Number.POSITIVE_INFINITY, 'all slots held by pulls in flight');
  l.unused();
  t.equal(l.tryReserve(1), 0);
});

t.test('reconfigure-keeps-history', async (t) => {
  const l = new StartLimiter({ max: 1, duration: 100 });
  t.equal(l.tryReserve(0), 0);
  l.started(0);
  l.reconfigure({ max: 1, duration: 50 });
  t.equal(l.tryReserve(10), 40);
  t.equal(l.tryReserve(50), 0);
});

t.test('release-without-reservation-is-a-bug', async (t) => {
  const l = new StartLimiter({ max: 1, duration: 100 });
  t.throws(() => l.unused(), /release without a reservation/);
});

t.test('a-start-costs-the-same-with-a-million-starts-in-the-window', async (t) => {
  // A quota such as {max: 1000000, duration: 1000000} keeps up to a million start times: taking
  // the expired one off the front must not move all the others (it did: 0.15 ms a start).
  const max = 1_000_000;
  const l = new StartLimiter({ max, duration: max });
  let refused = 0;
  for (let now = 0; now < max; now++) {
    if (l.tryReserve(now) !== 0) refused++;
    else l.started(now);
  }
  t.equal(refused, 0, 'a start per ms fills the window');
  t.equal(l.tryReserve(max - 0.5), 1, 'full: the oldest start leaves the window in 0.5 ms (at least 1 is said)');
  const started = performance.now();
  for (let now = max; now < max + 20_000; now++) {
    if (l.tryReserve(now) !== 0) refused++;
    else l.started(now);
  }
  const elapsedMs = performance.now() - started;
  t.equal(refused, 0, 'each ms the oldest start leaves and a new one fits');
  t.ok(elapsedMs < 500, `20,000 starts at a full window took ${elapsedMs.toFixed(0)} ms`);
});
