import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as keda from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as core from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadServiceConfig } from '../gpu-worker/src/service/config.ts';

// Validates infra/k8s against the Kubernetes (kubernetes-models) and KEDA (@kubernetes-models/keda) JSON
// schemas, then checks what the schemas cannot: the pieces refer to each other correctly and agree with what
// the worker and the edge actually do.

const root = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const k8sDir = path.join(root, 'infra/k8s');

interface Manifest {
  file: string;
  doc: Record<string, unknown> & {
    apiVersion: string;
    kind: string;
    metadata: { name: string; labels?: Record<string, string> };
  };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return name.endsWith('.yaml') ? [full] : [];
  });
}

const manifests: Manifest[] = yamlFiles(k8sDir).flatMap((file) =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]!.message}`);
    return { file: path.relative(k8sDir, file), doc: document.toJSON() as Manifest['doc'] };
  }),
);

/** Schema-validating model classes by apiVersion (every group the manifests use). */
const MODELS: Record<string, Record<string, unknown>> = {
  v1: core,
  'apps/v1': apps,
  'batch/v1': batch,
  'policy/v1': policy,
  'keda.sh/v1alpha1': keda,
};

/** The schema-validating model class for an apiVersion/kind. */
function modelFor(apiVersion: string, kind: string) {
  const Model = MODELS[apiVersion]?.[kind] as (new (value: unknown) => { validate(): void }) | undefined;
  if (!Model) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return Model;
}

const ofKind = (kind: string, variant?: string) =>
  manifests.filter((m) => m.doc.kind === kind && (!variant || m.file.startsWith(`${variant}/`)));

/** The resources a variant's kustomization applies (following ../base). */
function variantFiles(variant: string): string[] {
  const walk = (dir: string): string[] => {
    const kustomization = manifests.find((m) => m.file === path.join(dir, 'kustomization.yaml'));
    const resources =
      (kustomization?.doc as unknown as { resources?: string[] } | undefined)?.resources ?? [];
    return resources.flatMap((resource) => {
      const target = path.normalize(path.join(dir, resource));
      return resource.endsWith('.yaml') ? [target] : walk(target);
    });
  };
  return walk(variant);
}

const docsIn = (files: string[]) => manifests.filter((m) => files.includes(m.file)).map((m) => m.doc);

describe('infra/k8s manifests', () => {
  it('every document validates against the Kubernetes and KEDA schemas', async () => {
    const resources = manifests.filter((m) => m.doc.kind !== 'Kustomization');
    expect(resources.length).toBeGreaterThanOrEqual(14);
    for (const { file, doc } of resources) {
      const Model = modelFor(doc.apiVersion, doc.kind);
      expect(() => new Model(doc).validate(), `${file} ${doc.kind}`).not.toThrow();
    }
  });

  it('the validator catches a broken manifest', async () => {
    const deployment = ofKind('Deployment', 'pull')[0]!.doc as unknown as { spec: Record<string, unknown> };
    const Deployment = modelFor('apps/v1', 'Deployment');
    expect(() =>
      new Deployment({ ...deployment, spec: { ...deployment.spec, replicas: 'two' } }).validate(),
    ).toThrow();
    const ScaledObject = modelFor('keda.sh/v1alpha1', 'ScaledObject');
    const scaled = ofKind('ScaledObject', 'pull')[0]!.doc as unknown as { spec: Record<string, unknown> };
    expect(() =>
      new ScaledObject({ ...scaled, spec: { ...scaled.spec, scaleTargetRef: {} } }).validate(),
    ).toThrow();
  });

  it('kustomizations list files that exist', () => {
    for (const { file, doc } of ofKind('Kustomization')) {
      for (const resource of (doc as unknown as { resources: string[] }).resources) {
        const target = path.join(k8sDir, path.dirname(file), resource);
        expect(existsSync(target), `${file} -> ${resource}`).toBe(true);
      }
    }
  });

  for (const variant of ['pull', 'push'] as const) {
    describe(`${variant} variant`, () => {
      const docs = docsIn(variantFiles(variant));
      const deployments = docs.filter((d) => d.kind === 'Deployment') as unknown as {
        metadata: { name: string };
        spec: {
          template: {
            metadata: { labels: Record<string, string> };
            spec: {
              terminationGracePeriodSeconds: number;
              containers: {
                env: {
                  name: string;
                  value?: string;
                  valueFrom?: { secretKeyRef?: { name: string; key: string } };
                }[];
                envFrom: { configMapRef: { name: string } }[];
                resources: { limits: Record<string, unknown> };
                readinessProbe: { httpGet: { path: string } };
                lifecycle?: { preStop?: { exec?: { command: string[] } } };
                volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
              }[];
              volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[];
            };
          };
        };
      }[];
      const config = docs.find((d) => d.kind === 'ConfigMap') as unknown as { data: Record<string, string> };

      it('one GPU Deployment: GPU limit, /readyz readiness, weights volume from the PVC the Job fills', () => {
        expect(deployments).toHaveLength(1);
        const pod = deployments[0]!.spec.template.spec;
        const worker = pod.containers[0]!;
        expect(worker.resources.limits['nvidia.com/gpu']).toBe(1);
        expect(worker.readinessProbe.httpGet.path).toBe('/readyz');
        const weights = pod.volumes.find((v) => v.persistentVolumeClaim)!;
        const job = docs.find((d) => d.kind === 'Job') as unknown as {
          spec: { template: { spec: { containers: { command: string[] }[]; volumes: typeof pod.volumes } } };
        };
        expect(job.spec.template.spec.volumes[0]!.persistentVolumeClaim!.claimName).toBe(
          weights.persistentVolumeClaim!.claimName,
        );
        expect(job.spec.template.spec.containers[0]!.command.join(' ')).toContain(
          'infra/download-weights.mjs --out /weights',
        );
        expect(existsSync(path.join(root, 'infra/download-weights.mjs'))).toBe(true);
        const mount = worker.volumeMounts.find((m) => m.name === weights.name)!;
        expect(config.data['CONTOUR_MODEL_CONFIG']!.startsWith(`${mount.mountPath}/`)).toBe(true);
      });

      it('the grace period covers the worker drain (CONTOUR_SHUTDOWN_GRACE_MS) plus preStop and reporting', () => {
        const pod = deployments[0]!.spec.template.spec;
        const preStop = Number(pod.containers[0]!.lifecycle?.preStop?.exec?.command.at(-1) ?? 0);
        const drainS = Number(config.data['CONTOUR_SHUTDOWN_GRACE_MS']) / 1000;
        expect(drainS).toBeGreaterThan(0);
        expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + drainS + 30);
        // Pull leases must outlive a job (there is no lease extension); the edge's deadline is 10 min.
        if (variant === 'pull')
          expect(Number(config.data['CONTOUR_PULL_VISIBILITY_MS'])).toBeGreaterThan(600_000);
      });

      it('the PodDisruptionBudget and the ScaledObject select the Deployment; auth comes from a Secret', () => {
        const deployment = deployments[0]!;
        const labels = deployment.spec.template.metadata.labels;
        const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget') as unknown as {
          spec: { selector: { matchLabels: Record<string, string> } };
        };
        for (const [key, value] of Object.entries(pdb.spec.selector.matchLabels))
          expect(labels[key]).toBe(value);
        const scaled = docs.find((d) => d.kind === 'ScaledObject') as unknown as {
          spec: {
            scaleTargetRef: { name: string };
            minReplicaCount: number;
            triggers: {
              type: string;
              metadata: Record<string, string>;
              authenticationRef: { name: string };
            }[];
          };
        };
        expect(scaled.spec.scaleTargetRef.name).toBe(deployment.metadata.name);
        const trigger = scaled.spec.triggers[0]!;
        expect(trigger.type).toBe('metrics-api');
        expect(new URL(trigger.metadata['url']!).pathname).toBe('/worker/v1/metrics');
        // The edge's metrics route answers these fields (edge/src/routes/pool-metrics.ts).
        expect(['queued', 'running', 'backlog', 'oldest_wait_s']).toContain(
          trigger.metadata['valueLocation'],
        );
        expect(trigger.metadata['authMode']).toBe('bearer');
        const auth = docs.find(
          (d) => d.kind === 'TriggerAuthentication' && d.metadata.name === trigger.authenticationRef.name,
        ) as unknown as { spec: { secretTargetRef: { parameter: string; name: string; key: string }[] } };
        expect(auth.spec.secretTargetRef[0]!.parameter).toBe('token');
        const secrets = ofKind('Secret').map(
          (m) => m.doc as unknown as { metadata: { name: string }; stringData: object },
        );
        const secretKeys = (name: string) =>
          Object.keys(secrets.find((s) => s.metadata.name === name)!.stringData);
        expect(secretKeys(auth.spec.secretTargetRef[0]!.name)).toContain(auth.spec.secretTargetRef[0]!.key);
        for (const env of deployment.spec.template.spec.containers[0]!.env) {
          const ref = env.valueFrom?.secretKeyRef;
          if (ref) expect(secretKeys(ref.name)).toContain(ref.key);
        }
        // Push mode keeps a worker: the edge cannot wait for a scale-up.
        if (variant === 'push') expect(scaled.spec.minReplicaCount).toBeGreaterThan(0);
      });

      it('the worker starts with this environment (production mode)', () => {
        const container = deployments[0]!.spec.template.spec.containers[0]!;
        const env: NodeJS.ProcessEnv = { ...config.data, NODE_ENV: 'production', HOSTNAME: 'pod-0' };
        for (const item of container.env) {
          env[item.name] =
            item.value ?? (item.valueFrom?.secretKeyRef ? `secret-${item.name}` : 'from-field');
        }
        const loaded = loadServiceConfig(env);
        expect(loaded.modelConfigPath).toBe('/weights/models.json');
        expect(Boolean(loaded.pull)).toBe(variant === 'pull');
        if (variant === 'pull') expect(loaded.pull!.edgeUrl).toMatch(/^https:\/\//);
      });

      if (variant === 'push') {
        it('the Service targets the ready push pods on the worker port', () => {
          const service = docs.find((d) => d.kind === 'Service') as unknown as {
            spec: { selector: Record<string, string>; ports: { port: number }[] };
          };
          const labels = deployments[0]!.spec.template.metadata.labels;
          for (const [key, value] of Object.entries(service.spec.selector)) expect(labels[key]).toBe(value);
          expect(service.spec.ports[0]!.port).toBe(8790);
        });
      }
    });
  }
});
