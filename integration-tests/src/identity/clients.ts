// Test clients that speak to the hub as an agent (or an attacker) would: Register with a
// token, open an AgentStream with given TLS material and record what comes back.
import * as grpc from '@grpc/grpc-js';
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { PROTOCOL_VERSION, loadFlotillaProto } from '@flotilla/proto';
import type {
  AgentStreamClient,
  FleetServiceClient,
  HubMessage__Output,
  IdentityClient,
} from '@flotilla/proto';

/** TLS material for a client: the CA it trusts and, optionally, its own key and certificate. */
export interface ClientTls {
  caPem: string;
  keyPem?: string;
  certPem?: string;
}

function credentials(tls: ClientTls): grpc.ChannelCredentials {
  return tls.keyPem && tls.certPem
    ? grpc.credentials.createSsl(
        Buffer.from(tls.caPem),
        Buffer.from(tls.keyPem),
        Buffer.from(tls.certPem),
      )
    : grpc.credentials.createSsl(Buffer.from(tls.caPem));
}

/** The outcome of a unary call: a status code and message, or the response. */
export interface CallOutcome<T> {
  code: grpc.status;
  details: string;
  response?: T;
}

/** Calls Identity/Register and returns the status instead of throwing. */
export function register(
  address: string,
  tls: ClientTls,
  req: { cluster: string; token: string; csrPem: string },
): Promise<CallOutcome<{ certificatePem: string }>> {
  const { Identity } = loadFlotillaProto();
  const client = new Identity(address, credentials(tls)) as unknown as IdentityClient;
  return new Promise((resolve) => {
    client.Register({ ...req, natsPublicKey: '' }, (err, res) => {
      client.close();
      if (err) resolve({ code: err.code, details: err.details });
      else
        resolve({
          code: grpc.status.OK,
          details: '',
          response: { certificatePem: res?.certificatePem ?? '' },
        });
    });
  });
}

/** Calls FleetService/ListClusters with the given TLS material and bearer token; the status instead of a throw. */
export function listClusters(
  address: string,
  tls: ClientTls,
  bearer?: string,
): Promise<CallOutcome<{ names: string[] }>> {
  const { FleetService } = loadFlotillaProto();
  const client = new FleetService(address, credentials(tls)) as unknown as FleetServiceClient;
  const md = new grpc.Metadata();
  if (bearer) md.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) => {
    client.ListClusters({}, md, (err, res) => {
      client.close();
      if (err) resolve({ code: err.code, details: err.details });
      else
        resolve({
          code: grpc.status.OK,
          details: '',
          response: { names: (res?.clusters ?? []).map((c) => c.name) },
        });
    });
  });
}

/** What one AgentStream session showed the client. */
export interface StreamOutcome {
  code: grpc.status;
  details: string;
  received: HubMessage__Output[];
}

/** Opens AgentStream/Connect, says hello as `cluster`, and records everything until the stream ends or waitMs passes. */
export function openStream(
  address: string,
  tls: ClientTls,
  cluster: string,
  waitMs = 3_000,
): Promise<StreamOutcome> {
  const { AgentStream } = loadFlotillaProto();
  const client = new AgentStream(address, credentials(tls)) as unknown as AgentStreamClient;
  const call = client.Connect();
  const received: HubMessage__Output[] = [];
  return new Promise((resolve) => {
    let done = false;
    const finish = (code: grpc.status, details: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      call.cancel();
      client.close();
      resolve({ code, details, received });
    };
    const timer = setTimeout(() => finish(grpc.status.OK, 'still open'), waitMs);
    call.on('data', (m: HubMessage__Output) => received.push(m));
    call.on('error', (err: grpc.ServiceError) => finish(err.code, err.details));
    call.on('end', () => finish(grpc.status.OK, 'ended'));
    call.write({
      hello: {
        cluster,
        agentVersion: 'test',
        appliedDigest: '',
        appliedRevision: '',
        protocolVersion: PROTOCOL_VERSION,
      },
    });
  });
}

/** Reads the agent's identity Secret (flotilla-system/flotilla-identity) from a cluster. */
export async function readAgentIdentity(
  kubeconfigPath: string,
): Promise<
  { keyPem: string; certPem: string; caPem: string; natsJwt: string; natsSeed: string } | undefined
> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  try {
    const s = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: 'flotilla-identity', namespace: 'flotilla-system' });
    const d = (k: string): string => Buffer.from(s.data?.[k] ?? '', 'base64').toString('utf8');
    return {
      keyPem: d('tls.key'),
      certPem: d('tls.crt'),
      caPem: d('ca.crt'),
      natsJwt: d('nats.jwt'),
      natsSeed: d('nats.seed'),
    };
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}
