// Variables meant for the keeper that name none of its settings. The environment is how the images are
// configured, and a misspelled name there (SESION_ID for SESSION_ID) was ignored in silence: the bot then
// kept the session `default`, which may be another bot's login. SPEC "Command options": each is warned about
// once, with the closest known name; only names are ever shown, never a value.
import { distance } from 'fastest-levenshtein';
import { environmentVariables, NOT_SETTINGS, SETTINGS, type Setting } from './options.js';
import { didYouMean } from './suggest.js';

/** A variable in the keeper's namespace that no setting reads. */
export interface UnknownVariable {
  /** Its name, as set. */
  readonly name: string;
  /** The known variable it most likely meant (same name in upper case, a typo of one), or null. */
  readonly suggestion: string | null;
  /** The one-shot flag it names (the prefix and FORCE: --force), which has no variable on purpose; or null. */
  readonly oneShotFlag: string | null;
  /**
   * The unit a bare number in the suggested variable is read in, when the name as set says another one
   * (the prefix, DEBOUNCE_SECONDS=5 for KEEPER_DEBOUNCE_MS: 5 would be 5 ms); null otherwise.
   */
  readonly bareUnit: 'milliseconds' | 'seconds' | null;
}

const PREFIX = 'KEEPER';

/**
 * The keeper's namespace: `KEEPER_` in any case, or a first word with one letter dropped or added (`KEPER_`,
 * `KEEPR_`, `KEEPERS_`), so that a typo in the prefix is caught too. One letter *replaced* is not a typo of it
 * but another word (`BEEPER_`, `PEEPER_`: a bot's own chat bridge). No name outside it is judged: `run` shares
 * its environment with the bot, whose own variables are none of the keeper's business.
 */
function inNamespace(name: string): boolean {
  const word = name.toUpperCase().split('_')[0]!;
  return name.includes('_') && (word === PREFIX || (word.length !== PREFIX.length && distance(word, PREFIX) === 1));
}

/**
 * What people write for the keeper's address: its HTTP port is part of KEEPER_LISTEN (HOST:PORT), which no
 * edit distance finds from the prefix and PORT.
 */
const LISTEN_WORDS = /^KEEPER_(PORT|HOST|BIND|ADDR|ADDRESS|LISTEN_(PORT|HOST|ADDR|ADDRESS)|(HTTP|METRICS|API)_(PORT|HOST|ADDR|ADDRESS))$/;

/** A unit at the end of a name, which the settings spell _MS or _SECONDS: WAIT_MS means WAIT_SECONDS. */
const UNIT_SUFFIX = /_(MS|MILLIS|MILLISECONDS|S|SEC|SECS|SECONDS)$/;

/**
 * The variable that `name` (upper case, prefix spelled right) most likely meant, or null: a variable of the
 * keeper's without the prefix (the prefix and DATABASE_URL: DATABASE_URL, the Railway/Heroku convention; the libpq PG*
 * variables), the listen address for a port, the same setting with another unit, else the closest spelling.
 */
function closestSetting(name: string, settings: readonly string[], unprefixed: readonly string[]): string | null {
  const rest = name.slice(PREFIX.length + 1);
  // libpq reads every PG* variable itself, unprefixed (the prefix and PGHOST: PGHOST).
  if (unprefixed.includes(rest) || /^PG[A-Z_]+$/.test(rest)) return rest;
  if (LISTEN_WORDS.test(name)) return `${PREFIX}_LISTEN`;
  const base = name.replace(UNIT_SUFFIX, '');
  return settings.find((setting) => setting !== name && setting.replace(UNIT_SUFFIX, '') === base) ?? didYouMean(name, settings);
}

/** The unit a bare number in `variable` is read in, by its name (SPEC "Command options"), or null. */
function bareUnitOf(variable: string): 'milliseconds' | 'seconds' | null {
  if (variable.endsWith('_MS')) return 'milliseconds';
  return variable.endsWith('_SECONDS') ? 'seconds' : null;
}

/** The unit a name as set says, by its suffix: _MS, _SECONDS and their spellings; null without one. */
function unitSaid(name: string): 'milliseconds' | 'seconds' | null {
  const suffix = UNIT_SUFFIX.exec(name)?.[1];
  if (suffix === undefined) return null;
  return suffix.startsWith('M') ? 'milliseconds' : 'seconds';
}

/**
 * Kubernetes puts a service's address into every pod of its namespace as variables named after it
 * (enableServiceLinks), so a Service called `keeper` gives the keeper the prefix with _SERVICE_HOST, _PORT and
 * the like. These exact shapes are Kubernetes', not typos; a bare _PORT only with the value Kubernetes gives it.
 */
const SERVICE_LINK = /^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)$/;
const SERVICE_LINK_PORT = /^(tcp|udp|sctp):\/\/[^\s/]+:\d+$/;

function isServiceLink(name: string, value: string | undefined): boolean {
  return SERVICE_LINK.test(name) || (name.endsWith('_PORT') && SERVICE_LINK_PORT.test(value ?? ''));
}

/**
 * The variables of `env` (in its order) that are in the keeper's namespace but are no variable it knows,
 * each once, with what it probably meant. Values are only looked at to tell a Kubernetes service link.
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): UnknownVariable[] {
  const settings = environmentVariables().filter((name) => name.startsWith(`${PREFIX}_`));
  // DATABASE_URL: the prefix and DATABASE_URL is a guess at it, and would otherwise be ignored in silence while the
  // keeper falls back to the next database source.
  const unprefixed = environmentVariables().filter((name) => !name.startsWith(`${PREFIX}_`));
  const known = new Set([...environmentVariables(), ...NOT_SETTINGS.map(([name]) => name)]);
  const oneShot = new Map(
    (Object.entries(SETTINGS) as Array<[string, Setting]>)
      .filter(([, setting]) => setting.oneShot)
      .map(([flag]) => [`${PREFIX}_${flag.toUpperCase().replaceAll('-', '_')}`, `--${flag}`]),
  );
  const unknown: UnknownVariable[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (known.has(name) || !inNamespace(name) || isServiceLink(name, value)) continue;
    // Judged as written in upper case with the prefix spelled right: keeper_session_id, KEPER_SESSION_ID.
    const normalised = `${PREFIX}${name.toUpperCase().slice(name.indexOf('_'))}`;
    const oneShotFlag = oneShot.get(normalised) ?? null;
    const suggestion = oneShotFlag ? null : closestSetting(normalised, settings, unprefixed);
    const unit = suggestion === null ? null : bareUnitOf(suggestion);
    const said = unitSaid(normalised);
    unknown.push({ name, suggestion, oneShotFlag, bareUnit: unit !== null && said !== null && said !== unit ? unit : null });
  }
  return unknown;
}

/** One line about an unknown variable: its name and what to do, never its value. */
export function describeUnknownVariable(variable: UnknownVariable, command: string): string {
  const ignored = `${variable.name} is not a setting and is ignored`;
  if (variable.oneShotFlag)
    return `${ignored}: ${variable.oneShotFlag} is a one-shot flag with no environment variable on purpose; give it on the command line of the one run it is for`;
  if (variable.suggestion && variable.bareUnit)
    return `${ignored}: did you mean ${variable.suggestion}? A bare number there is in ${variable.bareUnit}; write the unit to be sure (30s, 500ms)`;
  if (variable.suggestion) return `${ignored}: did you mean ${variable.suggestion}?`;
  return `${ignored}: see 'baileys-keeper ${command} --help' for the variables it reads`;
}
