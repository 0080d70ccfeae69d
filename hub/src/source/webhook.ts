// Push webhooks: `POST /api/v1/webhooks/<source>` makes that source fetch now instead of
// at its next poll. GitHub, Gitea and GitLab push payloads are recognized by their
// headers; every request must prove it knows the source's shared secret (GitHub and
// Gitea: HMAC-SHA256 of the body; GitLab: the token itself), compared in constant time.
// A payload for another repository is refused; a push to a ref the source does not
// follow is accepted and ignored.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import {
  ConfigError,
  FlotillaError,
  LogFields,
  NotFoundError,
  TooLargeError,
  ValidationError,
} from '@flotilla/common';
import type { Logger } from '@flotilla/common';

/** Largest accepted webhook body (1 MiB): push payloads are a few KiB; GitHub caps them at 25 MB. */
export const WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;

/** What a webhook needs from one source (GitSource plus its configured secret). */
export interface WebhookTarget {
  /** Repository URL the source fetches (credentials stripped). */
  readonly url: string;
  /** Shared secret of this source's webhook. */
  readonly secret: string;
  /** True when a push of this ref may change what the source follows. */
  followsPushedRef(ref: string): boolean;
  /** Fetch now. */
  triggerNow(): void;
}

/** Looks up the webhook target of a source by name; undefined when it has no webhook. */
export type WebhookTargets = (source: string) => WebhookTarget | undefined;

/** A Git hosting service whose push payloads we understand. */
export type WebhookProvider = 'github' | 'gitea' | 'gitlab';

/** Answer to a webhook request: HTTP status and JSON body. */
export interface WebhookResponse {
  status: number;
  body: unknown;
}

/** The handler behind `POST /api/v1/webhooks/<source>`. */
export class WebhookHandler {
  constructor(
    private readonly targets: WebhookTargets,
    private readonly log: Logger,
    private readonly maxBodyBytes = WEBHOOK_MAX_BODY_BYTES,
  ) {}

  /** Reads and checks one request; never throws (errors become 4xx answers). */
  async handle(req: IncomingMessage, source: string): Promise<WebhookResponse> {
    try {
      const target = this.targets(source);
      if (!target) throw new NotFoundError('webhook for source', source);
      const body = await readBody(req, this.maxBodyBytes);
      return this.receive(source, target, req.headers, body);
    } catch (err) {
      const e =
        err instanceof FlotillaError
          ? err
          : new ValidationError(`cannot read the request: ${(err as Error).message}`);
      const status =
        { UNAUTHENTICATED: 401, NOT_FOUND: 404, TOO_LARGE: 413 }[e.code as string] ??
        (e.code === 'VALIDATION_FAILED' ? 400 : 500);
      this.log.warn(
        { [LogFields.source]: source, code: e.code, [LogFields.err]: e.message },
        'webhook refused',
      );
      return { status, body: { error: { code: e.code, message: e.message } } };
    }
  }

  /** Checks an already-read request against a target; throws FlotillaError for a refusal. */
  receive(
    source: string,
    target: WebhookTarget,
    headers: IncomingHttpHeaders,
    body: Buffer,
  ): WebhookResponse {
    const provider = detectProvider(headers);
    authenticateWebhook(provider, headers, body, target.secret);
    const event = eventName(provider, headers);
    if (event === 'ping') return { status: 200, body: { triggered: false, reason: 'ping' } };
    if (!isPushEvent(provider, event)) {
      return {
        status: 202,
        body: { triggered: false, reason: `event "${event}" is not a push; ignored` },
      };
    }
    const push = parsePush(body);
    if (!push.urls.some((u) => sameRepository(u, target.url))) {
      throw new ValidationError(
        `payload is for repository ${push.urls[0] ?? '(none)'}, but source "${source}" fetches ${stripCredentials(target.url)}`,
      );
    }
    if (!target.followsPushedRef(push.ref)) {
      return {
        status: 202,
        body: { triggered: false, reason: `source "${source}" does not follow ${push.ref}` },
      };
    }
    target.triggerNow();
    this.log.info({ [LogFields.source]: source, provider, ref: push.ref }, 'webhook: fetching now');
    return { status: 202, body: { triggered: true, source, ref: push.ref } };
  }
}

/** Reads a request body up to `limit` bytes; a larger one is a TOO_LARGE error. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    throw new TooLargeError('webhook body', declared, limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new TooLargeError('webhook body', size, limit);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Which service sent the request. Gitea also sends GitHub's headers, so it is checked first. */
export function detectProvider(headers: IncomingHttpHeaders): WebhookProvider {
  if (header(headers, 'x-gitea-event') !== undefined) return 'gitea';
  if (header(headers, 'x-gitlab-event') !== undefined) return 'gitlab';
  if (header(headers, 'x-github-event') !== undefined) return 'github';
  throw new ValidationError(
    'unknown webhook sender: expected an X-GitHub-Event, X-Gitea-Event or X-Gitlab-Event header',
  );
}

function eventName(provider: WebhookProvider, headers: IncomingHttpHeaders): string {
  const name = { github: 'x-github-event', gitea: 'x-gitea-event', gitlab: 'x-gitlab-event' }[
    provider
  ];
  return header(headers, name) ?? '';
}

function isPushEvent(provider: WebhookProvider, event: string): boolean {
  if (provider === 'gitlab') return event === 'Push Hook' || event === 'Tag Push Hook';
  return event === 'push'; // a tag push also arrives as "push"; "create" carries no full ref
}

/** Checks a delivery's signature (GitHub, Gitea) or token (GitLab); throws UNAUTHENTICATED. */
export function authenticateWebhook(
  provider: WebhookProvider,
  headers: IncomingHttpHeaders,
  body: Buffer,
  secret: string,
): void {
  if (provider === 'gitlab') {
    const token = header(headers, 'x-gitlab-token');
    if (token === undefined) throw unauthenticated('missing X-Gitlab-Token header');
    if (!constantTimeEqual(Buffer.from(token), Buffer.from(secret)))
      throw unauthenticated('X-Gitlab-Token does not match');
    return;
  }
  const expected = createHmac('sha256', secret).update(body).digest();
  const name = provider === 'github' ? 'x-hub-signature-256' : 'x-gitea-signature';
  const given = header(headers, name);
  if (given === undefined) throw unauthenticated(`missing ${name} header`);
  const hex = provider === 'github' ? given.replace(/^sha256=/, '') : given;
  if (!/^[0-9a-fA-F]{64}$/.test(hex) || !constantTimeEqual(Buffer.from(hex, 'hex'), expected)) {
    throw unauthenticated(`${name} does not match the body (wrong secret?)`);
  }
}

function unauthenticated(message: string): FlotillaError {
  return new FlotillaError('UNAUTHENTICATED', `webhook: ${message}`);
}

function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  // timingSafeEqual needs equal lengths; comparing digests keeps the time independent of the input.
  const da = createHmac('sha256', 'cmp').update(a).digest();
  const db = createHmac('sha256', 'cmp').update(b).digest();
  return timingSafeEqual(da, db);
}

interface Push {
  ref: string;
  /** Every URL the payload gives for the repository (clone, web, ssh). */
  urls: string[];
}

/** Reads ref and repository URLs from a GitHub, Gitea or GitLab push payload. */
export function parsePush(body: Buffer): Push {
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ValidationError(
      'webhook body is not JSON (configure the webhook with content type application/json)',
    );
  }
  if (typeof payload !== 'object' || payload === null)
    throw new ValidationError('webhook body is not a JSON object');
  const p = payload as Record<string, unknown>;
  if (typeof p.ref !== 'string' || !p.ref.startsWith('refs/'))
    throw new ValidationError('push payload has no "ref" (refs/heads/… or refs/tags/…)');
  const urls: string[] = [];
  for (const key of ['repository', 'project']) {
    const repo = p[key];
    if (typeof repo !== 'object' || repo === null) continue;
    for (const field of [
      'clone_url',
      'html_url',
      'git_http_url',
      'web_url',
      'homepage',
      'url',
      'ssh_url',
      'git_ssh_url',
    ]) {
      const v = (repo as Record<string, unknown>)[field];
      if (typeof v === 'string' && v !== '') urls.push(v);
    }
  }
  if (urls.length === 0)
    throw new ValidationError(
      'push payload names no repository URL (repository.clone_url or project.git_http_url)',
    );
  return { ref: p.ref, urls };
}

/** Same repository when host (case-insensitive) and path (without ".git" and slashes) agree. */
export function sameRepository(a: string, b: string): boolean {
  const key = (u: string): string | undefined => {
    const scp = /^[^@/]+@([^:/]+):(.+)$/.exec(u); // git@host:owner/repo.git
    let host: string;
    let path: string;
    if (scp) {
      host = scp[1] as string;
      path = scp[2] as string;
    } else {
      try {
        const url = new URL(u);
        host = url.hostname;
        path = url.pathname;
      } catch {
        return undefined;
      }
    }
    return `${host.toLowerCase()}/${path.replace(/^\/+|\/+$/g, '').replace(/\.git$/, '')}`;
  };
  const ka = key(a);
  return ka !== undefined && ka === key(b);
}

function stripCredentials(url: string): string {
  return url.replace(/^(https?:\/\/)[^@/]*@/, '$1');
}

/** Reads a webhook secret from a file or an environment variable; errors name `field`, never the value. */
export async function readWebhookSecret(
  from: { secretFile?: string; secretEnv?: string },
  field: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  let value: string | undefined;
  if (from.secretFile) {
    try {
      value = (await readFile(from.secretFile, 'utf8')).trim();
    } catch (err) {
      throw new ConfigError(
        `${field}.secretFile`,
        `cannot read ${from.secretFile}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  } else if (from.secretEnv) {
    value = env[from.secretEnv]?.trim();
    if (!value)
      throw new ConfigError(
        `${field}.secretEnv`,
        `environment variable ${from.secretEnv} is not set`,
      );
  }
  if (!value) throw new ConfigError(field, 'the webhook secret is empty');
  return value;
}
