// What the configuration itself gives reason to warn about when a command starts: variables of the keeper's
// namespace that no setting reads, and a session id nobody chose. Said once at start (cli.ts); doctor shows
// them as its own warn lines.
import type { Config } from './config.js';
import { type Command, describeSetting, SETTINGS } from './options.js';
import { describeUnknownVariable } from './unknown-variables.js';

/** A warning: what doctor calls the check, the line itself, and the fields a log line carries. */
export interface StartWarning {
  readonly check: 'environment' | 'session id';
  readonly message: string;
  readonly fields: Readonly<Record<string, string | null>>;
}

/**
 * The commands that act on one session's stored login, so that an id nobody chose decides whose login it is
 * (two bots on one database with no id share `default` and restore each other's); doctor, which checks it.
 */
const SESSION_ID_MATTERS: readonly Command[] = [
  'restore',
  'sidecar',
  'run',
  'backup',
  'import',
  'import-legacy',
  'delete',
  'logout',
  'doctor',
];

/** The warnings `config` gives reason for, in a fixed order: unknown variables (one each), then the session id. */
export function startWarnings(
  config: Pick<Config, 'command' | 'sessionId' | 'sessionExplicit' | 'unknownVariables'> & Partial<Config>,
): StartWarning[] {
  const warnings: StartWarning[] = config.unknownVariables.map((variable) => ({
    check: 'environment',
    message: describeUnknownVariable(variable, config.command),
    fields: { variable: variable.name, suggestion: variable.suggestion ?? variable.oneShotFlag },
  }));
  const implicit =
    SESSION_ID_MATTERS.includes(config.command) && !config.sessionExplicit && (config.sessionsDir ?? null) === null && config.all !== true;
  if (implicit) {
    const setting = describeSetting('session', SETTINGS.session);
    warnings.push({
      check: 'session id',
      message:
        `no session id given (${setting}): using "${config.sessionId}". Bots that share a database without ids of their own ` +
        `share one login and restore each other's: set ${SETTINGS.session.env} to a name for this bot`,
      fields: { session: config.sessionId },
    });
  }
  return warnings;
}
