/**
 * The Token form: shown when the server answers 401 (AUTH_TOKEN is set), hidden once a token
 * works. A token is tried against `GET /files` before it is kept; a wrong one is said in a
 * role=alert and never stored.
 */
import { acceptToken, onTokenNeeded } from './auth.js';
import { byId } from './dom.js';

export function setUpTokenPrompt(): void {
  const section = byId('token-section', HTMLElement);
  const form = byId('token-form', HTMLFormElement);
  const input = byId('token', HTMLInputElement);
  const alert = byId('token-error', HTMLParagraphElement);

  onTokenNeeded(() => {
    if (!section.hidden) return;
    section.hidden = false;
    input.focus();
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token === '') return;
    void check(token).then((result) => {
      if (result === 'ok') {
        input.value = '';
        alert.textContent = '';
        section.hidden = true;
        acceptToken(token);
      } else {
        alert.textContent = result === 'wrong' ? 'That token was not accepted. Check it and try again.' : `Could not check the token: ${result}`;
        input.select();
      }
    });
  });
}

/** 'ok', 'wrong', or why the server could not be asked. Plain fetch: a 401 here must not re-open the prompt. */
async function check(token: string): Promise<'ok' | 'wrong' | string> {
  try {
    const res = await fetch('/files', { method: 'HEAD', headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
    if (res.status === 401) return 'wrong';
    return res.ok ? 'ok' : `${res.status} ${res.statusText}`;
  } catch {
    return 'no answer from the server';
  }
}
