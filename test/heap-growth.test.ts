import { test } from 'tap';
import { heapGrowingPercentCeiling, heapHeadroomBytes } from '../src/constants.js';
import { growingPercent } from '../src/heap-growth.js';

const MiB = 1024 * 1024;

test('a large heap grows by HEAP_GROWING_PERCENT: the headroom is less than that', (t) => {
  t.equal(growingPercent(240 * MiB, 30, 64 * MiB), 30, '64 MiB is 26% of 240 MiB');
  t.equal(growingPercent(1024 * MiB, 30, 64 * MiB), 30);
  t.equal(growingPercent(200 * MiB, 50, 64 * MiB), 50, 'a higher setting still wins');
  t.end();
});

test('a small heap may grow by the headroom, up to the ceiling', (t) => {
  t.equal(growingPercent(128 * MiB, 30, 64 * MiB), 50);
  t.equal(growingPercent(100 * MiB, 30, 64 * MiB), 64);
  t.equal(growingPercent(64 * MiB, 30, 64 * MiB), 100);
  t.equal(growingPercent(10 * MiB, 30, 64 * MiB, 100), 100, 'never past the ceiling');
  t.equal(growingPercent(0, 30, 64 * MiB, 100), 100, 'an empty heap reads as small');
  t.end();
});

test('without explicit limits it uses the headroom and ceiling of constants.ts', (t) => {
  t.equal(growingPercent(96 * MiB, 30), growingPercent(96 * MiB, 30, heapHeadroomBytes, heapGrowingPercentCeiling));
  t.end();
});
