// The probes and the scrape endpoint of the long-running roles: /healthz (liveness), /readyz
// (readiness) and /metrics (Prometheus text format).
import { sendJson, type Route } from './http.js';
import type { Metrics } from './metrics.js';
import type { BackupLoop } from './backup-loop.js';

/**
 * The three routes for `loop`: /healthz answers 200 while the loop works and 503 with the reasons while
 * a start-up step fails and is retried (a process that backs up nothing must not look alive); /readyz
 * answers 200 once the first scan is stored and `extraReady()` holds (run: its restore is done), else
 * 503; /metrics serves `metrics`' registry, never cached.
 */
export function healthRoutes(loop: BackupLoop, metrics: Metrics, extraReady: () => boolean): Route[] {
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
      handler: (_req, res) =>
        loop.ready && extraReady()
          ? sendJson(res, 200, { status: 'ready' })
          : sendJson(res, 503, { status: 'starting', error: 'the initial restore and scan are not done yet' }),
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
