import t from 'tap';
import { checksum32, initChecksum } from '../../src/log/checksum.js';
import { jobIdHash } from '../../src/history/job-index.js';

// The hash is part of the .jobindex file format: xxh32 of the id's UTF-8 bytes. The scratch-buffer
// fast path must give exactly that for every id, including ones longer than the scratch.
t.test('job-id-hash-is-xxh32-of-the-utf8-bytes-for-ascii-multibyte-and-oversized-ids', async (t) => {
  await initChecksum();
  const reference = (id: string): number => {
    const bytes = new TextEncoder().encode(id);
    return checksum32(bytes, 0, bytes.length);
  };
  const ids = ['0190f5c2-8a4b-7c3d-000000000001', 'order-42', 'ünïcødé-ジョブ-🚀', 'x'.repeat(5000), 'é'.repeat(2000), ''];
  for (const id of ids) t.equal(jobIdHash(id), reference(id), `${id.slice(0, 20)}… (${id.length} chars)`);
  t.not(jobIdHash('a'), jobIdHash('b'));
});
