// What the configuration itself gives reason to warn about when a command starts: variables of the keeper's
// namespace that no setting reads, and a session id nobody chose. Said once at start (cli.ts); doctor shows
// them as its own warn lines.
import type { Config } from './config.js';
import { UsageError } from './errors.js';
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

type StartConfig = Pick<Config, 'command' | 'sessionId' | 'sessionExplicit' | 'unknownVariables'> & Partial<Config>;

/** The command acts on one session's login and nobody chose which: the id is the default. */
function implicitSession(config: StartConfig): boolean {
  return (
    SESSION_ID_MATTERS.includes(config.command) && !config.sessionExplicit && (config.sessionsDir ?? null) === null && config.all !== true
  );
}

/** The variables that say whose login a command acts on. */
const SESSION_CHOOSERS: readonly (string | undefined)[] = [SETTINGS.session.env, SETTINGS['sessions-dir'].env];

/**
 * The unknown variable that was meant to choose the session (`KEEPER_SESION_ID` for KEEPER_SESSION_ID), when no
 * session id was given: the command would act on the default session, which may be another bot's login. Null
 * otherwise.
 */
function guessedSession(config: StartConfig): StartConfig['unknownVariables'][number] | null {
  if (!implicitSession(config)) return null;
  return config.unknownVariables.find((variable) => SESSION_CHOOSERS.includes(variable.suggestion ?? undefined)) ?? null;
}

/**
 * Refuses, before anything is read or written, a command whose session was meant to be chosen by a variable
 * whose name is misspelled (see guessedSession): restoring or backing up the default session then swaps two
 * bots' logins. Doctor reports it as a failing check instead. Throws UsageError (exit 64).
 */
export function refuseGuessedSession(config: StartConfig): void {
  const problem = config.command === 'doctor' ? null : guessedSessionProblem(config);
  if (problem) throw new UsageError(problem);
}

/** What is wrong when a misspelled variable was meant to choose the session (guessedSession), else null. */
export function guessedSessionProblem(config: StartConfig): string | null {
  const guessed = guessedSession(config);
  if (!guessed) return null;
  return (
    `${guessed.name} is not a setting (did you mean ${guessed.suggestion}?) and no session id is given: ${config.command} ` +
    `would act on the session "${config.sessionId}", which may be another bot's login. Correct the variable's name, ` +
    `or give the session with --session`
  );
}

/** The warnings `config` gives reason for, in a fixed order: unknown variables (one each), then the session id. */
export function startWarnings(config: StartConfig): StartWarning[] {
  const warnings: StartWarning[] = config.unknownVariables.map((variable) => ({
    check: 'environment',
    message: describeUnknownVariable(variable, config.command),
    fields: { variable: variable.name, suggestion: variable.suggestion ?? variable.oneShotFlag },
  }));
  if (implicitSession(config)) {
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
