// The status page's script, served inline and allowed by its hash in the Content-Security-Policy
// (src/status-page.ts). Every value the keeper sends is written with textContent or as an attribute's
// text, never parsed as HTML: a session id, folder or phone of `<img onerror=…>` shows as those characters.
// The API token lives in this tab's sessionStorage only and travels as the bearer header, never in a URL.
(() => {
  /** How often the page asks again, ms. */
  const REFRESH_MS = 5000;
  /** An overview not answered within this long counts as the keeper not reachable, ms. */
  const TIMEOUT_MS = 4000;
  /**
   * How long a session call may take, ms: longer than the keeper takes to give up on a hung database and
   * answer 503 with its reason (about 10 s), so the page can show that reason.
   */
  const SESSION_TIMEOUT_MS = 15000;
  /** What a bearer header can carry: RFC 6750 b64token, the rule the keeper applies to KEEPER_API_TOKEN. */
  const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
  /** Generations shown for the chosen session. */
  const HISTORY_ROWS = 20;
  /** Events shown. */
  const EVENT_ROWS = 20;
  const TOKEN_KEY = 'baileys-keeper-token';
  const BAD_TOKEN =
    'That is not a token the keeper could have: only A-Z a-z 0-9 - . _ ~ + / and trailing = (no spaces, no dash ' +
    'or quote pasted from a document as — or ’). Nothing was kept: paste its KEEPER_API_TOKEN exactly.';

  const byId = (id) => document.getElementById(id);
  const ui = {
    connection: byId('connection'),
    verdict: byId('verdict'),
    overview: byId('overview'),
    login: byId('login'),
    token: byId('token'),
    note: byId('session-note'),
    box: byId('sessions-box'),
    count: byId('session-count'),
    logout: byId('logout'),
    table: byId('sessions'),
    rows: byId('sessions').tBodies[0],
    historyBox: byId('history-box'),
    historySession: byId('history-session'),
    history: byId('history').tBodies[0],
    eventsBox: byId('events-box'),
    events: byId('events'),
  };

  const state = {
    /** The keeper's clock minus ours, ms, so that "ago" is measured on the keeper's clock. */
    skew: 0,
    sessions: [],
    sort: { key: 'attention', dir: 1 },
    /** Session id whose history is shown, or null. */
    selected: null,
    /** Rows by session id, each { tr, cells }. */
    rows: new Map(),
    shown: { events: '', history: '' },
    downSince: null,
    /** The last overview, and the session table's sessions when the last session call answered, else null. */
    overview: null,
    table: null,
  };

  function setText(element, text) {
    const value = String(text);
    if (element.textContent !== value) element.textContent = value;
  }

  function setTitle(element, text) {
    if (text) element.setAttribute('title', text);
    else element.removeAttribute('title');
  }

  function storedToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  }

  function setToken(value) {
    try {
      if (value === null) sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
      // Storage refused (a private window's quota): the page then asks again after a reload.
    }
  }

  /** GET `path` (relative, so the page works behind a path prefix); { status, body } or a thrown network error. */
  async function getJson(path, token, timeout = TIMEOUT_MS) {
    const headers = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(path, {
      headers,
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
      signal: AbortSignal.timeout(timeout),
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    return { status: response.status, body, retryAfter: response.headers.get('retry-after') };
  }

  const now = () => Date.now() + state.skew;

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function ago(iso) {
    if (!iso) return 'never';
    return `${duration((now() - Date.parse(iso)) / 1000)} ago`;
  }

  const two = (n) => String(n).padStart(2, '0');
  function clock(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }

  function bytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function showConnection(up) {
    if (up) {
      state.downSince = null;
      ui.connection.classList.remove('down');
      document.body.classList.remove('stale');
      setText(ui.connection, `updated ${clock(new Date().toISOString()).slice(11)}`);
      return;
    }
    state.downSince ??= new Date().toISOString();
    ui.connection.classList.add('down');
    document.body.classList.add('stale');
    setText(ui.connection, `✗ cannot reach the keeper (since ${clock(state.downSince).slice(11)}); retrying every ${REFRESH_MS / 1000} s`);
  }

  function overviewField(key, text) {
    setText(ui.overview.querySelector(`[data-key="${key}"]`), text);
  }

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const NO_LOGIN = '(logged out or waiting for a QR scan)';

  /**
   * The headline. With the session table (the token, and the session API answered) it judges every session
   * the table lists but the removed ones, whichever keeper keeps them; else this keeper's sessions from the
   * overview, and says so. A stored session without a login (unpaired, logged out) has no login to be safe.
   */
  function showVerdict() {
    const o = state.overview;
    if (!o) return;
    const listed = state.table?.filter((s) => !s.removed);
    const total = listed ? listed.length : o.sessions;
    const unprotected = listed ? listed.filter((s) => !s.protected).length : o.sessions - o.protected;
    const noLogin = listed ? listed.filter((s) => s.state !== 'paired').length : o.sessions - o.paired;
    const scope = listed ? `${total}` : `this keeper's ${total}`;
    let verdict;
    let tone;
    if (!o.healthy) [verdict, tone] = ['✗ The backup loop is not running: see /healthz and the keeper log', 'bad'];
    else if (total === 0) [verdict, tone] = [o.ready ? '– No sessions yet' : '… Starting', 'warn'];
    else if (unprotected > 0) [verdict, tone] = [`⚠ ${unprotected} of ${scope} sessions NOT protected`, 'bad'];
    else if (noLogin > 0) {
      const all = listed
        ? `All ${plural(total, 'session', 'sessions')} stored`
        : `All of this keeper's ${plural(total, 'session', 'sessions')} stored`;
      [verdict, tone] = [`⚠ ${all}; ${noLogin} of ${total} ${noLogin === 1 ? 'has' : 'have'} no login ${NO_LOGIN}`, 'warn'];
    } else if (listed) [verdict, tone] = [`✓ Every login is stored (${total} of ${total} sessions protected)`, 'ok'];
    else
      [verdict, tone] = [
        `✓ Every login of this keeper's ${plural(total, 'session', 'sessions')} is stored (${total} of ${total} protected)`,
        'ok',
      ];
    if (o.healthy && !o.ready) verdict += ' (starting)';
    setText(ui.verdict, verdict);
    const className = `verdict ${tone}`;
    if (ui.verdict.className !== className) ui.verdict.className = className;
  }

  function showOverview(o) {
    state.overview = o;
    state.skew = Date.parse(o.started_at) + o.uptime_seconds * 1000 - Date.now();
    const unprotected = o.sessions - o.protected;
    overviewField('sessions', o.sessions);
    overviewField('protected', unprotected > 0 ? `⚠ ${o.protected} of ${o.sessions}` : `✓ ${o.protected} of ${o.sessions}`);
    overviewField('paired', o.paired < o.sessions ? `⚠ ${o.paired} of ${o.sessions}` : `${o.paired} of ${o.sessions}`);
    overviewField('lag', duration(o.oldest_lag_seconds));
    overviewField('last_backup', ago(o.last_backup_at));
    setTitle(ui.overview.querySelector('[data-key="last_backup"]'), clock(o.last_backup_at));
    overviewField('health', `${o.healthy ? 'running' : 'failing'}, ${o.ready ? 'ready' : 'not ready'}`);
    overviewField('version', o.version);
    overviewField('uptime', duration(o.uptime_seconds));
  }

  /**
   * 0: unprotected, 1: logged out, 2: fine, 3: removed (its directory is gone for good: a departed
   * customer, nothing on disk to protect) — the order the table keeps first.
   */
  function rank(s) {
    if (s.removed) return 3;
    if (!s.protected) return 0;
    if (s.state === 'logged_out') return 1;
    return 2;
  }

  const SORT_KEYS = {
    // Within a rank (the order every column keeps first), the Status column orders by session id.
    attention: (s) => s.session_id,
    id: (s) => s.session_id,
    state: (s) => s.state,
    since: (s) => (s.since ? -Date.parse(s.since) : Number.NEGATIVE_INFINITY),
    generation: (s) => s.generation,
    files: (s) => s.files,
    bytes: (s) => s.bytes,
    updated: (s) => (s.updated_at ? Date.parse(s.updated_at) : 0),
    holder: (s) => s.lease_holder ?? '',
  };

  function compare(a, b) {
    if (a < b) return -1;
    return a > b ? 1 : 0;
  }

  /**
   * Unprotected and logged-out sessions first, removed ones last, whatever the column and its direction
   * (docs/http-api.md, "Status page"); then the chosen column; then the id.
   */
  function sorted(sessions) {
    const { key, dir } = state.sort;
    const value = SORT_KEYS[key];
    return [...sessions].sort(
      (a, b) => compare(rank(a), rank(b)) || compare(value(a), value(b)) * dir || compare(a.session_id, b.session_id),
    );
  }

  const LABELS = ['Status', 'Session', 'Login', 'Unprotected', 'Generation', 'Files', 'Bytes', 'Last backup', 'Lease holder'];

  function makeRow(id) {
    const tr = document.createElement('tr');
    const cells = LABELS.map((label, index) => {
      const td = document.createElement('td');
      td.dataset.label = label;
      if (index >= 4 && index <= 6) td.className = 'num';
      tr.append(td);
      return td;
    });
    const mark = document.createElement('span');
    mark.className = 'mark';
    const reasons = document.createElement('span');
    reasons.className = 'detail';
    cells[0].append(mark, reasons);
    const open = document.createElement('button');
    open.type = 'button';
    open.addEventListener('click', () => selectSession(id));
    const folder = document.createElement('span');
    folder.className = 'detail';
    cells[1].append(open, folder);
    const login = document.createElement('span');
    const phone = document.createElement('span');
    phone.className = 'detail';
    cells[2].append(login, phone);
    return { tr, cells, mark, reasons, open, folder, login, phone };
  }

  function fillRow(row, s) {
    const logged = s.state === 'logged_out';
    const flag = s.removed ? 'removed' : !s.protected ? 'unprotected' : logged ? 'logged_out' : 'ok';
    if (row.tr.className !== flag) row.tr.className = flag;
    const marks = [];
    if (s.removed) marks.push('– removed');
    else if (!s.protected) marks.push('⚠ UNPROTECTED');
    if (logged) marks.push('⊘ LOGGED OUT');
    if (marks.length === 0) marks.push('✓ protected');
    setText(row.mark, marks.join(' · '));
    setText(row.reasons, s.protected || s.removed ? '' : s.reasons.join(', '));
    setText(row.open, s.session_id);
    setText(row.folder, s.folder === undefined ? '' : `folder: ${s.folder}`);
    setText(row.login, s.state.replace('_', ' '));
    setText(row.phone, logged && s.logged_out_at ? `since ${clock(s.logged_out_at)}` : (s.phone ?? ''));
    setText(row.cells[3], s.protected || s.removed || !s.since ? '—' : duration((now() - Date.parse(s.since)) / 1000));
    setText(row.cells[4], s.generation);
    setText(row.cells[5], s.files);
    setText(row.cells[6], bytes(s.bytes));
    setText(row.cells[7], ago(s.updated_at));
    setTitle(row.cells[7], clock(s.updated_at));
    setText(row.cells[8], s.lease_holder ?? 'none');
  }

  /** Updates the table in place: rows are kept by session id, cells rewritten only when their text changes. */
  function showSessions() {
    const order = sorted(state.sessions);
    const seen = new Set();
    order.forEach((s, index) => {
      let row = state.rows.get(s.session_id);
      if (!row) {
        row = makeRow(s.session_id);
        state.rows.set(s.session_id, row);
      }
      seen.add(s.session_id);
      fillRow(row, s);
      if (ui.rows.children[index] !== row.tr) ui.rows.insertBefore(row.tr, ui.rows.children[index] ?? null);
    });
    for (const [id, row] of state.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        state.rows.delete(id);
      }
    }
    const attention = state.sessions.filter((s) => rank(s) < 2).length;
    setText(ui.count, `${state.sessions.length} sessions${attention > 0 ? `, ${attention} need attention (listed first)` : ''}`);
    for (const th of ui.table.tHead.rows[0].cells) {
      const key = th.firstElementChild.dataset.sort;
      if (key === state.sort.key) th.setAttribute('aria-sort', state.sort.dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = String(text);
    if (className) td.className = className;
    return td;
  }

  function showEvents(events) {
    const shown = events.slice(0, EVENT_ROWS);
    const signature = JSON.stringify(shown);
    if (signature === state.shown.events) return;
    state.shown.events = signature;
    ui.eventsBox.hidden = false;
    const items = shown.map((e) => {
      const li = document.createElement('li');
      const when = document.createElement('time');
      when.dateTime = e.at;
      when.textContent = clock(e.at);
      const generation = e.generation === null ? '' : ` (generation ${e.generation})`;
      li.append(when, ` ${e.event.replace('_', ' ')}: ${e.session_id}${generation}`);
      return li;
    });
    if (items.length === 0) items.push(Object.assign(document.createElement('li'), { textContent: 'none yet' }));
    ui.events.replaceChildren(...items);
  }

  function showHistory(body) {
    const signature = JSON.stringify(body.generations);
    setText(ui.historySession, body.session_id);
    ui.historyBox.hidden = false;
    if (signature === state.shown.history) return;
    state.shown.history = signature;
    ui.history.replaceChildren(
      ...body.generations.map((g) => {
        const tr = document.createElement('tr');
        tr.append(
          cell(g.generation, 'num'),
          cell(clock(g.created_at)),
          cell(g.reason),
          cell(g.files_changed, 'num'),
          cell(g.files_deleted, 'num'),
          cell(g.total_files, 'num'),
        );
        return tr;
      }),
    );
  }

  function note(text, error) {
    setText(ui.note, text);
    ui.note.className = error ? 'note error' : 'note';
  }

  function showSignedIn(signedIn) {
    ui.login.hidden = signedIn;
    ui.box.hidden = !signedIn;
    if (!signedIn) {
      state.rows.clear();
      state.sessions = [];
      ui.rows.replaceChildren();
      ui.eventsBox.hidden = true;
      ui.historyBox.hidden = true;
      state.selected = null;
      state.shown = { events: '', history: '' };
    }
  }

  /** Forgets the token and shows the form again, with `text` saying why. */
  function signOut(text) {
    setToken(null);
    showSignedIn(false);
    note(text, true);
  }

  /** The session call failed although the keeper answers: says so, keeps the last table (dimmed). */
  function sessionApiDown(text) {
    state.table = null;
    ui.box.classList.add('stale');
    note(`The keeper answers, but its session API does not: ${text}. Retrying every ${REFRESH_MS / 1000} s.`, true);
  }

  /**
   * The session table, events and history. A token the browser cannot send or the keeper refuses (401) is
   * forgotten; a session call that times out or answers 503 is the session API (its database), not the keeper.
   */
  async function refreshSessions(token) {
    if (!BEARER_TOKEN.test(token)) return signOut(BAD_TOKEN);
    let status;
    try {
      status = await getJson('api/session/status', token, SESSION_TIMEOUT_MS);
    } catch (error) {
      const timedOut = error?.name === 'TimeoutError';
      return sessionApiDown(
        timedOut
          ? `no answer within ${SESSION_TIMEOUT_MS / 1000} s (is its database hung?)`
          : `the request failed (${error?.message ?? error})`,
      );
    }
    if (status.status === 401) return signOut('The keeper refused that token (401: wrong token): paste its KEEPER_API_TOKEN again.');
    if (status.status === 503) {
      const wait = status.retryAfter ? `; it asks to retry after ${status.retryAfter} s` : '';
      return sessionApiDown(`503, ${status.body?.error ?? 'no reason given'}${wait}`);
    }
    if (status.status !== 200) {
      state.table = null;
      note(`The session API answered ${status.status}: ${status.body?.error ?? 'no reason given'}`, true);
      return;
    }
    note('', false);
    ui.box.classList.remove('stale');
    showSignedIn(true);
    state.sessions = status.body.sessions;
    state.table = state.sessions;
    showSessions();
    const events = await getJson('api/session/events', token, SESSION_TIMEOUT_MS).catch(() => null);
    if (events?.status === 200) showEvents(events.body.events);
    if (state.selected !== null) {
      const query = `session_id=${encodeURIComponent(state.selected)}&limit=${HISTORY_ROWS}`;
      const history = await getJson(`api/session/history?${query}`, token, SESSION_TIMEOUT_MS).catch(() => null);
      if (history?.status === 200) showHistory(history.body);
      else if (history?.status === 404) ui.historyBox.hidden = true;
    }
  }

  let timer = null;
  let running = false;
  /** Asked for while a refresh was running (a session chosen): refresh again at once. */
  let again = false;

  async function tick() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    again = false;
    clearTimeout(timer);
    try {
      let overview;
      try {
        overview = await getJson('api/overview', null);
        if (overview.status !== 200) throw new Error(`overview answered ${overview.status}`);
      } catch {
        // Only the overview decides "cannot reach the keeper": it needs no database and no token.
        showConnection(false);
        return;
      }
      showConnection(true);
      showOverview(overview.body);
      const token = storedToken();
      state.table = null;
      if (!overview.body.session_api) {
        showSignedIn(false);
        ui.login.hidden = true;
        note('This keeper has no API token (KEEPER_API_TOKEN), so it lists no sessions here.', false);
      } else if (token) await refreshSessions(token);
      else showSignedIn(false);
      // Judged once the table is known, so that a headline never shows green before the table says otherwise.
      showVerdict();
    } finally {
      running = false;
      timer = setTimeout(tick, again ? 0 : REFRESH_MS);
    }
  }

  function selectSession(id) {
    state.selected = id;
    state.shown.history = '';
    void tick();
  }

  ui.login.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = ui.token.value.trim();
    ui.token.value = '';
    if (value === '') return;
    // A header value outside Latin-1 makes fetch() throw before sending; spaces never match: say so, keep nothing.
    if (!BEARER_TOKEN.test(value)) return signOut(BAD_TOKEN);
    setToken(value);
    note('', false);
    void tick();
  });

  ui.logout.addEventListener('click', () => {
    setToken(null);
    showSignedIn(false);
    note('The token is forgotten.', false);
  });

  for (const button of ui.table.querySelectorAll('th button')) {
    button.addEventListener('click', () => {
      const key = button.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      showSessions();
    });
  }

  void tick();
})();
