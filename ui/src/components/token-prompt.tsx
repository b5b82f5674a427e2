/** Asks for the run API's token once; it is kept for this tab (sessionStorage) and sent as a bearer token. */
import { useEffect, useRef, useState } from "preact/hooks";
import { token } from "../api.js";

export function TokenPrompt({ onSaved, wrong }: { onSaved: () => void; wrong: boolean }) {
  const [value, setValue] = useState("");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <main class="token-prompt">
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          if (!value.trim()) return;
          token.set(value.trim());
          onSaved();
        }}
      >
        <h1>This run API needs a token</h1>
        <p>
          Give the token the run API expects (its <code>OFFLOAD_API_TOKEN</code>, or a ServiceAccount token with the API's audience). It is kept
          for this tab only and sent with each call.
        </p>
        {wrong && (
          <p class="problem" role="alert">
            The API refused the token given: check it and try again.
          </p>
        )}
        <label for="token">API token</label>
        <input id="token" ref={input} type="password" autoComplete="off" value={value} onInput={(e) => setValue(e.currentTarget.value)} required />
        <button type="submit">Continue</button>
      </form>
    </main>
  );
}
