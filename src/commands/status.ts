// `status`: the stored sessions, one line (or JSON object) each.
import { sessionStatusJson } from '../store.js';
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { formatBytes, print, printJson, table } from './output.js';

export async function statusCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const sessions = await withStore(ctx, (store) => store.status(config.sessionExplicit ? config.sessionId : null));
  const rows = sessions.map((s) => sessionStatusJson(s));
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
          r.updated_at ?? '-',
          String(r.files),
          formatBytes(r.bytes),
          r.registered ? `yes (${r.phone})` : 'no',
          r.protected ? 'yes' : `no (${r.reasons.join(', ')}${r.since ? ` since ${r.since}` : ''})`,
          r.lease_holder ?? '-',
        ]),
      ),
    );
  }
  return 0;
}

export const command: CommandSpec = {
  name: 'status',
  summary: 'list sessions: generation, last backup, files, bytes, registered, protected, lease holder',
  logTo: 'stderr',
  run: statusCommand,
};
