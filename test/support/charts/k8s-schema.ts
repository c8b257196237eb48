// Offline validation of rendered objects against a Kubernetes OpenAPI schema, as shipped by the
// kubernetes-models packages (prometheus-operator's CRDs for monitoring.coreos.com), in two passes:
//  1. the packages' JSON-schema validators: types, enums, required fields, formats;
//  2. their TypeScript interfaces under `tsc --strict`: an object literal with a field the schema does not
//     have is an error, which is what the API server's strict field validation rejects.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO } from '../../../harness/paths.js';
import type { K8sObject } from './render.js';
import { KUBE_VERSION } from './tools.js';

const run = promisify(execFile);

/** A Kubernetes version whose schema a kubernetes-models release ships. */
export interface KubeSchema {
  /** The version, as `helm template --kube-version` takes it. */
  kubeVersion: string;
  /** The package (an npm alias for an older release) that models it. */
  modelsPackage: string;
}

/** The version the chart is developed against: kubernetes-models 5.1 ships Kubernetes 1.34. */
export const CURRENT_SCHEMA: KubeSchema = { kubeVersion: KUBE_VERSION, modelsPackage: 'kubernetes-models' };

/**
 * The oldest version the chart supports (Chart.yaml `kubeVersion`): kubernetes-models 4.1.0 ships
 * Kubernetes 1.25 (PodSpec has `hostUsers`, new in 1.25, but not `resourceClaims`, new in 1.26). Here a
 * field added after 1.25 (a native sidecar's `restartPolicy`, say) is an unknown field.
 */
export const OLDEST_SCHEMA: KubeSchema = { kubeVersion: '1.25.0', modelsPackage: 'kubernetes-models-1.25' };

interface Model {
  validate(): void;
}
type ModelClass = new (data: unknown) => Model;

/** The module that models `apiVersion`/`kind`, or null when no package ships its schema. */
function modelModule(object: K8sObject, schema: KubeSchema): string | null {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
  if (!version || !/^[A-Za-z]+$/.test(object.kind)) return null;
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/${group}/${version}/${object.kind}`;
  return `${schema.modelsPackage}/${group ? `${group}/` : ''}${version}/${object.kind}`;
}

function label(object: K8sObject): string {
  return `${object.kind}/${object.metadata?.name ?? '?'}`;
}

/** Problems found by the packages' JSON-schema validators (empty when all objects are valid). */
export async function schemaProblems(objects: K8sObject[], schema: KubeSchema = CURRENT_SCHEMA): Promise<string[]> {
  const problems: string[] = [];
  for (const object of objects) {
    const module = modelModule(object, schema);
    let model: ModelClass | undefined;
    try {
      model = module ? ((await import(module)) as Record<string, ModelClass>)[object.kind] : undefined;
    } catch {
      model = undefined;
    }
    if (!model) {
      problems.push(`${label(object)}: no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new model(object).validate();
    } catch (error) {
      problems.push(`${label(object)}: ${(error as Error).message}`);
    }
  }
  return problems;
}

/** Problems found by type-checking the objects as literals of their kubernetes-models interfaces. */
export async function unknownFieldProblems(objects: K8sObject[], schema: KubeSchema = CURRENT_SCHEMA): Promise<string[]> {
  // Inside the repository, so that the packages resolve from its node_modules.
  await mkdir(path.join(REPO, 'build'), { recursive: true });
  const dir = await mkdtemp(path.join(REPO, 'build', 'k8s-typecheck-'));
  try {
    const lines: string[] = [];
    const starts: { line: number; object: K8sObject }[] = [];
    objects.forEach((object, index) => {
      const module = modelModule(object, schema);
      if (!module) return;
      // The require condition: older releases ship CommonJS declarations only (no .d.mts).
      lines.push(`import type { I${object.kind} as T${index} } from '${module}' with { 'resolution-mode': 'require' };`);
    });
    objects.forEach((object, index) => {
      if (!modelModule(object, schema)) return;
      starts.push({ line: lines.length + 1, object });
      lines.push(...`export const o${index}: T${index} = ${JSON.stringify(object, null, 1)};`.split('\n'));
    });
    await writeFile(path.join(dir, 'objects.ts'), `${lines.join('\n')}\n`);
    const compilerOptions = {
      strict: true,
      noEmit: true,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      types: [],
      skipLibCheck: true,
    };
    await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['objects.ts'] }));
    const tsc = path.join(REPO, 'node_modules', '.bin', 'tsc');
    const output = await run(tsc, ['-p', dir, '--pretty', 'false']).then(
      () => '',
      (error: { stdout?: string; message: string }) => error.stdout || error.message,
    );
    return output
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const match = /objects\.ts\((\d+),\d+\): (.*)$/.exec(line);
        if (!match) return line;
        const at = Number(match[1]);
        const owner = starts.filter((start) => start.line <= at).pop();
        return `${owner ? label(owner.object) : '?'}: ${match[2]}`;
      });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Both passes; empty when every object is valid input for `schema`'s Kubernetes (or prometheus-operator). */
export async function validateObjects(objects: K8sObject[], schema: KubeSchema = CURRENT_SCHEMA): Promise<string[]> {
  return [...(await schemaProblems(objects, schema)), ...(await unknownFieldProblems(objects, schema))];
}
