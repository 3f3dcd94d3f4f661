/**
 * Signing in on an agent's /ui/: import the operator key file once. WebCrypto keeps it as a
 * non-extractable key in this browser's IndexedDB (agent-client.tsx); nothing is sent anywhere.
 */
import { useState } from 'preact/hooks';
import { importKeyFile, type StoredKey } from './agent-client.tsx';

/** The key import form. */
export function KeyLogin({ onKey }: { onKey: (k: StoredKey) => void }) {
  const [err, setErr] = useState('');
  const pick = async (e: Event) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    if (file.size > 4096) return setErr('a plexus key file is under 4 KiB; is this the right file?');
    try {
      onKey(await importKeyFile(await file.text()));
    } catch (x) {
      setErr((x as Error).message);
    }
  };
  // WebCrypto exists only in a secure context: https://, or http:// on loopback.
  if (!window.isSecureContext || !crypto.subtle)
    return (
      <main class="login">
        <h1>plexus</h1>
        <p class="notice notice-error" role="alert">
          This page signs with your key in the browser, which needs a secure context: open it over https://
          (TLS in front of the agent's API) or through an SSH tunnel to a loopback address (ssh -L
          7071:127.0.0.1:7071 …), or use plexus ui on your machine.
        </p>
      </main>
    );
  return (
    <main class="login">
      <h1>plexus</h1>
      <p>
        Choose your operator key file (from <code>plexus operator keygen</code>). It is imported into this
        browser as a key that can sign but cannot be read back, and kept for this site until you forget it.
      </p>
      <input type="file" name="key" onChange={pick} />
      {err && <p class="notice notice-error">{err}</p>}
    </main>
  );
}
