// The probes and the scrape endpoint of the long-running roles: /healthz (liveness), /readyz
// (readiness) and /metrics (Prometheus text format).
import { sendJson, type Route } from './http.js';
import type { Metrics } from './metrics.js';
import type { BackupLoop } from './loop/backup-loop.js';
import type { SchemaGate } from './schema-gate.js';

/**
 * Why `loop` is not ready, one phrase per reason (empty when ready): the schema, a failing start-up step,
 * `extra` (run: the restore), or the first comparison of the directory with what is stored.
 */
export function notReadyReasons(loop: BackupLoop, schema: SchemaGate | null, extra: () => string | null): string[] {
  const reasons: string[] = [];
  const schemaReason = schema?.reason ?? null;
  if (schemaReason) reasons.push(schemaReason);
  reasons.push(...loop.problems);
  const extraReason = extra();
  if (extraReason) reasons.push(extraReason);
  if (!loop.ready) reasons.push('the first comparison of the auth directory with what is stored is not done yet');
  return reasons;
}

/**
 * The three routes for `loop`: /healthz answers 200 while the loop works and 503 with the reasons while
 * a start-up step fails and is retried (a process that backs up nothing must not look alive); /readyz
 * answers 200 once the schema is ready, the first scan is stored and `extraReady()` holds (run: its
 * restore is done), else 503 with {status, error, reasons} naming what is missing; /metrics serves
 * `metrics`' registry, never cached.
 */
export function healthRoutes(loop: BackupLoop, metrics: Metrics, extraReady: () => boolean, schema: SchemaGate | null = null): Route[] {
  return [
    {
      method: 'GET',
      path: '/healthz',
      handler: (_req, res) =>
        loop.healthy
          ? sendJson(res, 200, { status: 'ok', watch: loop.watchBackend ?? 'waiting for the directory' })
          : sendJson(res, 503, { status: 'failing', error: loop.problems.join('; ') }),
    },
    {
      method: 'GET',
      path: '/readyz',
      handler: (_req, res) => {
        // A keeper of many sessions migrates on its own; asking here makes the gate learn that it is done.
        if (schema && !schema.ready) void schema.ensure().catch(() => undefined);
        const reasons = notReadyReasons(loop, schema, () => (extraReady() ? null : 'the initial restore is not done yet'));
        if (reasons.length === 0) return sendJson(res, 200, { status: 'ready' });
        return sendJson(res, 503, { status: 'starting', error: reasons.join('; '), reasons });
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async (_req, res) => {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
    },
  ];
}
