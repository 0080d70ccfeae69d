import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import test from 'node:test';
import { loadFlotillaProto, PROTO_ROOT } from './index.js';

test('generated-types-match-proto-files', () => {
  // Throws (non-zero exit) when src/generated differs from what the .proto files give.
  execFileSync(process.execPath, [join(PROTO_ROOT, 'tools', 'gen-types.mjs'), '--check'], {
    stdio: 'pipe',
  });
});

test('services-load-with-expected-methods', () => {
  const proto = loadFlotillaProto();
  assert.deepEqual(Object.keys(proto.AgentStream.service), ['Connect']);
  assert.equal(proto.AgentStream.service.Connect.requestStream, true);
  assert.equal(proto.AgentStream.service.Connect.responseStream, true);
  assert.ok(proto.FleetService.service.ListClusters);
});
