// Turns a rendered pod spec into what a kubelet would run, on this machine: each container's args and
// env as a real `node dist/cli.js` process, each volume a directory under a temp root, each mount path
// in the env rewritten to its directory, secretKeyRefs resolved from the rendered Secrets.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { K8sObject } from './render.js';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
export interface Probe {
  httpGet?: { path: string; port: string | number };
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  volumeMounts?: VolumeMount[];
  restartPolicy?: string;
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: Record<string, unknown>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
export interface Volume {
  name: string;
  emptyDir?: { medium?: string; sizeLimit?: string };
  secret?: { secretName: string; defaultMode?: number; items?: { key: string; path: string }[] };
}
export interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
  securityContext?: Record<string, unknown>;
  automountServiceAccountToken?: boolean;
}

/** The pod template's spec of the single workload (Deployment or StatefulSet) among `objects`. */
export function workloadPodSpec(objects: K8sObject[]): PodSpec {
  const workloads = objects.filter((object) => object.kind === 'Deployment' || object.kind === 'StatefulSet');
  if (workloads.length !== 1) throw new Error(`expected one workload, found ${workloads.length}`);
  return (workloads[0]!['spec'] as { template: { spec: PodSpec } }).template.spec;
}

/** Every container of the pod, init containers first, in the order Kubernetes starts them. */
export function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

export function container(spec: PodSpec, name: string): Container {
  const found = allContainers(spec).find((candidate) => candidate.name === name);
  if (!found)
    throw new Error(
      `no container ${name} in the pod (have ${allContainers(spec)
        .map((c) => c.name)
        .join(', ')})`,
    );
  return found;
}

/** A container's env as name → value: envFrom first, then env; ConfigMaps and Secrets read from `objects`. */
export function resolveEnv(spec: Container, objects: K8sObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of spec.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef;
    const kind = source.configMapRef ? 'ConfigMap' : 'Secret';
    const object = objects.find((candidate) => candidate.kind === kind && candidate.metadata.name === ref?.name) as
      | (K8sObject & { data?: Record<string, string> })
      | undefined;
    if (!object) throw new Error(`${spec.name} reads ${kind} ${ref?.name ?? '?'}, which is not among the objects`);
    for (const [name, value] of Object.entries(object.data ?? {}))
      env[name] = kind === 'Secret' ? Buffer.from(value, 'base64').toString('utf8') : value;
  }
  for (const variable of spec.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (variable.valueFrom?.secretKeyRef) {
      const ref = variable.valueFrom.secretKeyRef;
      // As the kubelet does: an optional key that is missing leaves the variable out (envFrom's value stays).
      const value = ref.optional ? optionalSecretValue(objects, ref.name, ref.key) : secretValue(objects, ref.name, ref.key);
      if (value !== undefined) env[variable.name] = value;
    } else throw new Error(`env ${variable.name} of ${spec.name}: unsupported source ${JSON.stringify(variable.valueFrom)}`);
  }
  return env;
}

function secretValue(objects: K8sObject[], name: string, key: string): string {
  const value = optionalSecretValue(objects, name, key);
  if (value === undefined) throw new Error(`Secret ${name} has no key ${key}`);
  return value;
}

/** A Secret's key as text, or undefined when the Secret has no such key; throws when the Secret is missing. */
function optionalSecretValue(objects: K8sObject[], name: string, key: string): string | undefined {
  const secret = objects.find((object) => object.kind === 'Secret' && object.metadata.name === name) as
    | (K8sObject & { stringData?: Record<string, string>; data?: Record<string, string> })
    | undefined;
  if (!secret) throw new Error(`the pod reads Secret ${name}, which the chart did not render`);
  return (
    secret.stringData?.[key] ?? (secret.data?.[key] === undefined ? undefined : Buffer.from(secret.data[key], 'base64').toString('utf8'))
  );
}

/** The pod's volumes laid out under `root`: emptyDirs as empty directories, secret volumes as their files. */
export async function materialiseVolumes(spec: PodSpec, objects: K8sObject[], root: string): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  for (const volume of spec.volumes ?? []) {
    const dir = path.join(root, 'volumes', volume.name);
    await mkdir(dir, { recursive: true });
    if (volume.secret) {
      for (const item of volume.secret.items ?? []) {
        await writeFile(path.join(dir, item.path), secretValue(objects, volume.secret.secretName, item.key), {
          mode: volume.secret.defaultMode ?? 0o644,
        });
      }
    } else if (!volume.emptyDir) {
      throw new Error(`volume ${volume.name}: only emptyDir and secret volumes can run here`);
    }
    dirs.set(volume.name, dir);
  }
  return dirs;
}

/** Maps a path inside `spec`'s filesystem to the host directory of the volume mounted there (null if none). */
export function hostPath(spec: Container, volumes: Map<string, string>, inside: string): string | null {
  const mounts = [...(spec.volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
  for (const mount of mounts) {
    const relative = path.posix.relative(mount.mountPath, inside);
    if (relative === '' || (!relative.startsWith('..') && !path.posix.isAbsolute(relative))) {
      const dir = volumes.get(mount.name);
      if (!dir) throw new Error(`${spec.name} mounts ${mount.name}, which is not a volume of the pod`);
      return path.join(dir, relative);
    }
  }
  return null;
}

/** `env` with every absolute path that lies on a mount rewritten to its host directory. */
export function mapEnvPaths(spec: Container, volumes: Map<string, string>, env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([name, value]) => [name, value.startsWith('/') ? (hostPath(spec, volumes, value) ?? value) : value]),
  );
}
