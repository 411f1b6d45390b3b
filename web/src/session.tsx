// The login session, when Vispyr's auth: section is on. The server keeps the session behind
// an HttpOnly cookie the page cannot read; the page holds only the session's anti-forgery
// token and the tenant the user picked, and adds them to its own API calls.

import { createContext, type ComponentChildren } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { Login } from './pages/Login';
import { navigate, useLocation } from './router';

export interface Session {
  user: string;
  tenants: string[];
  csrfToken: string;
  expires: string;
}

type State = { kind: 'loading' } | { kind: 'off' } | { kind: 'out' } | { kind: 'in'; session: Session };

interface SessionCtx {
  session?: Session;
  tenant: string;
  setTenant: (t: string) => void;
  logout: () => void;
}

const Ctx = createContext<SessionCtx>({ tenant: '', setTenant: () => {}, logout: () => {} });
export const useSession = () => useContext(Ctx);

// What installFetch adds to the page's API calls.
let csrf = '';
let tenant = '';
let onUnauthorized = () => {};

const TENANT_KEY = 'vispyr.tenant';

/** currentTenant is the tenant the user switched to ('' without sessions), for what fetch does not carry: websockets. */
export const currentTenant = () => tenant;

/**
 * installFetch makes every same-origin API call of every page carry the session's CSRF token
 * (on anything but GET/HEAD) and the selected tenant (X-Scope-OrgID, which the server checks
 * against the user's tenants), and turns a 401 into the login page. Wrapping fetch once keeps
 * the pages unaware of sessions.
 */
function installFetch() {
  const orig = window.fetch.bind(window);
  window.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    const api = url.origin === location.origin && !url.pathname.startsWith('/auth/');
    if (!api || !csrf) return orig(input, init);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    if (method !== 'GET' && method !== 'HEAD') headers.set('X-CSRF-Token', csrf);
    if (tenant && !headers.has('X-Scope-OrgID')) headers.set('X-Scope-OrgID', tenant);
    const r = await orig(input, { ...init, headers });
    if (r.status === 401) onUnauthorized();
    return r;
  };
}

function toLogin() {
  const here = location.pathname + location.search;
  if (location.pathname !== '/login') navigate('/login' + (here === '/' ? '' : '?next=' + encodeURIComponent(here)), true);
}

/** Gate shows the login page until the user is logged in (when auth is on), then the app. */
export function Gate({ children }: { children: () => ComponentChildren }) {
  const [state, setState] = useState<State>({ kind: 'loading' });
  const [sel, setSel] = useState('');
  const { path, query } = useLocation();

  const start = (s: Session) => {
    csrf = s.csrfToken;
    const saved = localStorage.getItem(TENANT_KEY) ?? '';
    tenant = s.tenants.includes(saved) ? saved : s.tenants[0] ?? '';
    setSel(tenant);
    setState({ kind: 'in', session: s });
  };
  const end = () => {
    csrf = '';
    tenant = '';
    setState({ kind: 'out' });
    toLogin();
  };

  useEffect(() => {
    installFetch();
    onUnauthorized = end;
    fetch('/auth/session', { headers: { Accept: 'application/json' } }).then(
      async (r) => {
        if (r.status === 404) setState({ kind: 'off' });
        else if (r.ok) start(await r.json());
        else end();
      },
      () => setState({ kind: 'off' }),
    );
  }, []);

  if (state.kind === 'loading') return null;
  if (state.kind === 'out') {
    if (path !== '/login') toLogin();
    return (
      <Login
        onLogin={(s) => {
          start(s);
          const next = query.get('next');
          navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
        }}
      />
    );
  }
  if (state.kind === 'in' && path === '/login') navigate('/', true);

  const ctx: SessionCtx = {
    session: state.kind === 'in' ? state.session : undefined,
    tenant: sel,
    setTenant: (t) => {
      tenant = t;
      localStorage.setItem(TENANT_KEY, t);
      setSel(t);
    },
    logout: async () => {
      await fetch('/auth/logout', { method: 'POST', headers: { 'X-CSRF-Token': csrf } }).catch(() => {});
      end();
    },
  };
  // Keyed by tenant: switching remounts every page, so nothing of the other tenant stays on screen.
  return (
    <Ctx.Provider value={ctx}>
      <div key={sel} style="display: contents">
        {children()}
      </div>
    </Ctx.Provider>
  );
}

/** SessionMenu is the top bar's user, tenant switcher and logout (nothing when auth is off). */
export function SessionMenu() {
  const { session, tenant, setTenant, logout } = useSession();
  if (!session) return null;
  return (
    <span class="session-menu">
      {session.tenants.length > 1 && (
        <label class="select" title="tenant (X-Scope-OrgID)">
          tenant
          <select data-testid="tenant-switcher" value={tenant} onChange={(e) => setTenant((e.target as HTMLSelectElement).value)}>
            {session.tenants.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
      )}
      <span class="session-user" data-testid="session-user">
        {session.user}
      </span>
      <button class="btn" data-testid="logout" onClick={logout}>
        Log out
      </button>
    </span>
  );
}
