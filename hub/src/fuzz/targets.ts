// Fuzz targets: every parser of input from outside the hub (the fleet repo, agents, Git
// hosts, NATS advisories, the hub's own stream as an agent reads it). Each target pairs a
// generator of hostile input with a check that the parser either returns or refuses with
// one of its own typed errors: any other exception (TypeError, RangeError, a stack
// overflow), a prototype polluted, or a broken invariant is a crash found. Generators mix
// random bytes with inputs shaped like the real thing, so the fuzzer gets past the first
// check of each parser.
import { createHmac } from 'node:crypto';
import { posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import { ChunkAssembler, decodeDesiredState } from '@flotilla/agent';
import {
  FlotillaError,
  createEvent,
  parseEvent,
  parseSelector,
  silentLogger,
} from '@flotilla/common';
import type { EventKind } from '@flotilla/common';
import { clusterOfAgentJwt, violationOf } from '../identity/nats-violations.js';
import { applyJsonPatch, mergePatch } from '../render/patch.js';
import type { JsonPatchOp } from '../render/patch.js';
import { parseBundle, parseCluster, parseClusterGroup } from '../render/spec.js';
import { compileTemplate, fillValue } from '../render/vars.js';
import { parseAllowedSigners } from '../source/allowed-signers.js';
import { checkTreePath, treePathProblem } from '../source/tree-paths.js';
import {
  SshFormatError,
  SshUnsupportedError,
  parseSshSignature,
  verifySshSignature,
} from '../source/sshsig.js';
import { authenticateWebhook, parsePush } from '../source/webhook.js';
import { FleetStatus } from '../status/fleet-status.js';
import { readApplied, readDrift, readDropped, readHealth } from '../status/event-data.js';

/** One parser under fuzz: a generator and a check of one input. */
export interface FuzzTarget<T = unknown> {
  name: string;
  /** What it covers, for the program's table. */
  covers: string;
  arbitrary: fc.Arbitrary<T>;
  /** Throws when the parser misbehaved on `input`. */
  check(input: T): void;
}

/** An exception the parser must never throw: not one of its typed refusals. */
export class FuzzCrash extends Error {}

/** Runs fn; a typed refusal (FlotillaError or one of `allowed`) is fine, anything else is a crash. */
function refusesCleanly(
  fn: () => unknown,
  allowed: readonly (abstract new (...args: never[]) => Error)[] = [],
): unknown {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FlotillaError) return undefined;
    if (allowed.some((c) => err instanceof c)) return undefined;
    throw new FuzzCrash(
      `unexpected ${err instanceof Error ? err.constructor.name : typeof err}: ${
        err instanceof Error ? err.message : String(err)
      }`.slice(0, 500),
      { cause: err },
    );
  }
}

/** A polluted Object.prototype is the worst a merge or patch of hostile JSON can do. */
function assertPrototypeClean(): void {
  const probe = {} as Record<string, unknown>;
  for (const k of ['polluted', 'isAdmin', 'x']) {
    if (k in probe) {
      delete (Object.prototype as Record<string, unknown>)[k];
      throw new FuzzCrash(`Object.prototype.${k} was set`);
    }
  }
}

// Pieces of hostile text: structure characters, YAML's special forms, placeholders.
const TOKENS = [
  '${',
  '}',
  '$${',
  '${cluster.name}',
  '${cluster.labels.env}',
  '${vars.x}',
  '__flotilla_var_0__',
  '\u0001',
  '&a',
  '*a',
  '<<: *a',
  '!!binary',
  '!!js/function',
  '!!python/object',
  '---',
  '...',
  ': ',
  '- ',
  '\n',
  '  ',
  '#',
  '"',
  "'",
  '{',
  '[',
  ']',
  '|',
  '>',
  '%YAML 1.2',
  '\t',
  '\u0000',
  '\uFEFF',
  '\uD800',
  '__proto__',
  'constructor',
  'prototype',
  'in (',
  'notin (',
  ',',
  '!',
  '=',
  '==',
  '!=',
];
const token = fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 }));
const hostileText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.array(token, { maxLength: 40 }).map((a) => a.join('')),
);
const jsonValue = fc.jsonValue({ maxDepth: 4 });
const keyish = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'polluted', 'isAdmin', 'x'),
  fc.string({ maxLength: 10 }),
);
const hostileObject = fc.dictionary(keyish, jsonValue, { maxKeys: 6 });

// Fleet repo documents shaped like Bundles and Clusters, with fields of the wrong type,
// unknown fields, aliases and tags mixed in.
const bundleSpec = fc.record(
  {
    source: fc.oneof(fc.record({ path: fc.string({ maxLength: 20 }) }), jsonValue),
    namespace: fc.oneof(fc.string({ maxLength: 70 }), jsonValue),
    targets: fc.oneof(
      fc.array(
        fc.record(
          {
            clusterSelector: fc.oneof(
              fc.record({ matchLabels: hostileObject }),
              fc.record({
                matchExpressions: fc.array(
                  fc.record({
                    key: fc.string({ maxLength: 10 }),
                    operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist', 'Bogus'),
                    values: fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
                  }),
                  { maxLength: 3 },
                ),
              }),
              jsonValue,
            ),
            clusterGroup: fc.string({ maxLength: 10 }),
            clusterName: fc.string({ maxLength: 10 }),
            vars: hostileObject,
            patches: fc.array(jsonValue, { maxLength: 3 }),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 4 },
      ),
      jsonValue,
    ),
    helm: fc.oneof(
      fc.record(
        {
          chart: fc.string({ maxLength: 20 }),
          repo: fc.string({ maxLength: 30 }),
          version: fc.string({ maxLength: 10 }),
          values: hostileObject,
        },
        { requiredKeys: [] },
      ),
      jsonValue,
    ),
    kustomize: fc.oneof(fc.record({ dir: fc.string({ maxLength: 20 }) }), jsonValue),
    dependsOn: fc.oneof(fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }), jsonValue),
    rollout: fc.oneof(
      fc.record(
        {
          stages: fc.array(
            fc.record(
              {
                name: fc.string({ maxLength: 8 }),
                maxConcurrent: fc.oneof(fc.integer(), fc.string({ maxLength: 5 })),
                maxFailures: fc.oneof(fc.integer(), fc.string({ maxLength: 5 })),
                soak: fc.string({ maxLength: 6 }),
                approval: fc.string({ maxLength: 9 }),
              },
              { requiredKeys: [] },
            ),
            { maxLength: 4 },
          ),
          onFailure: fc.string({ maxLength: 9 }),
          progressDeadline: fc.string({ maxLength: 6 }),
        },
        { requiredKeys: [] },
      ),
      jsonValue,
    ),
    substitute: fc.oneof(fc.boolean(), jsonValue),
    createNamespace: fc.oneof(fc.boolean(), jsonValue),
  },
  { requiredKeys: [] },
);
const fleetDocument = fc
  .record({
    kind: fc.constantFrom('Bundle', 'Cluster', 'ClusterGroup', 'Other'),
    name: fc.oneof(fc.constantFrom('app', 'edge-1'), fc.string({ maxLength: 70 })),
    labels: hostileObject,
    spec: fc.oneof(bundleSpec, hostileObject),
    extra: fc.oneof(fc.constant(''), hostileText),
  })
  .map(({ kind, name, labels, spec, extra }) => {
    const doc = {
      apiVersion: 'flotilla.dev/v1alpha1',
      kind,
      metadata: { name, labels },
      spec,
    };
    let text: string;
    try {
      text = dump(doc, { noRefs: true, skipInvalid: true });
    } catch {
      text = JSON.stringify(doc);
    }
    return { kind, name, text: `${text}${extra}` };
  });

// SSH signatures: armored SSHSIG blobs with well-formed wire framing around random fields.
const wire = (b: Uint8Array): Buffer => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, Buffer.from(b)]);
};
const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const keyBlob = fc.oneof(
  bytes(80),
  fc
    .tuple(
      fc.constantFrom(
        'ssh-ed25519',
        'ecdsa-sha2-nistp256',
        'ecdsa-sha2-nistp384',
        'ssh-rsa',
        'sk-ssh-ed25519@openssh.com',
        'ssh-ed25519-cert-v01@openssh.com',
        'ssh-dss',
      ),
      fc.array(bytes(70), { maxLength: 3 }),
    )
    .map(([t, parts]) => Buffer.concat([wire(Buffer.from(t)), ...parts.map(wire)])),
);
const sshSignatureText = fc.oneof(
  hostileText,
  fc
    .tuple(
      fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 3 })),
      keyBlob,
      fc.constantFrom('git', 'file', ''),
      bytes(4),
      fc.constantFrom('sha256', 'sha512', 'md5', ''),
      fc.oneof(
        bytes(80),
        fc
          .tuple(fc.constantFrom('ssh-ed25519', 'rsa-sha2-256', 'ecdsa-sha2-nistp256'), bytes(72))
          .map(([t, s]) => Buffer.concat([wire(Buffer.from(t)), wire(s)])),
      ),
      fc.boolean(),
    )
    .map(([version, key, ns, reserved, hash, sig, truncate]) => {
      const v = Buffer.alloc(4);
      v.writeUInt32BE(version);
      let blob = Buffer.concat([
        Buffer.from('SSHSIG'),
        v,
        wire(key),
        wire(Buffer.from(ns)),
        wire(reserved),
        wire(Buffer.from(hash)),
        wire(sig),
      ]);
      if (truncate) blob = blob.subarray(0, Math.floor(blob.length / 2));
      const b64 = blob.toString('base64').replace(/(.{70})/g, '$1\n');
      return `-----BEGIN SSH SIGNATURE-----\n${b64}\n-----END SSH SIGNATURE-----\n`;
    }),
);

// Agent events: valid envelopes with hostile data, and hostile envelopes.
const EVENT_KINDS: EventKind[] = [
  'applied',
  'apply-failed',
  'drift-detected',
  'drift-corrected',
  'health-changed',
  'events-dropped',
];
const appliedLike = fc.record(
  {
    revision: fc.oneof(fc.string({ maxLength: 41 }), jsonValue),
    digest: fc.oneof(fc.string({ maxLength: 20 }), jsonValue),
    generation: fc.oneof(fc.integer(), jsonValue),
    result: fc.constantFrom('applied', 'partial', 'failed', 'waiting', 'bogus'),
    durationMs: fc.oneof(fc.integer(), fc.double()),
    message: fc.oneof(fc.string({ maxLength: 50 }), jsonValue),
    bundles: fc.oneof(
      fc.array(
        fc.record(
          {
            name: fc.oneof(fc.string({ maxLength: 20 }), jsonValue),
            digest: fc.string({ maxLength: 10 }),
            created: fc.oneof(fc.integer(), fc.double(), jsonValue),
            failed: fc.oneof(fc.nat(), jsonValue),
            failures: fc.oneof(fc.array(fc.string({ maxLength: 30 }), { maxLength: 4 }), jsonValue),
            waiting: fc.oneof(hostileObject, jsonValue),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 4 },
      ),
      jsonValue,
    ),
    bundle: fc.oneof(fc.string({ maxLength: 20 }), jsonValue),
    object: fc.oneof(hostileObject, jsonValue),
    changes: fc.oneof(fc.array(hostileObject, { maxLength: 4 }), jsonValue),
    state: fc.constantFrom('Ready', 'Degraded', 'Progressing', 'Failed', 'bogus'),
    counts: fc.oneof(hostileObject, jsonValue),
    reasons: fc.oneof(fc.array(fc.string({ maxLength: 30 }), { maxLength: 4 }), jsonValue),
    dropped: fc.oneof(fc.integer(), jsonValue),
  },
  { requiredKeys: [] },
);

function fuzzStatus(): FleetStatus {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  status.setFleet([
    { name: 'edge-1', labels: { env: 'prod' }, desired: { revision: 'r'.repeat(40), digest: 'd' } },
  ]);
  return status;
}

/** Every target, in a stable order (the program and the test run them all). */
export function fuzzTargets(): FuzzTarget<never>[] {
  const status = fuzzStatus();
  const targets: FuzzTarget<never>[] = [];
  const add = <T>(t: FuzzTarget<T>): void => {
    targets.push(t as unknown as FuzzTarget<never>);
  };

  add({
    name: 'label-selector',
    covers: 'parseSelector (CLI -l, API ?selector=, token scopes)',
    arbitrary: hostileText,
    check(text) {
      const sel = refusesCleanly(() => parseSelector(text)) as
        ReturnType<typeof parseSelector> | undefined;
      if (sel) refusesCleanly(() => sel.matches({ env: 'prod', [text.slice(0, 10)]: text }));
    },
  });

  add({
    name: 'fleet-documents',
    covers: 'Bundle, Cluster and ClusterGroup documents of the fleet repo (YAML)',
    arbitrary: fc.oneof(
      fleetDocument,
      hostileText.map((text) => ({ kind: 'Bundle', name: 'app', text })),
    ),
    check({ kind, name, text }) {
      const file = `bundles/${name}/bundle.yaml`;
      if (kind === 'Cluster') refusesCleanly(() => parseCluster(text, file, name));
      else if (kind === 'ClusterGroup') refusesCleanly(() => parseClusterGroup(text, file, name));
      else refusesCleanly(() => parseBundle(text, file, name));
      assertPrototypeClean();
    },
  });

  add({
    name: 'variables',
    covers: '${...} substitution: templates and filling',
    arbitrary: fc.tuple(hostileText, hostileObject, hostileObject),
    check([text, labels, vars]) {
      const t = refusesCleanly(() => compileTemplate(text, 'bundles/app/cm.yaml')) as
        ReturnType<typeof compileTemplate> | undefined;
      if (!t) return;
      const str = (o: Record<string, unknown>) =>
        Object.fromEntries(Object.entries(o).map(([k, v]) => [k, JSON.stringify(v) ?? '']));
      refusesCleanly(() =>
        fillValue({ data: { a: t.text, b: [t.text] } }, t, 'bundles/app/cm.yaml', {
          clusterName: 'edge-1',
          labels: str(labels),
          vars: str(vars),
        }),
      );
      assertPrototypeClean();
    },
  });

  // Operations as the spec parser lets them through (its refusals are fuzzed with the
  // fleet documents): a known op, pointers, `from` for move and copy; hostile content.
  const pointer = fc.oneof(
    fc
      .array(fc.oneof(keyish, fc.constantFrom('-', '0', '1', '~0', '~1', '')), { maxLength: 4 })
      .map((parts) => `/${parts.join('/')}`),
    fc.constant(''),
  );
  const op = fc.record({
    op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test'),
    path: pointer,
    from: pointer,
    value: jsonValue,
  });
  add({
    name: 'patches',
    covers: 'JSON patches and merge patches of targets',
    arbitrary: fc.tuple(jsonValue, fc.array(op, { maxLength: 5 }), jsonValue),
    check([doc, ops, merge]) {
      const before = JSON.stringify(doc);
      try {
        applyJsonPatch(doc, ops as unknown as JsonPatchOp[]);
      } catch (err) {
        // Its refusals are plain Errors naming the operation (applyPatches adds file:line),
        // caused by plain Errors; a TypeError inside is a crash.
        const cause = err instanceof Error ? err.cause : undefined;
        if (!(
          err instanceof Error &&
          err.constructor === Error &&
          cause instanceof Error &&
          cause.constructor === Error
        ))
          throw new FuzzCrash(`unexpected ${String(cause ?? err)}`, { cause: err });
      }
      refusesCleanly(() => mergePatch(doc, merge));
      if (JSON.stringify(doc) !== before)
        throw new FuzzCrash('the patched document was changed in place');
      assertPrototypeClean();
    },
  });

  add({
    name: 'desired-state-chunks',
    covers: "the agent's chunk reassembly, gunzip and verification of desired states",
    arbitrary: fc.tuple(
      fc.array(
        fc.record({
          generation: fc.integer({ min: 0, max: 3 }),
          digest: fc.constantFrom('sha256:a', 'sha256:b'),
          revision: fc.constant('r'),
          index: fc.integer({ min: -1, max: 3 }),
          total: fc.integer({ min: -1, max: 3 }),
          data: bytes(64),
          compressedSize: fc.integer({ min: -1, max: 200 }),
        }),
        { maxLength: 6 },
      ),
      fc.oneof(
        bytes(200),
        jsonValue.map((v) => gzipSync(JSON.stringify(v))),
        hostileObject.map((o) =>
          gzipSync(JSON.stringify({ cluster: 'edge-1', revision: 'r', bundles: [o], ...o })),
        ),
      ),
    ),
    check([chunks, payload]) {
      const assembler = new ChunkAssembler();
      for (const c of chunks) {
        const whole = refusesCleanly(() => assembler.add(c)) as
          { generation: number; digest: string; revision: string; payload: Buffer } | undefined;
        if (whole) refusesCleanly(() => decodeDesiredState(whole, 'edge-1'));
      }
      refusesCleanly(() =>
        decodeDesiredState(
          { generation: 1, digest: 'sha256:x', revision: 'r', payload: Buffer.from(payload) },
          'edge-1',
        ),
      );
    },
  });

  const SECRET = 'webhook-secret';
  add({
    name: 'webhooks',
    covers: 'push payloads and signatures (GitHub, Gitea, GitLab)',
    arbitrary: fc.tuple(
      fc.oneof(
        bytes(200).map((b) => Buffer.from(b)),
        fc
          .record(
            {
              ref: fc.oneof(fc.constantFrom('refs/heads/main', 'refs/tags/v1'), jsonValue),
              repository: fc.oneof(
                fc.record({ clone_url: fc.string({ maxLength: 30 }), html_url: jsonValue }),
                jsonValue,
              ),
              project: hostileObject,
            },
            { requiredKeys: [] },
          )
          .map((p) => Buffer.from(JSON.stringify(p))),
      ),
      fc.constantFrom('github', 'gitea', 'gitlab'),
      fc.oneof(fc.constant('valid'), fc.string({ maxLength: 80 })),
    ),
    check([body, provider, given]) {
      refusesCleanly(() => parsePush(body));
      const hex = createHmac('sha256', SECRET).update(body).digest('hex');
      const valid = provider === 'gitlab' ? SECRET : provider === 'github' ? `sha256=${hex}` : hex;
      const name =
        provider === 'gitlab'
          ? 'x-gitlab-token'
          : provider === 'github'
            ? 'x-hub-signature-256'
            : 'x-gitea-signature';
      const sig = given === 'valid' ? valid : given;
      let accepted = true;
      try {
        authenticateWebhook(provider, { [name]: sig }, body, SECRET);
      } catch (err) {
        if (!(err instanceof FlotillaError)) throw new FuzzCrash(`unexpected ${String(err)}`);
        accepted = false;
      }
      // The property that matters: accepted exactly when the signature is the right one.
      const right =
        sig === valid || (provider !== 'gitlab' && sig.toLowerCase() === valid.toLowerCase());
      if (accepted !== right)
        throw new FuzzCrash(
          `signature ${JSON.stringify(sig)} ${accepted ? 'accepted' : 'refused'}`,
        );
    },
  });

  add({
    name: 'ssh-signatures',
    covers: 'SSHSIG armor and wire format, public key blobs, allowed_signers',
    arbitrary: fc.tuple(sshSignatureText, hostileText),
    check([armored, signers]) {
      const sig = refusesCleanly(() => parseSshSignature(armored), [SshFormatError]) as
        ReturnType<typeof parseSshSignature> | undefined;
      if (sig) {
        const ok = refusesCleanly(
          () => verifySshSignature(sig, Buffer.from('commit')),
          [SshFormatError, SshUnsupportedError],
        );
        // Random bytes never make a valid signature of a message they did not sign.
        if (ok === true) throw new FuzzCrash('a random signature verified');
      }
      refusesCleanly(() => parseAllowedSigners(signers, 'sshAllowedSigners[0]'));
      refusesCleanly(() =>
        parseAllowedSigners(`edge@example.com ${armored.slice(0, 200)}`, 'sshAllowedSigners[0]'),
      );
    },
  });

  add({
    name: 'nats-jwt',
    covers: 'agent user JWTs named in NATS disconnect advisories',
    arbitrary: fc.oneof(
      hostileText,
      fc
        .tuple(hostileObject, fc.string({ maxLength: 20 }))
        .map(([payload, sig]) =>
          [
            Buffer.from('{"typ":"JWT","alg":"ed25519-nkey"}').toString('base64url'),
            Buffer.from(JSON.stringify(payload)).toString('base64url'),
            sig,
          ].join('.'),
        ),
      fc
        .record({ name: fc.oneof(fc.constant('agent-edge-1'), fc.string({ maxLength: 80 })) })
        .map((p) => `x.${Buffer.from(JSON.stringify(p)).toString('base64url')}.y`),
    ),
    check(jwt) {
      const cluster = clusterOfAgentJwt(jwt);
      if (cluster !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(cluster))
        throw new FuzzCrash(`cluster name ${JSON.stringify(cluster)} from a JWT`);
      violationOf({ reason: 'Maximum Payload Violation', client: { jwt } });
      violationOf(jwt);
    },
  });

  add({
    name: 'agent-events',
    covers: 'CloudEvents from agents: envelope, data readers, folding into status',
    arbitrary: fc.oneof(
      fc.tuple(fc.constantFrom(...EVENT_KINDS), appliedLike).map(([kind, data]) => {
        const e = createEvent('edge-1', kind, data);
        return JSON.stringify(e);
      }),
      fc
        .tuple(fc.constantFrom(...EVENT_KINDS), hostileObject, appliedLike)
        .map(([kind, envelope, data]) =>
          JSON.stringify({ ...createEvent('edge-1', kind, data), ...envelope }),
        ),
      hostileText,
    ),
    check(text) {
      const parsed = refusesCleanly(() => parseEvent(text)) as
        ReturnType<typeof parseEvent> | undefined;
      if (!parsed) return;
      const data = parsed.event.data;
      refusesCleanly(() => readApplied(data));
      refusesCleanly(() => readDrift(data));
      refusesCleanly(() => readHealth(data));
      refusesCleanly(() => readDropped(data));
      refusesCleanly(() => status.foldEvent(parsed.kind, parsed.event));
      refusesCleanly(() => status.get('edge-1'));
      assertPrototypeClean();
    },
  });

  // Segments a hostile Git tree could hold, mixed with plain ones.
  const segment = fc.oneof(
    fc.constantFrom(
      '..',
      '.',
      '',
      '.git',
      '.GIT',
      '.git. ',
      'git~1',
      '.g\u200cit',
      '.git::$INDEX_ALLOCATION',
      'a\\..\\b',
      'a\u0000b',
      'x\ny',
      'bundles',
      'web',
      'kustomization.yaml',
      '.gitignore',
    ),
    fc.string({ maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 8 }),
  );
  add({
    name: 'git-tree-paths',
    covers: 'treePathProblem / checkTreePath (every Git tree entry before it is stored or written)',
    arbitrary: fc.oneof(
      fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => s.join('/')),
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`),
      hostileText,
    ),
    check(path) {
      const problem = treePathProblem(path);
      refusesCleanly(() => checkTreePath(path));
      if (problem !== undefined) return;
      // Accepted: it must stay inside any directory it is joined to, and be no .git.
      const base = '/srv/flotilla-run';
      if (!posix.join(base, path).startsWith(`${base}/`) || posix.normalize(path) !== path)
        throw new FuzzCrash(`accepted a path that leaves its directory: ${JSON.stringify(path)}`);
      for (const name of path.split('/'))
        if (
          /[\\\u0000-\u001f]/.test(name) ||
          name
            .replace(/[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g, '')
            .toLowerCase()
            .replace(/[. ]+$/, '') === '.git'
        )
          throw new FuzzCrash(`accepted a hostile name: ${JSON.stringify(path)}`);
    },
  });

  return targets;
}
