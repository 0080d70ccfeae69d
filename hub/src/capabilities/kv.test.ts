// Capabilities persistence against a real nats-server.
import assert from 'node:assert/strict';
import test from 'node:test';
import { Kvm } from '@nats-io/kv';
import { silentLogger, sleep } from '@flotilla/common';
import { requireEnv, startNats } from '@flotilla/test-env';
import { NatsLink } from '../status/nats-link.js';
import { CAPABILITIES_BUCKET, KvCapabilitiesPersistence, decodeRecord } from './kv.js';
import { CapabilitiesStore } from './store.js';

const skip = await requireEnv(['nats']);

async function until(cond: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function hub(url: string) {
  const link = new NatsLink({ url, logger: silentLogger() });
  const store = new CapabilitiesStore({ logger: silentLogger() });
  const kv = new KvCapabilitiesPersistence({
    connection: () => link.connection(),
    isConnected: () => link.connected,
    store,
    logger: silentLogger(),
    retryIntervalMs: 50,
  });
  link.start();
  return { link, store, kv };
}

test('a-restarted-hub-restores-each-clusters-last-reported-capabilities', { skip }, async () => {
  const nats = await startNats();
  const first = hub(nats.url);
  try {
    first.kv.start();
    await first.link.connection();
    const apiVersions = Array.from(
      { length: 1500 },
      (_, i) => `group-${i}.example.com/v1/Kind${i}`,
    );
    first.store.reported('edge-1', { kubeVersion: 'v1.35.4', apiVersions: ['v1', ...apiVersions] });
    first.store.reported('edge-2', { kubeVersion: 'v1.30.2', apiVersions: ['v1'] });
    assert.equal(first.store.get('edge-1')?.apiVersions.length, 1501, 'within the limits');
    const kvm = new Kvm(await first.link.connection());
    // The bucket is created by the first write.
    await until(
      async () =>
        (await kvm
          .open(CAPABILITIES_BUCKET)
          .then((b) => b.get('edge-2'))
          .catch(() => null)) !== null,
      'records written',
    );
    const stored = await (await kvm.open(CAPABILITIES_BUCKET)).get('edge-1');
    assert.ok(
      stored && stored.value.length < JSON.stringify(apiVersions).length / 4,
      'stored gzip-compressed',
    );
    assert.equal(decodeRecord(stored.value).apiVersions.length, 1501);
    await first.kv.stop();
    await first.link.stop();

    const second = hub(nats.url);
    try {
      assert.equal(await second.kv.restore(), 2);
      assert.equal(second.store.get('edge-1')?.apiVersions.length, 1501);
      assert.equal(second.store.get('edge-2')?.kubeVersion, 'v1.30.2');
      assert.deepEqual(second.store.takeDirty(), [], 'restoring writes nothing back');
    } finally {
      await second.kv.stop();
      await second.link.stop();
    }
  } finally {
    await first.link.stop().catch(() => undefined);
    await nats.stop();
  }
});
