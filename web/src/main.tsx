import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { TimePicker } from './components/TimePicker';
import { Ctx, useLocalStorage } from './hooks';
import { parseDuration } from './lib/format';
import { Explore } from './pages/Explore';
import { Home } from './pages/Home';
import { Logs } from './pages/Logs';
import { Profiles } from './pages/Profiles';
import { Service } from './pages/Service';
import { Traces } from './pages/Traces';
import { Alerts } from './pages/Alerts';
import { SelfMonitor } from './pages/SelfMonitor';
import { Targets } from './pages/Targets';
import { link, navigate, timeRange, useLocation } from './router';
import { Gate, SessionMenu } from './session';
import './styles.css';

const NAV: [string, string][] = [
  ['/', 'Home'],
  ['/traces', 'Traces'],
  ['/profiles', 'Profiles'],
  ['/logs', 'Logs'],
  ['/explore', 'Metrics'],
  ['/targets', 'Targets'],
  ['/alerts', 'Alerts'],
  ['/vispyr', 'Vispyr'],
];

function Route({ path }: { path: string }) {
  if (path === '/' || path === '') return <Home />;
  if (path.startsWith('/service/')) return <Service name={decodeURIComponent(path.slice(9))} key={path} />;
  if (path.startsWith('/traces')) return <Traces />;
  if (path.startsWith('/trace/')) {
    // /trace/<id> is a short link form; show it in the traces view.
    navigate(link('/traces', { trace: path.slice(7) }), true);
    return null;
  }
  if (path.startsWith('/profiles')) return <Profiles />;
  if (path.startsWith('/explore')) return <Explore />;
  if (path.startsWith('/targets')) return <Targets />;
  if (path.startsWith('/alerts')) return <Alerts />;
  if (path.startsWith('/vispyr')) return <SelfMonitor />;
  if (path.startsWith('/logs')) return <Logs />;
  return (
    <div class="page">
      <div class="empty-inline">
        Nothing at {path}. <a href="/">Go home</a>
      </div>
    </div>
  );
}

function App() {
  const { path, query } = useLocation();
  const [tick, setTick] = useState(0);
  const [theme, setTheme] = useLocalStorage('vispyr.theme', 'auto');
  const refresh = query.get('refresh') ?? 'off';
  const rangeKey = `${query.get('from')}|${query.get('to')}`;
  // The range is re-resolved on every tick so relative ranges slide forward.
  const [range, setRange] = useState(() => timeRange(query));
  // Navigating re-resolves it too, so a page opened later does not show a stale window.
  useEffect(() => setRange(timeRange(new URLSearchParams(location.search))), [rangeKey, tick, path]);

  useEffect(() => {
    const sec = parseDuration(refresh);
    if (!Number.isFinite(sec) || sec <= 0) return;
    const id = setInterval(() => setTick((t) => t + 1), sec * 1000);
    return () => clearInterval(id);
  }, [refresh]);

  useEffect(() => {
    const t = theme === 'auto' ? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light') : theme;
    document.documentElement.dataset.theme = t;
  }, [theme]);

  // Intercept same-origin link clicks so navigation stays inside the app.
  useEffect(() => {
    const onClick = (e: MouseEvent) => {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      const a = (e.target as Element).closest('a');
      if (!a || a.target || a.origin !== location.origin || a.hasAttribute('download')) return;
      e.preventDefault();
      navigate(a.pathname + a.search);
      window.scrollTo(0, 0);
    };
    document.addEventListener('click', onClick);
    return () => document.removeEventListener('click', onClick);
  }, []);

  const section = path === '/' || path.startsWith('/service/') ? '/' : '/' + path.split('/')[1];
  return (
    <Ctx.Provider value={{ range, tick }}>
      <header class="topbar">
        <a class="brand" href={link('/')}>
          <svg width="18" height="18" viewBox="0 0 16 16">
            <path d="M8 1l6 13H2z" fill="#ff7a45" />
            <path d="M8 6l3 6H5z" fill="#ffd591" />
          </svg>
          Vispyr
        </a>
        <nav>
          {NAV.map(([p, label]) => (
            <a key={p} href={link(p)} class={section === p ? 'on' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <TimePicker refresh={refresh} onRefresh={() => setTick((t) => t + 1)} />
        <button class="icon" title={`theme: ${theme}`} onClick={() => setTheme(theme === 'auto' ? 'dark' : theme === 'dark' ? 'light' : 'auto')}>
          {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'}
        </button>
        <SessionMenu />
      </header>
      <main>
        <Route path={path} />
      </main>
    </Ctx.Provider>
  );
}

render(<Gate>{() => <App />}</Gate>, document.getElementById('app')!);
