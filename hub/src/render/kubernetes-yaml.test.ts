// Manifests mean what they mean to kubectl and helm, whose YAML libraries (Go,
// sigs.k8s.io/yaml) read YAML 1.1: public charts write `defaultMode: 0755` for scripts and
// `0400` for keys, which YAML 1.2 reads as the decimals 755 (refused by the API server)
// and 400 (accepted: mode 0620, group-writable). Flotilla's own files stay YAML 1.2.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, repo } from './testing.js';

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    released: 2024-01-01
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          image: web:1
          args: [--window, 10:30, --rate, 1_000]
          stdin: yes
          tty: off
          livenessProbe: &probe
            periodSeconds: 10
            timeoutSeconds: 5
            httpGet: { path: /healthz, port: 8080 }
          readinessProbe:
            <<: *probe
            httpGet: { path: /readyz, port: 0x1F90 }
      volumes:
        - name: scripts
          configMap: { name: scripts, defaultMode: 0755 }
        - name: keys
          secret: { secretName: keys, defaultMode: 0400 }
        - name: certs
          secret: { secretName: certs, defaultMode: 0o440 }
`;

const files = (manifest: string, substitute = ''): Record<string, string> => ({
  'clusters/c1.yaml': clusterYaml('c1', {}, '  vars: { mode: "0755", flag: "on" }\n'),
  'bundles/web/bundle.yaml': bundleYaml(
    'web',
    `  namespace: web\n  targets:\n    - clusterSelector: {}\n${substitute}`,
  ),
  'bundles/web/manifests/web.yaml': manifest,
});

type Spec = {
  template: {
    spec: {
      containers: Record<string, unknown>[];
      volumes: { configMap?: { defaultMode: unknown }; secret?: { defaultMode: unknown } }[];
    };
  };
};

describe('manifests are read as kubectl reads them', async () => {
  test('octal-file-modes-booleans-and-merge-keys-mean-what-they-mean-to-kubectl', async () => {
    const out = await renderFleet(repo(files(DEPLOYMENT)), 'r');
    assert.deepEqual(out.errors, []);
    const obj = out.clusters.get('c1')?.bundles[0]?.objects[0];
    const spec = obj?.spec as Spec;
    const [scripts, keys, certs] = spec.template.spec.volumes;
    assert.equal(scripts?.configMap?.defaultMode, 0o755);
    assert.equal(keys?.secret?.defaultMode, 0o400);
    assert.equal(certs?.secret?.defaultMode, 0o440);
    const web = spec.template.spec.containers[0] as Record<string, unknown>;
    assert.equal(web.stdin, true);
    assert.equal(web.tty, false);
    assert.deepEqual(web.readinessProbe, {
      periodSeconds: 10,
      timeoutSeconds: 5,
      httpGet: { path: '/readyz', port: 8080 },
    });
    // What Go's libraries leave alone stays as written: no sexagesimal, no timestamps.
    assert.deepEqual(web.args, ['--window', '10:30', '--rate', 1000]);
    assert.equal(obj?.metadata.annotations?.released, '2024-01-01');
  });

  test('a-substituted-plain-scalar-is-typed-by-the-same-rules', async () => {
    const manifest = `apiVersion: v1
kind: Pod
metadata: { name: p }
spec:
  hostNetwork: \${vars.flag}
  volumes: [{ name: s, configMap: { name: s, defaultMode: \${vars.mode} } }]
  containers: [{ name: c, image: "c:\${vars.mode}" }]
`;
    const out = await renderFleet(repo(files(manifest, '  substitute: true\n')), 'r');
    assert.deepEqual(out.errors, []);
    const spec = out.clusters.get('c1')?.bundles[0]?.objects[0]?.spec as {
      hostNetwork: unknown;
      volumes: { configMap: { defaultMode: unknown } }[];
      containers: { image: string }[];
    };
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.volumes[0]?.configMap.defaultMode, 0o755);
    assert.equal(spec.containers[0]?.image, 'c:0755');
  });

  test('flotilla-files-stay-yaml-1.2', async () => {
    // A label value of `on` in bundle.yaml is the string "on", as YAML 1.2 reads it.
    const tree = files('apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n');
    tree['clusters/c1.yaml'] =
      'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: c1\n  labels: { power: on }\n';
    const out = await renderFleet(repo(tree), 'r');
    assert.deepEqual(out.errors, []);
    assert.deepEqual(out.labels.get('c1'), { power: 'on' });
  });
});
