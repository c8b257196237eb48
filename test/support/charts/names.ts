// The names the deployment files must agree with: the CLI's environment variables and its metrics.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { OPTIONS } from '../../../src/config.js';
import { Metrics } from '../../../src/metrics.js';
import { REPO } from '../../../harness/paths.js';

/** Every environment variable the CLI reads: the OPTIONS table's env twins plus the ones src/config.ts reads directly. */
export async function cliEnvNames(): Promise<Set<string>> {
  const names = new Set(Object.values(OPTIONS).flatMap((option) => (option.env ? [option.env] : [])));
  const source = await readFile(path.join(REPO, 'src', 'config.ts'), 'utf8');
  for (const match of source.matchAll(/'(KEEPER_[A-Z_]+)'/g)) names.add(match[1]!);
  return names;
}

/** Every series name a live sidecar exposes on /metrics (histograms with their _bucket/_sum/_count). */
export async function exposedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const line of (await new Metrics().registry.metrics()).split('\n')) {
    const match = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (!match) continue;
    names.add(match[1]!);
    if (match[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(match[1]! + suffix);
  }
  return names;
}

/** The baileys_keeper_* metric names a PromQL text uses. */
export function metricNamesIn(text: string): string[] {
  return [...new Set([...text.matchAll(/\b(baileys_keeper_[a-z0-9_]+)\b/g)].map((match) => match[1]!))];
}
