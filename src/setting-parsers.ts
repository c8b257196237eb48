// How the text of a flag or an environment variable becomes a setting's value. Each row of the settings
// table (options.ts) names one of these; its default must read back through it (test/unit/settings.test.ts).
import { decodeKey, KeyRing, makeKey } from './crypto.js';
import { UsageError } from './errors.js';
import { isValidSessionId, SESSION_ID_RULE } from './names.js';
import { parseEndpoint } from './notify/url.js';
import { parseRetention } from './store/retention.js';

/**
 * Reads `raw` (a flag's value or an environment variable, never empty) into a value, or throws a
 * UsageError (exit 64) naming `label` (`--flag / ENV`, as the setting is given). `format`, when set,
 * writes a value back as text (help shows the default with it); without it String(value) does.
 */
export interface Parser<T> {
  (raw: string, label: string): T;
  format?(value: T): string;
  /** Set on duration parsers: what they accept (help explains it; the settings test tries every such row). */
  readonly duration?: DurationRule;
}

const parser = <T>(parse: (raw: string, label: string) => T, format?: (value: T) => string): Parser<T> =>
  Object.assign(parse, format ? { format } : {});

/** The text as given. */
export const text: Parser<string> = parser((raw) => raw);

/** A switch's variable: 1/true/yes or 0/false/no, any case (its flag is true by being there). */
export const boolean: Parser<boolean> = parser((raw, label) => {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes'].includes(value)) return true;
  if (['0', 'false', 'no'].includes(value)) return false;
  throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: use 1/true/yes or 0/false/no`);
});

/** A plain decimal integer >= min (a count or a size; durations take `duration`). */
export function integer({ min }: { min: number }): Parser<number> {
  return parser((raw, label) => {
    const trimmed = raw.trim();
    if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed)) || Number(trimmed) < min) {
      throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: expected a whole number >= ${min}`);
    }
    return Number(trimmed);
  });
}

/** The units a duration is written in, longest first, with their length in ms (SPEC "Command options"). */
const DURATION_UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;
/** A duration with units, Go's way (Litestream, Kubernetes): one or more numbers, each with its unit: 30s, 1.5h, 1h30m. */
const WITH_UNITS = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+)(?:\.(\d+))?(ms|s|m|h|d)/g;

/** The ms of a text WITH_UNITS matched; NaN when a fraction leaves part of a millisecond. */
function withUnits(text: string): number {
  let total = 0;
  for (const [, whole, fraction = '', unit] of text.matchAll(PART)) {
    const size = DURATION_UNITS.find(([name]) => name === unit)![1];
    // Exact: the fraction's digits as an integer, times the unit, over its power of ten.
    const part = (Number(fraction || '0') * size) / 10 ** fraction.length;
    if (!Number.isInteger(part)) return Number.NaN;
    total += Number(whole) * size + part;
  }
  return total;
}

/**
 * The longest duration any setting takes, ms: 24 days, just under the 2^31-1 ms a Node.js timer holds (a longer
 * one fires after 1 ms, so `--interval 30d` would audit without pause).
 */
export const MAX_DURATION_MS = 24 * 86_400_000;

/** What a duration setting accepts (the settings test reads it to try every duration row). */
export interface DurationRule {
  /** At least this many ms. */
  readonly minMs: number;
  /** At most this many ms. */
  readonly maxMs: number;
  /**
   * The unit of a bare number (`1000`), which the settings that took plain numbers before units keep: `ms` for
   * the `*_MS` variables, `s` for the `*_SECONDS` ones. null: a unit is required (every newer setting).
   */
  readonly bareUnit: 'ms' | 's' | null;
}

/** `ms` milliseconds written exactly in the longest unit that divides it: 120000 → `2m`, 1500 → `1500ms`, 0 → `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const [unit, size] = DURATION_UNITS.find(([, size]) => ms % size === 0)!;
  return `${ms / size}${unit}`;
}

/**
 * A duration — a number with its unit, `250ms`, `30s`, `5m`, `1h`, `7d` (SPEC "Command options"), or several as
 * Go writes them (`1.5h`, `1h30m`) — or, where `bareUnit` is set, a bare whole number in that unit; read into
 * whole milliseconds, within minMs..maxMs (maxMs at most MAX_DURATION_MS). Throws UsageError naming the
 * setting and the value, with an example. Written back exactly (formatDuration).
 */
export function duration({ minMs, maxMs = MAX_DURATION_MS, bareUnit = null }: Partial<DurationRule> & { minMs: number }): Parser<number> {
  const rule: DurationRule = { minMs, maxMs: Math.min(maxMs, MAX_DURATION_MS), bareUnit };
  const bare = bareUnit === null ? '' : `, or a bare whole number of ${bareUnit === 'ms' ? 'milliseconds' : 'seconds'}`;
  const parse = parser(
    (raw, label) => {
      const text = raw.trim();
      const bareNumber = bareUnit !== null && /^\d+$/.test(text);
      const match = bareNumber || WITH_UNITS.test(text);
      const value = bareNumber ? Number(text) * (bareUnit === 's' ? 1_000 : 1) : match ? withUnits(text) : Number.NaN;
      const range = `at least ${formatDuration(rule.minMs)} and at most ${formatDuration(rule.maxMs)}`;
      if (!match) {
        throw new UsageError(
          `invalid ${label} ${JSON.stringify(raw)}: expected a number with its unit (ms, s, m, h or d), ` +
            `such as ${durationExample(rule)}${bare}; ${range}`,
        );
      }
      if (!Number.isSafeInteger(value) || value < rule.minMs || value > rule.maxMs) {
        const why = Number.isNaN(value) ? 'not a whole number of milliseconds; ' : '';
        throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: ${why}give ${range}, such as ${durationExample(rule)}`);
      }
      return value;
    },
    (value: number) => formatDuration(value),
  );
  return Object.assign(parse, { duration: rule });
}

/** An example a duration setting accepts: 30s, or its minimum when that is longer. */
function durationExample(rule: DurationRule): string {
  return formatDuration(Math.min(Math.max(30_000, rule.minMs), rule.maxMs));
}

/**
 * An http(s) URL to send to (webhook, heartbeat), checked as the sender will use it (src/notify/url.ts). Its
 * user info, path and query may hold a secret: a bad one is refused without repeating it.
 */
export const webhookUrl: Parser<string> = parser((raw, label) => {
  parseEndpoint(raw.trim(), label);
  return raw.trim();
});

/**
 * One of `values`. `label` replaces the setting's own in the message; `use` says what to write instead
 * (default: "use A, B, C").
 */
export function oneOf<const V extends string>(values: readonly V[], options: { label?: string; use?: string } = {}): Parser<V> {
  return parser((raw, label) => {
    const value = raw.trim();
    if ((values as readonly string[]).includes(value)) return value as V;
    throw new UsageError(`invalid ${options.label ?? label} ${JSON.stringify(raw)}: ${options.use ?? `use ${values.join(', ')}`}`);
  });
}

/** An address to listen on: HOST:PORT, [IPv6]:PORT or :PORT (all interfaces). */
export const listen: Parser<{ readonly host: string; readonly port: number }> = parser(
  (raw, label) => {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw.trim());
    const port = Number(match?.[3]);
    if (!match || port > 65535) {
      throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: expected HOST:PORT such as 0.0.0.0:9464 or [::]:9464`);
    }
    return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
  },
  ({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`,
);

/** An ISO-8601 date or time that exists on the calendar. */
export const isoTime: Parser<Date> = parser(
  (raw, label) => {
    // Date.parse accepts many shapes; require ISO-8601 so "--at 5" is not silently year 2001.
    if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw.trim())) {
      throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: expected an ISO-8601 time such as 2026-01-31T12:00:00Z`);
    }
    const date = new Date(raw.trim());
    const [year, month, day] = raw.trim().slice(0, 10).split('-').map(Number) as [number, number, number];
    // new Date() rolls 2026-02-31 over into March: reject days the month does not have.
    const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
    if (Number.isNaN(date.getTime()) || month < 1 || month > 12 || day < 1 || day > daysInMonth) {
      throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: not a real date`);
    }
    return date;
  },
  (value) => value.toISOString(),
);

/** A session id (names.ts: SESSION_ID_RULE). */
export const sessionId: Parser<string> = parser((raw) => {
  if (!isValidSessionId(raw)) throw new UsageError(`invalid session id ${JSON.stringify(raw)}: use ${SESSION_ID_RULE}`);
  return raw;
});

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** A PostgreSQL schema name the keeper can use unquoted. */
export const schemaName: Parser<string> = parser((raw) => {
  if (!SCHEMA_PATTERN.test(raw)) {
    throw new UsageError(`invalid schema ${JSON.stringify(raw)}: use a lowercase identifier (a-z, 0-9, _), at most 63 characters`);
  }
  return raw;
});

/** A retention schedule (retention.ts: RETENTION_GRAMMAR), checked and kept as text: --keep joins it in config.ts. */
export const retentionSchedule: Parser<string> = parser((raw, label) => {
  parseRetention(raw, 1, label);
  return raw;
});

/** What an Authorization: Bearer header can carry (RFC 6750 b64token). */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** A bearer token (RFC 6750), trimmed. Messages never show the token, only what is wrong with it. */
export const bearerToken: Parser<string> = parser((raw, label) => {
  const token = raw.trim();
  if (!BEARER_TOKEN.test(token))
    throw new UsageError(
      `the API token (${label}) has characters a bearer token cannot carry ` +
        '(spaces or others outside A-Z a-z 0-9 - . _ ~ + / and trailing =, RFC 6750), so no request could ever match it: ' +
        'use a long random token, e.g. the output of `openssl rand -hex 32`',
    );
  return token;
});

export const KEY_HINT = 'use 32 random bytes in base64, e.g. the output of `openssl rand -base64 32`';

/**
 * One encryption key in base64 (32 bytes), as a key ring of that key alone, identified by its
 * fingerprint (fp-…, derived from the key, so the same key always has the same id). Messages never
 * include key bytes.
 */
export const encryptionKey: Parser<KeyRing> = parser((raw, label) => {
  const key = decodeKey(raw);
  if (typeof key === 'string') {
    const fix = key === 'it is empty' ? `${KEY_HINT}, or unset the variable to store contents in plaintext` : KEY_HINT;
    throw new UsageError(`${label} is not a valid encryption key (${key}): ${fix}`);
  }
  return new KeyRing([makeKey(key)]);
});
