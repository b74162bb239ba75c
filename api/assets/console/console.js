// The Canopy console: the job queue, the customer tree and users, through
// the public GraphQL API alone, with the credential its user signs in with.
//
// Every element is built with the DOM and every value set as text, so
// nothing a caller wrote (a title, a name, an error) can become markup; the
// page's Content-Security-Policy requires Trusted Types, so even a mistake
// here could not turn a string into HTML.

const CREDENTIAL = 'canopy.console.credential';
const REFRESH_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';

const session = {
  credential: sessionStorage.getItem(CREDENTIAL) || localStorage.getItem(CREDENTIAL),
  viewer: null,
  timers: [],
};

// ---------------------------------------------------------------- the DOM

/** An element with properties and children; strings become text nodes. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'on') {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (name === 'class') {
      node.className = value;
    } else if (name === 'text') {
      node.textContent = value;
    } else if (name === 'data') {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return append(node, children);
}

const $ = (id) => document.getElementById(id);

function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A link to a view of the console; its text isolated, so a name written
 * right to left cannot reorder what stands around it. */
function link(path, text) {
  return el('a', { href: `#/${path.map(encodeURIComponent).join('/')}` }, el('bdi', {}, text));
}

/** Text a caller wrote, isolated in its direction. */
const written = (text) => el('bdi', {}, text);

function button(text, handler, props = {}) {
  return el('button', { type: 'button', ...props, on: { click: handler } }, text);
}

function when(value) {
  if (!value) return '—';
  const date = new Date(value);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

function table(caption, headings, rows, empty = 'None.') {
  if (rows.length === 0) return el('p', { class: 'empty' }, `${caption}: ${empty}`);
  return el(
    'table',
    {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows),
  );
}

/**
 * A one-field search form that shows in `results` what `find(term)`
 * answers, and an error as the API gave it.
 */
function searchForm({ id, label, input = {}, action = 'Search', results, find }) {
  const term = el('input', { id, required: true, ...input });
  return el(
    'form',
    {
      class: 'inline',
      role: 'search',
      on: {
        submit: async (event) => {
          event.preventDefault();
          clearError();
          try {
            replace(results, await find(term.value.trim()));
          } catch (error) {
            showError(error);
          }
        },
      },
    },
    el('label', { for: id }, label),
    term,
    el('button', { type: 'submit' }, action),
  );
}

// ------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(code, message, field) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

/**
 * Runs a GraphQL operation and answers its data; throws its first error as
 * the API gave it. With `partial`, data that came back with errors is
 * answered and the errors are shown.
 */
async function gql(query, variables = {}, { anonymous = false, partial = false } = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  const sent = anonymous ? null : session.credential;
  if (sent) headers.authorization = `Bearer ${sent}`;
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (cause) {
    throw new ApiError('NETWORK', `Canopy cannot be reached (${cause.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (body && Array.isArray(body.errors) && body.errors.length > 0) {
    const errors = body.errors.map((e) => {
      const extensions = e.extensions || {};
      const error = new ApiError(
        extensions.code || `HTTP_${response.status}`,
        e.message || 'the API answered with an error',
        extensions.field,
      );
      error.requestId = extensions.requestId;
      error.path = Array.isArray(e.path) ? e.path.join('.') : null;
      return error;
    });
    const first = errors[0];
    // Only a refusal of the credential in use ends it, not a late answer
    // to one replaced meanwhile.
    if (first.code === 'UNAUTHENTICATED' && sent && session.credential === sent) {
      forget();
      signIn(first);
      throw first;
    }
    if (partial && body.data) {
      showErrors(errors);
      return body.data;
    }
    throw first;
  }
  if (!body || !body.data) {
    throw new ApiError(`HTTP_${response.status}`, response.statusText || 'no answer');
  }
  return body.data;
}

/** Shows an error as the API gave it: its code, message and field. */
function showError(error) {
  showErrors([error]);
}

function showErrors(errors) {
  const alert = $('alert');
  replace(
    alert,
    errors.map((error) => {
      const parts = [el('strong', {}, error.code || 'ERROR'), ' ', error.message];
      if (error.field) parts.push(' ', el('span', { class: 'field' }, `(field: ${error.field})`));
      if (error.path) parts.push(' ', el('span', { class: 'field' }, `(at ${error.path})`));
      if (error.requestId) parts.push(' ', el('span', { class: 'field' }, `(request ${error.requestId})`));
      return el('div', {}, parts);
    }),
  );
  alert.hidden = false;
}

function clearError() {
  $('alert').hidden = true;
  $('alert').replaceChildren();
}

function say(text) {
  $('notice').textContent = text;
}

/** Runs an action from a button: disabled while it runs, errors shown;
 * the view is read again and focus goes back where it was. */
async function act(control, work, done) {
  const row = control.closest('tr');
  const focus = {
    label: control.textContent,
    row: row && row.dataset.kind ? `tr[data-kind="${CSS.escape(row.dataset.kind)}"]` : null,
  };
  control.disabled = true;
  clearError();
  try {
    const result = await work();
    if (done) say(done(result));
    await route({ focus });
  } catch (error) {
    showError(error);
    control.disabled = false;
  }
}

/** The button labelled `label` in `scope`, if there is one. */
function buttonLabelled(scope, label) {
  return [...scope.querySelectorAll('button')].find((b) => b.textContent === label && !b.disabled);
}

/** Rebuilds a part of a view that refreshes itself, keeping the keyboard
 * on the same button. */
function rebuild(section, ...children) {
  const focused = section.contains(document.activeElement) ? document.activeElement.textContent : null;
  replace(section, ...children);
  if (focused) buttonLabelled(section, focused)?.focus();
}

// ------------------------------------------------------------ signing in

function keep(credential, stay) {
  session.credential = credential;
  sessionStorage.removeItem(CREDENTIAL);
  localStorage.removeItem(CREDENTIAL);
  (stay ? localStorage : sessionStorage).setItem(CREDENTIAL, credential);
}

function forget() {
  session.credential = null;
  session.viewer = null;
  sessionStorage.removeItem(CREDENTIAL);
  localStorage.removeItem(CREDENTIAL);
}

async function signOut() {
  let ended = 'Signed out.';
  if (session.viewer && session.viewer.user) {
    try {
      await gql('mutation { logout }');
    } catch (error) {
      ended = `Signed out here; the server did not end the session (${error.code}).`;
    }
  }
  forget();
  say(ended);
  signIn();
}

function signIn(problem) {
  stopRefreshing();
  $('nav').hidden = true;
  $('sign-out').hidden = true;
  $('who').textContent = '';
  if (problem) showError(problem);
  const stay = el('input', { type: 'checkbox', id: 'stay' });
  const key = el('input', { type: 'password', id: 'key', autocomplete: 'off', required: true });
  const tenant = el('input', { id: 'tenant', autocomplete: 'organization', required: true });
  const email = el('input', { type: 'email', id: 'email', autocomplete: 'username', required: true });
  const password = el('input', {
    type: 'password',
    id: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const begin = async (credential) => {
    keep(credential, stay.checked);
    try {
      await loadViewer();
      clearError();
      if (!location.hash || location.hash === '#/') location.hash = '#/queue';
      else route();
    } catch (error) {
      forget();
      showError(error);
    }
  };
  const main = $('main');
  replace(
    main,
    el('h1', { tabindex: '-1' }, 'Sign in'),
    el(
      'p',
      {},
      'The console acts with your credential and can do only what it allows. ',
      'It is forgotten when this tab closes, unless you ask to stay signed in.',
    ),
    el(
      'form',
      {
        class: 'card',
        'aria-labelledby': 'key-heading',
        on: {
          submit: (event) => {
            event.preventDefault();
            begin(key.value.trim());
          },
        },
      },
      el('h2', { id: 'key-heading' }, 'With an API key'),
      el('label', { for: 'key' }, 'API key'),
      key,
      el('button', { type: 'submit' }, 'Sign in with the key'),
    ),
    el(
      'form',
      {
        class: 'card',
        'aria-labelledby': 'login-heading',
        on: {
          submit: async (event) => {
            event.preventDefault();
            clearError();
            try {
              const data = await gql(
                'mutation($t: ID!, $e: String!, $p: String!) { login(tenantId: $t, email: $e, password: $p) { token } }',
                { t: tenant.value.trim(), e: email.value.trim(), p: password.value },
                { anonymous: true },
              );
              password.value = '';
              await begin(data.login.token);
            } catch (error) {
              showError(error);
            }
          },
        },
      },
      el('h2', { id: 'login-heading' }, 'As an administrator'),
      el('label', { for: 'tenant' }, 'Tenant ID'),
      tenant,
      el('label', { for: 'email' }, 'Email'),
      email,
      el('label', { for: 'password' }, 'Password'),
      password,
      el('button', { type: 'submit' }, 'Sign in'),
    ),
    el('p', {}, stay, ' ', el('label', { for: 'stay' }, 'Stay signed in on this device')),
  );
  main.querySelector('h1').focus();
}

async function loadViewer() {
  const data = await gql(
    'query { viewer { scopes tenant { id name } user { id email } apiKey { id name } } }',
  );
  session.viewer = data.viewer;
  const viewer = data.viewer;
  const as = viewer.user ? viewer.user.email : `API key “${viewer.apiKey.name}”`;
  $('who').textContent = `${viewer.tenant.name} · ${as}`;
  $('nav').hidden = false;
  $('sign-out').hidden = false;
}

// ------------------------------------------------------------ routing

function stopRefreshing() {
  for (const timer of session.timers) clearTimeout(timer);
  session.timers = [];
}

/** Runs `work` REFRESH_MS after the last run ended, while the view is
 * `alive` and not while the tab is hidden; waits longer after a failure. */
function every(work, alive) {
  let delay = REFRESH_MS;
  const tick = async () => {
    if (!alive()) return;
    if (!document.hidden) {
      try {
        await work();
        delay = REFRESH_MS;
      } catch (error) {
        if (alive()) showError(error);
        delay = Math.min(delay * 2, 30000);
      }
    }
    if (alive()) session.timers.push(setTimeout(tick, delay));
  };
  session.timers.push(setTimeout(tick, delay));
}

/** Counts navigations: a view whose navigation is no longer the latest
 * shows nothing and stops refreshing. */
let navigation = 0;

async function route({ focus } = {}) {
  const mine = ++navigation;
  const alive = () => mine === navigation && Boolean(session.credential);
  stopRefreshing();
  if (!session.credential) return signIn();
  if (!session.viewer) {
    try {
      await loadViewer();
    } catch (error) {
      if (session.credential) showError(error);
      return;
    }
  }
  let view;
  let id;
  try {
    [view, id] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  } catch {
    [view, id] = ['queue'];
  }
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === (view || 'queue')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // The view is built apart and shown once read, unless another
  // navigation came first.
  const built = el('div');
  try {
    if (view === 'customers' && id) await customerPage(built, id);
    else if (view === 'customers') await customersView(built);
    else if (view === 'users' && id) await userPage(built, id);
    else if (view === 'users') await usersView(built);
    else await queueView(built, alive);
  } catch (error) {
    if (alive()) showError(error);
    return;
  }
  if (!alive()) return;
  const main = $('main');
  replace(main, ...built.childNodes);
  // Back to the button acted on, or the one that replaced it in its row.
  const again =
    focus && (buttonLabelled(main, focus.label) || (focus.row && main.querySelector(`${focus.row} button`)));
  if (again) again.focus();
  else main.querySelector('h1')?.focus();
}

function heading(main, text) {
  const h1 = el('h1', { tabindex: '-1' }, text);
  replace(main, h1);
  return h1;
}

// ------------------------------------------------------------ jobs

const JOB_FIELDS = `id kind state attempts maxAttempts lastError recipient requestId createdAt updatedAt
  lastAction { action at by { user { email } apiKey { name } } }`;
const RETRYABLE = ['FAILED', 'KILLED'];
const CANCELLABLE = ['AWAITING_DISPATCH', 'PENDING', 'FAILED'];
const STATES = [
  ['awaitingDispatch', 'Awaiting dispatch'],
  ['pending', 'Pending'],
  ['running', 'Running'],
  ['done', 'Done'],
  ['failed', 'Failed'],
  ['killed', 'Killed'],
];

function jobActions(job) {
  const actions = [];
  if (RETRYABLE.includes(job.state)) {
    actions.push(
      button('Retry', (event) =>
        act(
          event.currentTarget,
          () => gql('mutation($id: ID!) { retryJob(id: $id) { id state } }', { id: job.id }),
          () => `Job for ${job.recipient} retried.`,
        ),
      ),
    );
  }
  if (CANCELLABLE.includes(job.state)) {
    actions.push(
      button('Cancel', (event) =>
        act(
          event.currentTarget,
          () => gql('mutation($id: ID!) { cancelJob(id: $id) { id state } }', { id: job.id }),
          () => `Job for ${job.recipient} cancelled.`,
        ),
      ),
    );
  }
  return actions;
}

function lastAction(job) {
  if (!job.lastAction) return '';
  const by = job.lastAction.by;
  const who = by.user ? by.user.email : by.apiKey ? `key “${by.apiKey.name}”` : 'someone';
  return `${job.lastAction.action.toLowerCase()} by ${who}, ${when(job.lastAction.at)}`;
}

function jobRows(jobs, { withRecipient = true } = {}) {
  return jobs.map((job) =>
    el(
      'tr',
      { data: { job: job.id, state: job.state } },
      el('td', {}, job.kind),
      withRecipient ? el('td', {}, job.recipient || '—') : null,
      el('td', { class: 'state' }, job.state),
      el('td', { class: 'num' }, `${job.attempts} of ${job.maxAttempts}`),
      el('td', { class: 'error' }, job.lastError || ''),
      el('td', {}, when(job.updatedAt), job.lastAction ? el('div', { class: 'muted' }, lastAction(job)) : null),
      el('td', { class: 'actions' }, jobActions(job)),
    ),
  );
}

function jobTable(caption, jobs, options) {
  const headings = ['Kind', 'Recipient', 'State', 'Attempts', 'Last error', 'Updated', 'Actions'];
  if (options && options.withRecipient === false) headings.splice(1, 1);
  return table(caption, headings, jobRows(jobs, options));
}

async function queueView(main, alive) {
  heading(main, 'Job queue');
  const counts = el('section', { 'aria-labelledby': 'counts-h' });
  const chart = el('section', { 'aria-labelledby': 'chart-h' });
  const workers = el('section', { 'aria-labelledby': 'workers-h' });
  const problems = el('section', { id: 'problems', 'aria-labelledby': 'problems-h' });
  const found = el('div', { id: 'found' });
  const search = el(
    'section',
    { 'aria-labelledby': 'search-h' },
    el('h2', { id: 'search-h' }, 'Find jobs by recipient'),
    searchForm({
      id: 'recipient',
      label: 'Recipient address',
      input: { type: 'email' },
      action: 'Find',
      results: found,
      find: async (recipient) => {
        const data = await gql(
          `query($r: String) { jobQueue { jobs(recipient: $r, first: 50) { totalCount nodes { ${JOB_FIELDS} } } } }`,
          { r: recipient },
        );
        const jobs = data.jobQueue.jobs;
        return jobTable(`Jobs to ${recipient} (${jobs.totalCount})`, jobs.nodes);
      },
    }),
    found,
  );
  append(main, counts, chart, workers, problems, search);

  const refreshQueue = async () => {
    const data = await gql(`query { jobQueue { activeWorkers
      kinds { kind awaitingDispatch pending running done failed killed
              paused { at by { user { email } apiKey { name } } }
              throughput { minute done retried killed } }
      workers { id startedAt lastHeartbeatAt active } } }`);
    const queue = data.jobQueue;
    renderCounts(counts, queue.kinds);
    renderChart(chart, queue.kinds);
    replace(
      workers,
      el('h2', { id: 'workers-h' }, `Workers (${queue.activeWorkers} active)`),
      table(
        'Worker processes, latest heartbeat first',
        ['Worker', 'Started', 'Last heartbeat', 'State'],
        queue.workers.map((w) =>
          el(
            'tr',
            {},
            el('td', { class: 'mono' }, w.id),
            el('td', {}, when(w.startedAt)),
            el('td', {}, when(w.lastHeartbeatAt)),
            el('td', {}, w.active ? 'active' : 'silent'),
          ),
        ),
        'no worker has been heard from.',
      ),
    );
  };
  const refreshProblems = async () => {
    const data = await gql(`query {
      failed: jobQueue { jobs(state: FAILED, first: 20) { totalCount nodes { ${JOB_FIELDS} } } }
      killed: jobQueue { jobs(state: KILLED, first: 20) { totalCount nodes { ${JOB_FIELDS} } } } }`);
    const failed = data.failed.jobs;
    const killed = data.killed.jobs;
    rebuild(
      problems,
      el('h2', { id: 'problems-h' }, 'Failing and dead jobs'),
      el(
        'p',
        {},
        button('Retry every dead job', (event) =>
          act(
            event.currentTarget,
            () => gql('mutation { retryJobs(filter: { state: KILLED }) { retried more } }'),
            (data) =>
              `${data.retryJobs.retried} dead jobs retried${data.retryJobs.more ? '; more remain' : ''}.`,
          ),
          { disabled: killed.totalCount === 0 },
        ),
      ),
      jobTable(`Failing, to be retried (${failed.totalCount})`, failed.nodes),
      jobTable(`Dead (${killed.totalCount})`, killed.nodes),
    );
  };
  const refresh = () => Promise.all([refreshQueue(), refreshProblems()]);
  await refresh();
  every(refresh, alive);
}

function renderCounts(section, kinds) {
  const rows = kinds.map((k) =>
    el(
      'tr',
      { data: { kind: k.kind } },
      el('th', { scope: 'row' }, k.kind),
      STATES.map(([field]) => el('td', { class: 'num', data: { state: field } }, String(k[field]))),
      el('td', {}, k.paused ? `paused since ${when(k.paused.at)}` : 'flowing'),
      el(
        'td',
        { class: 'actions' },
        k.paused
          ? button(`Resume ${k.kind}`, (event) =>
              act(
                event.currentTarget,
                () =>
                  gql('mutation($k: JobKind!) { resumeJobKind(kind: $k) { kind } }', { k: k.kind }),
                () => `${k.kind} resumed.`,
              ),
            )
          : button(`Pause ${k.kind}`, (event) =>
              act(
                event.currentTarget,
                () =>
                  gql('mutation($k: JobKind!) { pauseJobKind(kind: $k) { kind } }', { k: k.kind }),
                () => `${k.kind} paused.`,
              ),
            ),
      ),
    ),
  );
  rebuild(
    section,
    el('h2', { id: 'counts-h' }, 'Jobs per kind and state'),
    table(
      'Live counts, refreshed every two seconds',
      ['Kind', ...STATES.map(([, label]) => label), 'Status', 'Actions'],
      rows,
    ),
  );
}

function renderChart(section, kinds) {
  const minutes = kinds[0] ? kinds[0].throughput.length : 0;
  const totals = [];
  for (let i = 0; i < minutes; i += 1) {
    const minute = { at: kinds[0].throughput[i].minute, done: 0, retried: 0, killed: 0 };
    for (const k of kinds) {
      minute.done += k.throughput[i].done;
      minute.retried += k.throughput[i].retried;
      minute.killed += k.throughput[i].killed;
    }
    totals.push(minute);
  }
  const sum = (field) => totals.reduce((n, m) => n + m[field], 0);
  const summary = `Last hour: ${sum('done')} sent, ${sum('retried')} retried, ${sum('killed')} killed.`;
  const highest = Math.max(1, ...totals.map((m) => m.done + m.retried + m.killed));
  const width = 600;
  const height = 140;
  const slot = width / Math.max(1, minutes);
  const bars = [];
  totals.forEach((m, i) => {
    let y = height;
    for (const field of ['done', 'retried', 'killed']) {
      if (m[field] === 0) continue;
      const h = (m[field] / highest) * (height - 10);
      y -= h;
      const label = `${new Date(m.at).toLocaleTimeString(undefined, { timeStyle: 'short' })}: ${m[field]} ${field === 'done' ? 'sent' : field}`;
      bars.push(
        svg(
          'rect',
          { x: i * slot + 1, y, width: Math.max(1, slot - 2), height: h, class: `bar-${field}` },
          svg('title', {}, label),
        ),
      );
    }
  });
  replace(
    section,
    el('h2', { id: 'chart-h' }, 'Throughput, last hour'),
    el('p', { id: 'throughput-summary' }, summary),
    svg(
      'svg',
      {
        viewBox: `0 0 ${width} ${height}`,
        class: 'chart',
        role: 'img',
        'aria-label': `Jobs per minute. ${summary}`,
      },
      svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'axis' }),
      bars,
    ),
    el(
      'p',
      { class: 'legend' },
      el('span', { class: 'key key-done' }),
      ' sent ',
      el('span', { class: 'key key-retried' }),
      ' retried ',
      el('span', { class: 'key key-killed' }),
      ' killed',
    ),
  );
}

// ------------------------------------------------------------ customers

const CUSTOMER_ROW = 'id number title innerCustomerCount descendantCount';

async function customersView(main) {
  heading(main, 'Customers');
  const results = el('div', { id: 'customer-results' });
  const tree = el('ul', { class: 'tree', id: 'tree', 'aria-label': 'Customer tree' });
  append(
    main,
    searchForm({
      id: 'customer-search',
      label: 'Name or number (at least 3 characters)',
      input: { minlength: 3 },
      results,
      find: async (term) => {
        const data = await gql(
          `query($s: String!) { byNumber: customerByNumber(number: $s) { ${CUSTOMER_ROW} }
             customers(search: $s, first: 50) { totalCount totalCountIsExact nodes { ${CUSTOMER_ROW} } } }`,
          { s: term },
        );
        const nodes = data.customers.nodes.slice();
        if (data.byNumber && !nodes.some((c) => c.id === data.byNumber.id)) nodes.unshift(data.byNumber);
        const count = `${data.customers.totalCount}${data.customers.totalCountIsExact ? '' : '+'}`;
        return table(
          `Customers matching “${term}” (${count})`,
          ['Customer', 'Number', 'Inner', 'Below'],
          nodes.map((c) =>
            el(
              'tr',
              {},
              el('td', {}, link(['customers', c.id], c.title)),
              el('td', {}, c.number),
              el('td', { class: 'num' }, String(c.innerCustomerCount)),
              el('td', { class: 'num' }, String(c.descendantCount)),
            ),
          ),
        );
      },
    }),
    results,
    el('h2', {}, 'Tree'),
    tree,
  );
  await loadPage(tree, 'the roots', async (after) => {
    const data = await gql(
      `query($after: String) { customers(rootsOnly: true, first: 50, after: $after) {
         pageInfo { hasNextPage endCursor } nodes { ${CUSTOMER_ROW} } } }`,
      { after },
    );
    return data.customers;
  });
}

/** Appends a page of customers to `list`, and a button for the next page
 * while there is one. */
async function loadPage(list, whose, fetchPage, after = null) {
  const page = await fetchPage(after);
  append(list, page.nodes.map(treeItem));
  if (page.pageInfo.hasNextPage) {
    const more = el('li', { class: 'more' });
    append(
      more,
      button(`Show more of ${whose}`, async (event) => {
        event.currentTarget.disabled = true;
        try {
          await loadPage(list, whose, fetchPage, page.pageInfo.endCursor);
          const next = more.nextElementSibling;
          more.remove();
          (next?.querySelector('a, button') || list.lastElementChild?.querySelector('a, button'))?.focus();
        } catch (error) {
          showError(error);
          event.currentTarget.disabled = false;
        }
      }),
    );
    append(list, more);
  }
}

function treeItem(customer) {
  const children = el('ul', { id: `children-${customer.id}`, hidden: true });
  const item = el('li', { data: { customer: customer.id } });
  let loaded = false;
  const toggle =
    customer.innerCustomerCount > 0
      ? el(
          'button',
          {
            type: 'button',
            class: 'toggle',
            'aria-expanded': 'false',
            'aria-controls': `children-${customer.id}`,
            'aria-label': `Show the ${customer.innerCustomerCount} inner customers of ${customer.title}`,
            on: {
              click: async (event) => {
                const control = event.currentTarget;
                const open = control.getAttribute('aria-expanded') === 'true';
                if (open) {
                  control.setAttribute('aria-expanded', 'false');
                  children.hidden = true;
                  return;
                }
                if (!loaded) {
                  control.disabled = true;
                  try {
                    await loadPage(children, `the inner customers of ${customer.title}`, async (after) => {
                      const data = await gql(
                        `query($id: ID!, $after: String) { customer(id: $id) {
                           innerCustomers(first: 50, after: $after) {
                             pageInfo { hasNextPage endCursor } nodes { ${CUSTOMER_ROW} } } } }`,
                        { id: customer.id, after },
                      );
                      return data.customer.innerCustomers;
                    });
                    loaded = true;
                  } catch (error) {
                    showError(error);
                    return;
                  } finally {
                    control.disabled = false;
                  }
                }
                control.setAttribute('aria-expanded', 'true');
                children.hidden = false;
              },
            },
          },
          '▸',
        )
      : el('span', { class: 'toggle-space', 'aria-hidden': 'true' });
  return append(
    item,
    toggle,
    ' ',
    link(['customers', customer.id], customer.title),
    ' ',
    el(
      'span',
      { class: 'muted' },
      `${customer.number} · ${customer.innerCustomerCount} inner · ${customer.descendantCount} below`,
    ),
    children,
  );
}

async function customerPage(main, id) {
  const data = await gql(
    `query($id: ID!) { customer(id: $id) {
       id number title info email phone country state city address zip depth createdAt
       innerCustomerCount descendantCount
       ancestors { id title }
       administrators { id email firstName lastName status }
       users(first: 100) { totalCount nodes { id email firstName lastName status role } }
       entitlements { id kind reference createdAt } } }`,
    { id },
    { partial: true },
  );
  const c = data.customer;
  if (!c) {
    heading(main, 'Customer not found');
    return;
  }
  heading(main, c.title);
  const path = el('nav', { 'aria-label': 'Customer path', class: 'path' });
  append(path, link(['customers'], 'Customers'));
  for (const a of c.ancestors) append(path, ' / ', link(['customers', a.id], a.title));
  append(path, ' / ', c.title);
  const details = el('dl', { class: 'details' });
  for (const [label, value] of [
    ['Number', c.number],
    ['Inner customers', c.innerCustomerCount],
    ['All below', c.descendantCount],
    ['Email', c.email],
    ['Phone', c.phone],
    ['Place', [c.address, c.zip, c.city, c.state, c.country].filter(Boolean).join(', ')],
    ['Info', c.info],
    ['Created', when(c.createdAt)],
  ]) {
    if (value === null || value === undefined || value === '') continue;
    append(details, el('dt', {}, label), el('dd', {}, String(value)));
  }
  const person = (u) => [u.firstName, u.lastName].filter(Boolean).join(' ') || '—';
  append(
    main,
    path,
    details,
    el('h2', {}, 'Administrators'),
    table(
      'Administrators of this customer',
      ['Email', 'Name', 'Status'],
      (c.administrators || []).map((u) =>
        el('tr', {}, el('td', {}, link(['users', u.id], u.email)), el('td', {}, person(u)), el('td', {}, u.status)),
      ),
    ),
    el('h2', {}, `Users (${c.users ? c.users.totalCount : '?'})`),
    table(
      'Users of this customer',
      ['Email', 'Name', 'Role', 'Status'],
      (c.users ? c.users.nodes : []).map((u) =>
        el(
          'tr',
          {},
          el('td', {}, link(['users', u.id], u.email)),
          el('td', {}, person(u)),
          el('td', {}, u.role),
          el('td', {}, u.status),
        ),
      ),
    ),
    el('h2', {}, 'Entitlements'),
    table(
      'Entitlements of this customer',
      ['Kind', 'Reference', 'Since'],
      (c.entitlements || []).map((e) =>
        el('tr', {}, el('td', {}, e.kind), el('td', { class: 'mono' }, e.reference), el('td', {}, when(e.createdAt))),
      ),
    ),
  );
}

// ------------------------------------------------------------ users

const USER_ROW = 'id email firstName lastName status role createdAt customer { id title number }';

function userRows(users, withApprove) {
  return users.map((u) =>
    el(
      'tr',
      { data: { user: u.id } },
      el('td', {}, link(['users', u.id], u.email)),
      el('td', {}, written([u.firstName, u.lastName].filter(Boolean).join(' ') || '—')),
      el(
        'td',
        {},
        u.customer
          ? [link(['customers', u.customer.id], u.customer.title), ' ', el('span', { class: 'muted' }, u.customer.number)]
          : 'the tenant',
      ),
      el('td', {}, u.status),
      el('td', {}, when(u.createdAt)),
      withApprove
        ? el(
            'td',
            { class: 'actions' },
            button(`Approve ${u.email}`, (event) =>
              act(
                event.currentTarget,
                () => gql('mutation($id: ID!) { approveUser(id: $id) { user { id status } } }', { id: u.id }),
                () => `${u.email} approved.`,
              ),
            ),
          )
        : null,
    ),
  );
}

async function usersView(main) {
  heading(main, 'Users');
  const results = el('div', { id: 'user-results' });
  append(
    main,
    searchForm({
      id: 'user-search',
      label: 'Email or name (at least 3 characters)',
      input: { minlength: 3 },
      results,
      find: async (term) => {
        const data = await gql(
          `query($s: String!) { users(search: $s, first: 50) { totalCount nodes { ${USER_ROW} } } }`,
          { s: term },
        );
        return table(
          `Users matching “${term}” (${data.users.totalCount})`,
          ['Email', 'Name', 'Customer', 'Status', 'Created'],
          userRows(data.users.nodes, false),
        );
      },
    }),
    results,
  );
  const data = await gql(
    `query { approvalRequests(first: 50) { totalCount nodes { ${USER_ROW} } } }`,
  );
  append(
    main,
    el('h2', {}, `Waiting for approval (${data.approvalRequests.totalCount})`),
    table(
      'Users waiting for approval, oldest first',
      ['Email', 'Name', 'Customer', 'Status', 'Requested', 'Actions'],
      userRows(data.approvalRequests.nodes, true),
      'nobody is waiting.',
    ),
  );
}

function userActions(user) {
  const call = (text, query, variables, done) =>
    button(text, (event) => act(event.currentTarget, () => gql(query, variables), () => done));
  const actions = [];
  if (user.status === 'PENDING_APPROVAL') {
    actions.push(call('Approve', 'mutation($id: ID!) { approveUser(id: $id) { user { id } } }', { id: user.id }, `${user.email} approved.`));
  }
  if (user.status === 'ACTIVE') {
    actions.push(
      call('Suspend', 'mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { id } } }', { id: user.id }, `${user.email} suspended.`),
    );
  }
  if (user.status === 'SUSPENDED') {
    actions.push(
      call('Reactivate', 'mutation($id: ID!) { setUserStatus(id: $id, status: ACTIVE) { user { id } } }', { id: user.id }, `${user.email} reactivated.`),
    );
  }
  if (user.status === 'PENDING_APPROVAL') {
    actions.push(
      call('Refuse (suspend)', 'mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { id } } }', { id: user.id }, `${user.email} refused.`),
    );
  }
  if (user.status === 'PENDING_EMAIL_VALIDATION' && user.invitation) {
    actions.push(
      call(
        'Resend the invitation',
        'mutation($id: ID!) { resendActivation(id: $id, method: SEND_ACTIVATION_EMAIL) { user { id } } }',
        { id: user.id },
        `A new invitation goes to ${user.email}.`,
      ),
    );
  }
  if (user.invitation && user.invitation.state === 'PENDING') {
    actions.push(
      call('Revoke the invitation', 'mutation($id: ID!) { revokeInvitation(id: $id) { user { id } } }', { id: user.id }, `${user.email}'s invitation revoked.`),
    );
  }
  return actions;
}

async function userPage(main, id) {
  const data = await gql(
    `query($id: ID!) { user(id: $id) {
       id email firstName lastName phone role status emailVerified lastLoginAt createdAt
       customer { id title number }
       invitation { state method expiresAt }
       emailDeliveries(first: 50) { totalCount nodes { ${JOB_FIELDS} } } } }`,
    { id },
    { partial: true },
  );
  const u = data.user;
  if (!u) {
    heading(main, 'User not found');
    return;
  }
  heading(main, u.email);
  const details = el('dl', { class: 'details' });
  for (const [label, value] of [
    ['Name', [u.firstName, u.lastName].filter(Boolean).join(' ')],
    ['Status', u.status],
    ['Role', u.role],
    ['Email verified', u.emailVerified ? 'yes' : 'no'],
    ['Phone', u.phone],
    ['Invitation', u.invitation ? `${u.invitation.state.toLowerCase()}, until ${when(u.invitation.expiresAt)}` : null],
    ['Last sign-in', u.lastLoginAt ? when(u.lastLoginAt) : 'never'],
    ['Created', when(u.createdAt)],
  ]) {
    if (value === null || value === undefined || value === '') continue;
    append(details, el('dt', {}, label), el('dd', { data: { field: label } }, String(value)));
  }
  append(
    main,
    el(
      'p',
      { class: 'path' },
      u.customer ? ['Customer: ', link(['customers', u.customer.id], `${u.customer.title} (${u.customer.number})`)] : 'Tenant administrator',
    ),
    details,
    el('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, userActions(u)),
    u.emailDeliveries
      ? [
          el('h2', {}, `Email deliveries (${u.emailDeliveries.totalCount})`),
          jobTable('Emails addressed to this user and the jobs that send them, newest first', u.emailDeliveries.nodes),
        ]
      : null,
  );
}

// ------------------------------------------------------------ start

$('sign-out').addEventListener('click', signOut);
// Signed out in another tab of a kept sign-in: this one forgets it too.
window.addEventListener('storage', (event) => {
  if (event.key === CREDENTIAL && event.newValue === null && session.credential) {
    forget();
    say('Signed out in another tab.');
    signIn();
  }
});
window.addEventListener('hashchange', () => {
  clearError();
  say('');
  route();
});
route();
