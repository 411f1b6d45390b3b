import { useState } from 'preact/hooks';
import type { Session } from '../session';

async function readError(r: Response): Promise<string> {
  try {
    const j = await r.json();
    return j.error || `HTTP ${r.status}`;
  } catch {
    return `HTTP ${r.status}`;
  }
}

async function login(user: string, password: string): Promise<Session> {
  const r = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  if (!r.ok) throw new Error(await readError(r));
  return r.json();
}

/** Login asks for a user of the auth: section; the server answers with a session cookie. */
export function Login({ onLogin }: { onLogin: (s: Session) => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      onLogin(await login(user, password));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <div class="login-page">
      <form class="panel login" onSubmit={submit} data-testid="login-form">
        <h1>Vispyr</h1>
        <label>
          User
          <input name="user" autocomplete="username" value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} required autofocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} required />
        </label>
        {error && (
          <div class="error-box" data-testid="login-error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" class="btn primary" disabled={busy}>
          Log in
        </button>
      </form>
    </div>
  );
}
