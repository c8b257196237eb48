// `status`: the stored sessions, one line (or JSON object) each.
import { NothingStoredError } from '../errors.js';
import { sessionStatusJson } from '../session-status.js';
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { formatBytes, print, printJson, table } from './output.js';

export async function statusCommand(ctx: Context<'status'>): Promise<number> {
  const { config } = ctx;
  const only = config.sessionExplicit ? config.sessionId : null;
  // One session is checked thoroughly; a listing of every session only with the cheap index checks.
  // Read-only: the schema as it is. Without one nothing is stored yet: an empty list (one session asked for: exit 3).
  const [sessions, damaged] = await withStore(
    ctx,
    (store) => Promise.all([store.status(only), store.headProblems(only, '', only !== null)] as const),
    0,
    'read',
  ).catch((error: unknown) => {
    if (!(error instanceof NothingStoredError) || only !== null) throw error;
    ctx.log.info(error.message);
    return [[], new Map<string, string[]>()] as const;
  });
  // A damaged head is shown as such, never as a session without a backup; `damage` only when present.
  const rows = sessions.map((s) => ({
    ...sessionStatusJson(s),
    ...(damaged.has(s.sessionId) ? { damage: damaged.get(s.sessionId)! } : {}),
  }));
  if (config.json) {
    printJson(ctx, { sessions: rows });
  } else if (rows.length === 0) {
    print(ctx, 'no sessions stored yet');
  } else {
    print(
      ctx,
      table(
        ['SESSION', 'GENERATION', 'LAST BACKUP', 'FILES', 'BYTES', 'REGISTERED', 'PROTECTED', 'LEASE HOLDER'],
        rows.map((r) => [
          r.folder === undefined ? r.session_id : `${r.session_id} (folder ${JSON.stringify(r.folder)})`,
          String(r.generation),
          r.damage ? 'DAMAGED' : (r.updated_at ?? '-'),
          String(r.files),
          formatBytes(r.bytes),
          r.registered
            ? `yes (${r.phone})`
            : r.logged_out_at
              ? `logged out ${r.logged_out_at}`
              : r.removed
                ? `no (removed ${r.updated_at})`
                : 'no',
          r.protected ? 'yes' : `no (${r.reasons.join(', ')}${r.since ? ` since ${r.since}` : ''})`,
          r.lease_holder ?? '-',
        ]),
      ),
    );
    for (const r of rows)
      if (r.damage)
        print(
          ctx,
          `session ${r.session_id}: the head does not add up: ${r.damage.join('; ')}; ` +
            `run 'baileys-keeper verify --session ${r.session_id}' (restore refuses it, exit 4)`,
        );
  }
  return 0;
}

export const command: CommandSpec<'status'> = {
  name: 'status',
  summary: 'list sessions: generation, last backup, files, bytes, registered, protected, lease holder',
  logTo: 'stderr',
  run: statusCommand,
};
