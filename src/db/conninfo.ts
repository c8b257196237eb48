// A libpq connection string → its keyword/value pairs, in either of libpq's two forms: the URI
// (postgres://user:password@host:port/dbname?key=value) or key=value settings (host=db dbname=app).
// Anything that does not read one way only is refused, and no error shows more than the user name.
import { UsageError } from '../errors.js';

/** Keyword → value, as libpq would have read them from the string (the URI's parts under their keyword names). */
export type Keywords = Record<string, string>;

const URI_PREFIX = /^postgres(?:ql)?:\/\//;

export const PERCENT_ENCODING_HINT =
  'percent-encode special characters in the user name and password (@ → %40, # → %23, / → %2F, ? → %3F, : → %3A, % → %25, space → %20), ' +
  "as JavaScript's encodeURIComponent does";

/**
 * Parses `text` (named `source` in messages) into keyword/value pairs; throws UsageError on anything
 * malformed or ambiguous, with a message that shows nothing after the user name.
 */
export function parseConnectionString(text: string, source: string): Keywords {
  const trimmed = text.trim();
  if (URI_PREFIX.test(trimmed)) return parseUri(trimmed, source);
  if (/^[A-Za-z_]+\s*=/.test(trimmed)) return parseKeywordValue(trimmed, source);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(trimmed)?.[1];
  throw new UsageError(
    scheme
      ? `${source} starts with ${scheme}://, which is not PostgreSQL's: use ` +
          `postgres:// or postgresql:// (e.g. postgres://user:password@host:5432/dbname)`
      : `${source} is not a PostgreSQL connection string: use postgres://user:password@host:5432/dbname, ` +
          `or key=value settings such as host=db dbname=app user=keeper`,
  );
}

/** The part of a malformed URI that is safe to show: the scheme and, when one is clearly there, the user name. */
export function safeUriPrefix(text: string): string {
  const match = /^(postgres(?:ql)?:\/\/)([^:@/?#]*)[:@]/.exec(text.trim());
  // Only a user name that an '@' follows somewhere is a user name; otherwise it may be the host (or a password).
  if (match && text.includes('@')) return `${match[1]}${match[2]}@…`;
  return `${/^postgres(?:ql)?:\/\//.exec(text.trim())?.[0] ?? ''}…`;
}

function parseUri(text: string, source: string): Keywords {
  const ambiguous = (what: string) =>
    new UsageError(`${source} (${safeUriPrefix(text)}) does not parse unambiguously: ${what}; ${PERCENT_ENCODING_HINT}`);
  if (text.includes('#')) throw ambiguous("it contains '#', which a PostgreSQL URI never has unencoded");
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) throw ambiguous("it contains a '%' that does not start a %XX escape");
  if (/\s/.test(text)) throw ambiguous('it contains white space');
  const afterScheme = text.replace(URI_PREFIX, '');
  const authorityEnd = afterScheme.search(/[/?]/);
  const authority = authorityEnd === -1 ? afterScheme : afterScheme.slice(0, authorityEnd);
  const rest = authorityEnd === -1 ? '' : afterScheme.slice(authorityEnd);
  const queryStart = rest.indexOf('?');
  const pathPart = queryStart === -1 ? rest : rest.slice(0, queryStart);
  // libpq splits user info at the first '@', WHATWG URL parsers at the last: with two they disagree.
  if ((authority.match(/@/g) ?? []).length > 1) throw ambiguous("it has more than one '@' before the host");
  // An '@' after a '/' means the password ended early at a '/' or '?', and what follows as host is a piece of it.
  if (pathPart.includes('@') || (!authority.includes('@') && rest.includes('@') && !/[?&][a-z_]+=[^&]*@/.test(rest))) {
    throw ambiguous("an '@' comes after the host, so a '/' or '?' in the password cut it short");
  }
  const hostPart = authority.slice(authority.indexOf('@') + 1);
  if (hostPart.includes(',')) {
    throw new UsageError(
      `${source} (${safeUriPrefix(text)}) names several hosts: the keeper connects to one host only; give your provider's single endpoint`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw ambiguous('the host or port is not valid (a password with an unencoded character often does this)');
  }
  if (hostPart !== '' && !/^(\[[0-9A-Fa-f:.]+\]|[^:[\]]*)(:\d*)?$/.test(hostPart)) throw ambiguous('the host or port is not valid');
  const keywords: Keywords = {};
  const decode = (value: string, what: string): string => {
    try {
      return decodeURIComponent(value);
    } catch (error) {
      throw new UsageError(`${source} (${safeUriPrefix(text)}): the ${what} is not valid percent-encoded UTF-8; ${PERCENT_ENCODING_HINT}`, {
        cause: error,
      });
    }
  };
  if (url.username) keywords['user'] = decode(url.username, 'user name');
  if (authority.includes('@') && authority.slice(0, authority.indexOf('@')).includes(':'))
    keywords['password'] = decode(url.password, 'password');
  const hostname = url.hostname.replace(/^\[(.+)\]$/, '$1');
  if (hostname) keywords['host'] = decode(hostname, 'host');
  if (url.port) keywords['port'] = url.port;
  if (url.pathname.length > 1) keywords['dbname'] = decode(url.pathname.slice(1), 'database name');
  // URLSearchParams would turn '+' into a space; libpq does not, so the query is split by hand.
  for (const pair of url.search.slice(1).split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = decode(equals === -1 ? pair : pair.slice(0, equals), 'query string');
    if (!/^[a-z_]{1,64}$/.test(name)) {
      throw new UsageError(
        `${source} (${safeUriPrefix(text)}) has a malformed query string (after ` +
          `'?' expected name=value pairs joined by '&'); ${PERCENT_ENCODING_HINT}`,
      );
    }
    if (equals === -1) throw new UsageError(`${source}: the parameter ${name} has no value; write ${name}=VALUE`);
    keywords[name] = decode(pair.slice(equals + 1), `value of ${name}`);
  }
  return keywords;
}

/** libpq's key=value form: white space between pairs; a value is bare or in single quotes, with \ escaping. */
function parseKeywordValue(text: string, source: string): Keywords {
  const keywords: Keywords = {};
  let i = 0;
  const malformed = (what: string) =>
    new UsageError(
      `${source} is not valid key=value settings: ${what} (write key=value ` +
        `pairs separated by spaces; quote a value with spaces or quotes as 'it\\'s')`,
    );
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const start = i;
    while (i < text.length && /[A-Za-z0-9_]/.test(text[i]!)) i++;
    const name = text.slice(start, i);
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (name === '' || text[i] !== '=') throw malformed(name === '' ? 'a setting does not start with a name' : `missing '=' after ${name}`);
    i++;
    while (i < text.length && /\s/.test(text[i]!)) i++;
    let value = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= text.length) throw malformed(`the quoted value of ${name} is not closed`);
        const char = text[i]!;
        if (char === "'") break;
        if (char === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      i++;
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
    }
    keywords[name.toLowerCase()] = value;
  }
  return keywords;
}
