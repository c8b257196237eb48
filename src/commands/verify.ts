// `verify`: checks every stored file version of a session; exit 4 on any failure.
import { IntegrityError } from '../errors.js';
import { hintsOf } from '../rows.js';
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { print, printJson } from './output.js';

export async function verifyCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const { checked, failures } = await withStore(ctx, (store) => store.verify(config.sessionId));
  const hints = hintsOf(failures);
  if (config.json) {
    printJson(ctx, {
      session_id: config.sessionId,
      checked,
      failures: failures.map((f) => ({ name: f.name, generation: f.generationFrom, reason: f.reason })),
    });
  } else {
    for (const failure of failures)
      print(ctx, `FAILED  ${failure.reason}${failure.generationFrom === null ? '' : ` (stored at generation ${failure.generationFrom})`}`);
    if (failures.length === 0) print(ctx, `ok: ${checked} stored file versions of session ${config.sessionId} match their checksums`);
  }
  const missingKeys = [...new Set(failures.map((f) => f.missingKey).filter((id): id is string => id !== null))];
  if (missingKeys.length > 0) {
    throw new IntegrityError(
      `${failures.length} of ${checked} stored file versions of session ${config.sessionId} ` +
        `are encrypted with key id ${missingKeys.join(', ')}, which is not configured: ` +
        'set KEEPER_ENCRYPTION_KEY / KEEPER_ENCRYPTION_KEY_FILE to that key or add it to KEEPER_ENCRYPTION_KEYS, then verify again',
    );
  }
  if (failures.length > 0) {
    throw new IntegrityError(
      `${failures.length} of ${checked} stored file versions of session ${config.sessionId} failed verification: ` +
        (hints.length > 0
          ? hints.join(' ')
          : 'restore a generation that does not contain them (history lists generations), or re-import a good export'),
    );
  }
  return 0;
}

export const command: CommandSpec = {
  name: 'verify',
  summary: 'check every stored file of a session: name, size, checksum and (encrypted) authenticity',
  logTo: 'stderr',
  run: verifyCommand,
};
