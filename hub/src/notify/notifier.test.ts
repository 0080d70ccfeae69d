// The notifier against a real local HTTP receiver.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import { Notifier } from './notifier.js';
import type { Alert } from './notifier.js';

async function receiver(failFirst = 0) {
  const posts: unknown[] = [];
  let failures = failFirst;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (failures-- > 0) return res.writeHead(503).end();
      posts.push(JSON.parse(body));
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { posts, url, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

const alert = (kind: Alert['kind'], cluster: string): Alert => ({
  kind,
  cluster,
  bundle: 'app',
  revision: 'abc1234',
  message: 'boom',
  time: '2026-11-26T12:00:00Z',
});

test('notifier-posts-slack-and-json-deduplicated', async () => {
  const rx = await receiver();
  const outcomes: string[] = [];
  const n = new Notifier({
    webhooks: [
      { name: 'slack', url: rx.url, format: 'slack', events: ['failed', 'drift'] },
      { name: 'json', url: rx.url, format: 'json', events: ['offline'] },
    ],
    logger: silentLogger(),
    onOutcome: (w, o) => outcomes.push(`${w}:${o}`),
  });
  try {
    n.alert(alert('failed', 'edge-1'));
    n.alert(alert('failed', 'edge-1'));
    n.alert(alert('offline', 'edge-2'));
    await n.idle();
    assert.equal(rx.posts.length, 2);
    assert.match(
      (rx.posts.find((p) => 'text' in (p as object)) as { text: string }).text,
      /Apply failed on bundle app on cluster edge-1/,
    );
    assert.deepEqual(
      rx.posts.find((p) => 'kind' in (p as object)),
      alert('offline', 'edge-2'),
    );
    assert.deepEqual(outcomes.sort(), ['json:sent', 'slack:deduplicated', 'slack:sent']);
  } finally {
    await n.stop();
    await rx.stop();
  }
});

test('notifier-retries-and-rate-limits', async () => {
  const rx = await receiver(1);
  const outcomes: string[] = [];
  const n = new Notifier({
    webhooks: [{ name: 'w', url: rx.url, format: 'json', events: ['drift', 'failed', 'offline'] }],
    logger: silentLogger(),
    rateBurst: 2,
    rateRefillMs: 3_600_000,
    retryInitialMs: 10,
    onOutcome: (_w, o) => outcomes.push(o),
  });
  try {
    for (const c of ['a', 'b', 'c']) n.alert(alert('offline', c));
    await n.idle();
    assert.equal(
      rx.posts.length,
      2,
      'the first post failed once and was retried; the third was over the rate',
    );
    assert.deepEqual(outcomes.sort(), ['rate_limited', 'sent', 'sent']);
  } finally {
    await n.stop();
    await rx.stop();
  }
});
