// The names the deployment files must agree with: the CLI's environment variables and its metrics.
import { environmentVariables } from '../../../src/options.js';
import { Metrics } from '../../../src/metrics.js';

/** Every environment variable the CLI reads: the settings table's (src/options.ts). */
export async function cliEnvNames(): Promise<Set<string>> {
  return new Set(environmentVariables());
}

/**
 * Every series name a live sidecar exposes on /metrics (histograms with their _bucket/_sum/_count); with
 * `manySessions`, a sidecar of a sessions directory (which adds baileys_keeper_sessions).
 */
export async function exposedMetricNames(options: { manySessions?: boolean } = {}): Promise<Set<string>> {
  const names = new Set<string>();
  for (const line of (await new Metrics(undefined, options).registry.metrics()).split('\n')) {
    const match = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (!match) continue;
    names.add(match[1]!);
    if (match[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(match[1]! + suffix);
  }
  return names;
}

/** The metric names a PromQL text uses of those the keeper exposes: baileys_keeper_*, and Node's process_* and nodejs_*. */
export function metricNamesIn(text: string): string[] {
  return [...new Set([...text.matchAll(/\b((?:baileys_keeper|process|nodejs)_[a-z0-9_]+)\b/g)].map((match) => match[1]!))];
}
