// The last good rendering survives a restart in a file, and a file that cannot be trusted
// is ignored (logged), never served and never a crash.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createLogger } from '@flotilla/common';
import type { DesiredState } from '@flotilla/common';
import { LastRenderingFile } from './last-rendering.js';
import type { SavedRenderingContent } from './last-rendering.js';
import { configMap, desiredState } from '../stream/fixtures.js';

const source = { name: 'fleet', url: 'https://git.example/fleet.git', ref: 'main', path: '' };

function rendering(): SavedRenderingContent {
  const clusters = new Map<string, DesiredState>();
  for (const name of ['eu-1', 'eu-2', 'us-1'])
    clusters.set(name, desiredState(name, 'a'.repeat(40), [configMap('shared', 64)]));
  return {
    revision: 'a'.repeat(40),
    clusters,
    labels: new Map<string, Record<string, string>>([
      ['eu-1', { region: 'eu' }],
      ['eu-2', { region: 'eu' }],
      ['us-1', { region: 'us' }],
      ['broken', {}],
    ]),
    errors: [{ message: 'bundles/web/bundle.yaml:3: bad', bundle: 'web' }],
    failures: new Map([['eu-1', [{ bundle: 'web', messages: ['bad'], servingRevision: '' }]]]),
    rollouts: new Map([
      [
        'app',
        {
          bundle: 'app',
          strategy: undefined,
          stageOf: new Map([['eu-1', 0]]),
          paused: ['us-1'],
        },
      ],
    ]),
  };
}

function logged(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    name: 'test',
    level: 'debug',
    destination: { write: (l: string) => lines.push(l) > 0 } as unknown as NodeJS.WritableStream,
  });
  return { logger, lines };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-last-rendering-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a-save-encodes-nothing-until-its-delay-and-flush-writes-it-at-once', () =>
  withDir(async (dir) => {
    const file = new LastRenderingFile({
      dir,
      source,
      logger: logged().logger,
      saveDelayMs: 60_000,
    });
    // The fan-out of a rendering runs in the turns after it is saved: the save must not
    // serialize the fleet before them.
    let reads = 0;
    const r = rendering();
    const clusters = r.clusters;
    Object.defineProperty(r, 'clusters', { get: () => (reads++, clusters) });
    file.save(r);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reads, 0, 'nothing encoded by save() or in the next turns');
    await assert.rejects(readFile(file.path), { code: 'ENOENT' });
    await file.flush();
    assert.ok(reads > 0);
    assert.deepEqual([...((await file.load())?.rendering.clusters ?? [])], [...clusters]);
  }));

test('a-saved-rendering-reads-back-with-the-same-states-digests-labels-and-plans', () =>
  withDir(async (dir) => {
    const file = new LastRenderingFile({ dir, source, logger: logged().logger });
    const r = rendering();
    file.save(r);
    await file.flush();
    const loaded = await file.load();
    assert.ok(loaded);
    assert.deepEqual([...loaded.rendering.clusters], [...r.clusters]);
    assert.deepEqual([...loaded.rendering.labels], [...(r.labels as Map<string, object>)]);
    assert.equal(loaded.rendering.revision, r.revision);
    assert.deepEqual(loaded.rendering.errors, r.errors);
    assert.deepEqual(loaded.rendering.failures, r.failures);
    assert.deepEqual(loaded.rendering.rollouts, r.rollouts);
    // Bundles shared by clusters are stored once.
    const json = JSON.parse(gunzipSync(await readFile(file.path)).toString()) as {
      bundles: object;
    };
    assert.equal(Object.keys(json.bundles).length, 1);
  }));

test('no-saved-rendering-is-nothing-to-serve', () =>
  withDir(async (dir) => {
    const file = new LastRenderingFile({ dir, source, logger: logged().logger });
    assert.equal(await file.load(), undefined);
  }));

test('a-corrupt-saved-rendering-is-logged-and-ignored', () =>
  withDir(async (dir) => {
    const log = logged();
    const file = new LastRenderingFile({ dir, source, logger: log.logger });
    await writeFile(file.path, Buffer.from('not gzip at all'));
    assert.equal(await file.load(), undefined);
    assert.ok(log.lines.some((l) => /saved rendering cannot be read/.test(l)));
    await writeFile(file.path, gzipSync('{"format": "flotilla.dev/last-rendering/v1", '));
    assert.equal(await file.load(), undefined);
  }));

test('a-saved-rendering-whose-objects-were-changed-is-ignored', () =>
  withDir(async (dir) => {
    const log = logged();
    const file = new LastRenderingFile({ dir, source, logger: log.logger });
    file.save(rendering());
    await file.flush();
    const json = gunzipSync(await readFile(file.path)).toString();
    await writeFile(file.path, gzipSync(json.replace('"shared"', '"other"')));
    assert.equal(await file.load(), undefined);
    assert.ok(
      log.lines.some((l) => /does not match its digest/.test(l)),
      log.lines.join('\n'),
    );
  }));

test('a-rendering-saved-for-another-url-is-ignored', () =>
  withDir(async (dir) => {
    const log = logged();
    const file = new LastRenderingFile({ dir, source, logger: log.logger });
    file.save(rendering());
    await file.flush();
    const moved = new LastRenderingFile({
      dir,
      source: { ...source, url: 'https://git.example/other.git' },
      logger: log.logger,
    });
    assert.equal(await moved.load(), undefined);
    assert.ok(log.lines.some((l) => /another source/.test(l)));
  }));

test('a-saved-rendering-over-the-size-bound-is-neither-written-nor-read', () =>
  withDir(async (dir) => {
    const log = logged();
    const small = new LastRenderingFile({ dir, source, logger: log.logger, maxFileBytes: 100 });
    small.save(rendering());
    await small.flush();
    assert.ok(log.lines.some((l) => /too large to save/.test(l)));
    const big = new LastRenderingFile({ dir, source, logger: log.logger });
    big.save(rendering());
    await big.flush();
    assert.equal(await small.load(), undefined);
    assert.ok(log.lines.some((l) => /saved rendering too large/.test(l)));
    assert.ok(await big.load());
  }));
