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
}

const PREFIX = 'KEEPER';

/**
 * The keeper's namespace: `KEEPER_` in any case, or a first word one letter off it (`KEPER_`, `KEEPR_`,
 * `KEEPERS_`), so that a typo in the prefix is caught too. No name outside it is judged: `run` shares its
 * environment with the bot, whose own variables are none of the keeper's business.
 */
function inNamespace(name: string): boolean {
  const word = name.toUpperCase().split('_')[0]!;
  return name.includes('_') && (word === PREFIX || distance(word, PREFIX) === 1);
}

/** A unit at the end of a name, which the settings spell _MS or _SECONDS: WAIT_MS means WAIT_SECONDS. */
const UNIT_SUFFIX = /_(MS|MILLIS|MILLISECONDS|S|SEC|SECS|SECONDS)$/;

/** The variable of a setting that `name` (upper case, prefix spelled right) most likely meant, or null. */
function closestSetting(name: string, settings: readonly string[]): string | null {
  const base = name.replace(UNIT_SUFFIX, '');
  return settings.find((setting) => setting !== name && setting.replace(UNIT_SUFFIX, '') === base) ?? didYouMean(name, settings);
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
    unknown.push({ name, suggestion: oneShotFlag ? null : closestSetting(normalised, settings), oneShotFlag });
  }
  return unknown;
}

/** One line about an unknown variable: its name and what to do, never its value. */
export function describeUnknownVariable(variable: UnknownVariable, command: string): string {
  const ignored = `${variable.name} is not a setting and is ignored`;
  if (variable.oneShotFlag)
    return `${ignored}: ${variable.oneShotFlag} is a one-shot flag with no environment variable on purpose; give it on the command line of the one run it is for`;
  if (variable.suggestion) return `${ignored}: did you mean ${variable.suggestion}?`;
  return `${ignored}: see 'baileys-keeper ${command} --help' for the variables it reads`;
}
