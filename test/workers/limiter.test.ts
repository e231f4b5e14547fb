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
