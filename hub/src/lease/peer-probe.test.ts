// The question a replica cut from NATS asks its peers, against real HTTP(S) servers
// answering /readyz as a hub does.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { CLUSTER_ORG, CertificateAuthority, HUB_ORG, createCa } from '../identity/pki.js';
import { PeerProbe } from './peer-probe.js';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

type Readyz = { status: number; body: unknown };

async function listen(server: Server, answer: () => Readyz): Promise<string> {
  server.on('request', (req, res) => {
    const a = answer();
    res.writeHead(req.url === '/readyz' ? a.status : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(a.body));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const ready = (degraded: string[]): Readyz => ({
  status: 200,
  body: { ready: true, reasons: [], degraded },
});

test('a-peer-serves-only-when-ready-and-reaching-nats', async () => {
  const down = await listen(createServer(), () => ready(['nats']));
  const unready = await listen(createServer(), () => ({
    status: 503,
    body: { ready: false, reasons: ['cut'], degraded: ['nats'] },
  }));
  const gitOnly = await listen(createServer(), () => ready(['git:fleet']));
  const probe = (peers: string[]) =>
    new PeerProbe({ peers, caPem: () => undefined, logger: silentLogger(), timeoutMs: 1_000 });
  assert.equal(await probe([down, unready, 'localhost:1']).servingPeer(), undefined);
  // Git failing elsewhere does not stop that peer serving agents.
  assert.equal(await probe([down, unready, gitOnly]).servingPeer(), gitOnly);
  const answers = await probe([down, unready]).ask();
  assert.deepEqual(
    answers.map((a) => [a.serves, a.why]),
    [
      [false, 'NATS unreachable there too'],
      [false, 'not ready'],
    ],
  );
});

test('a-name-stands-for-every-address-it-resolves-to', async () => {
  const down = await listen(createServer(), () => ready(['nats']));
  const up = await listen(createServer(), () => ready([]));
  const port = (a: string): number => Number(a.split(':')[1]);
  assert.equal(port(down) === port(up), false);
  // One name, two addresses (a headless Service); each is asked on the name's port.
  const seen: string[] = [];
  const probe = new PeerProbe({
    peers: [`hubs.example:${port(up)}`],
    caPem: () => undefined,
    logger: silentLogger(),
    resolve: (host) => {
      seen.push(host);
      return Promise.resolve(['127.0.0.2', '127.0.0.1']);
    },
  });
  const answers = await probe.ask();
  assert.deepEqual(seen, ['hubs.example']);
  assert.deepEqual(
    answers.map((a) => a.address),
    [`127.0.0.2:${port(up)}`, `127.0.0.1:${port(up)}`],
  );
  assert.equal(await probe.servingPeer(), `127.0.0.1:${port(up)}`);
});

test('over-https-only-a-hub-certificate-of-the-hubs-ca-is-believed', async () => {
  const ca = new CertificateAuthority(createCa());
  const hosts = ['127.0.0.1'];
  const hubCert = ca.issueKeyPair('flotilla-hub', HUB_ORG, 3_600_000, { server: true, hosts });
  const clusterCert = ca.issueKeyPair('edge', CLUSTER_ORG, 3_600_000, { server: true, hosts });
  const other = new CertificateAuthority(createCa()).issueKeyPair(
    'flotilla-hub',
    HUB_ORG,
    3_600_000,
    {
      server: true,
      hosts,
    },
  );
  const serve = (pair: { certPem: string; keyPem: string }) =>
    listen(createTlsServer({ cert: pair.certPem, key: pair.keyPem }) as unknown as Server, () =>
      ready([]),
    );
  const [hub, cluster, foreign] = await Promise.all([
    serve(hubCert),
    serve(clusterCert),
    serve(other),
  ]);
  const probe = new PeerProbe({
    peers: [cluster, foreign, hub],
    caPem: () => ca.caPem,
    logger: silentLogger(),
  });
  const answers = await probe.ask();
  assert.equal(answers[0]?.serves, false);
  assert.match(answers[0]?.why ?? '', /is not a hub's \(O=flotilla-cluster\)/);
  assert.equal(answers[1]?.serves, false, 'another CA is refused');
  assert.equal(answers[2]?.serves, true);
});
