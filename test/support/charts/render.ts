// Renders the chart and the kustomize overlays into plain objects for assertions.
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { tempDir } from '../fs.js';
import { REPO } from '../../../harness/paths.js';
import { findTool, KUBE_VERSION, tool } from './tools.js';

export const CHART = path.join(REPO, 'charts', 'baileys-keeper');

/** A rendered Kubernetes object (loosely typed: tests read the fields they assert). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Parses a multi-document YAML stream, skipping empty documents; throws on any YAML error. */
export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  // YAML 1.1, as Helm and kubectl read it (0400 is octal, yes is true).
  for (const document of parseAllDocuments(text, { version: '1.1' })) {
    if (document.errors.length > 0) throw new Error(`invalid YAML: ${document.errors.map((error) => error.message).join('; ')}`);
    const value = document.toJS() as K8sObject | null;
    if (value !== null) objects.push(value);
  }
  return objects;
}

/** How to render the chart: values files, `--set-string` and typed `--set` pairs, release and namespace. */
export interface RenderOptions {
  values?: string[];
  /** `--set-string` pairs: every value stays a string. */
  setString?: Record<string, string>;
  /** `--set` pairs: helm types them as a user's command line does (42 is a number, true a boolean). */
  set?: Record<string, string>;
  kubeVersion?: string;
  release?: string;
  namespace?: string;
}

/** `helm template` of the chart; release `bot` in namespace `bots` unless the options name others. */
export async function renderChart(options: RenderOptions = {}): Promise<K8sObject[]> {
  const helm = await findTool('helm', 'HELM');
  const args = ['template', options.release ?? 'bot', CHART, '--namespace', options.namespace ?? 'bots'];
  args.push('--kube-version', options.kubeVersion ?? KUBE_VERSION);
  for (const file of options.values ?? []) args.push('--values', file);
  for (const [key, value] of Object.entries(options.setString ?? {})) args.push('--set-string', `${key}=${value}`);
  for (const [key, value] of Object.entries(options.set ?? {})) args.push('--set', `${key}=${value}`);
  return parseManifests(await tool(helm, args));
}

/** `helm template` of the chart (release bot, namespace bots) with the given values files and --set-string pairs. */
export async function helmTemplate(
  valuesFiles: string[],
  set: Record<string, string> = {},
  kubeVersion = KUBE_VERSION,
): Promise<K8sObject[]> {
  return renderChart({ values: valuesFiles, setString: set, kubeVersion });
}

/** `helm template` expected to fail; resolves with helm's error text. */
export async function helmTemplateError(
  valuesFiles: string[],
  set: Record<string, string> = {},
  kubeVersion = KUBE_VERSION,
): Promise<string> {
  return renderChartError({ values: valuesFiles, setString: set, kubeVersion });
}

/** `renderChart` expected to fail; resolves with helm's error text. */
export async function renderChartError(options: RenderOptions): Promise<string> {
  try {
    await renderChart(options);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('helm template succeeded, but it was expected to fail');
}

/** The example bot chart that has this chart as a dependency and includes the keeper in its own pod. */
export const BOT_CHART = path.join(REPO, 'deploy', 'helm', 'my-bot');

/**
 * A copy of the example bot chart with this chart unpacked in its charts/ (what `helm dependency build`
 * puts there from the `file://` repository), so that it renders offline and with the chart as it is now.
 * Resolves with the copy's directory.
 */
export async function botChartCopy(): Promise<string> {
  const dir = path.join(await tempDir('bot-chart'), 'my-bot');
  await cp(BOT_CHART, dir, { recursive: true });
  await mkdir(path.join(dir, 'charts'), { recursive: true });
  await cp(CHART, path.join(dir, 'charts', 'baileys-keeper'), { recursive: true });
  return dir;
}

/** `helm template` of the example bot chart (release `shop`, namespace `bots` unless named). */
export async function renderBotChart(options: RenderOptions = {}): Promise<K8sObject[]> {
  const helm = await findTool('helm', 'HELM');
  const args = ['template', options.release ?? 'shop', await botChartCopy(), '--namespace', options.namespace ?? 'bots'];
  args.push('--kube-version', options.kubeVersion ?? KUBE_VERSION);
  for (const file of options.values ?? []) args.push('--values', file);
  for (const [key, value] of Object.entries(options.setString ?? {})) args.push('--set-string', `${key}=${value}`);
  for (const [key, value] of Object.entries(options.set ?? {})) args.push('--set', `${key}=${value}`);
  return parseManifests(await tool(helm, args));
}

/** A values file holding `overrides` (for typed values: --set-string can only give strings). */
export async function valuesFile(overrides: Record<string, unknown>): Promise<string> {
  const file = path.join(await tempDir('values'), 'values.json');
  await writeFile(file, JSON.stringify(overrides));
  return file;
}

/** `kustomize build` of a directory. */
export async function kustomizeBuild(dir: string): Promise<K8sObject[]> {
  const kustomize = await findTool('kustomize', 'KUSTOMIZE');
  return parseManifests(await tool(kustomize, ['build', dir]));
}

/** The single object of `kind` (and `name`, when given); throws listing what there is otherwise. */
export function only(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
  if (found.length !== 1)
    throw new Error(
      `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length} among ` +
        `${objects.map((object) => `${object.kind}/${object.metadata.name}`).join(', ')}`,
    );
  return found[0]!;
}
