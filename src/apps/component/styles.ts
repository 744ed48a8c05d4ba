/**
 * The element's shadow styles. Every colour and size goes through a --skipdecode-* custom property
 * (inherited through the shadow boundary), and every region has a part name, so a page restyles it
 * without reaching inside.
 */
export const STYLES = `
:host {
  --_accent: var(--skipdecode-accent, #2456c9);
  --_accent-fg: var(--skipdecode-accent-contrast, #fff);
  --_bg: var(--skipdecode-background, #fff);
  --_fg: var(--skipdecode-color, #1b1d20);
  --_muted: var(--skipdecode-muted, #5a6068);
  --_line: var(--skipdecode-border-color, #d9dcdf);
  --_user-bg: var(--skipdecode-user-background, color-mix(in srgb, var(--_accent) 13%, var(--_bg)));
  --_model-bg: var(--skipdecode-model-background, color-mix(in srgb, var(--_fg) 4%, var(--_bg)));
  --_radius: var(--skipdecode-radius, 0.6rem);
  display: block;
  font-family: var(--skipdecode-font, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif);
  font-size: var(--skipdecode-font-size, 0.95rem);
  line-height: 1.45;
  color: var(--_fg);
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
.container {
  display: flex;
  flex-direction: column;
  height: var(--skipdecode-height, 26rem);
  background: var(--_bg);
  border: 1px solid var(--_line);
  border-radius: var(--_radius);
  overflow: hidden;
}
.header {
  display: flex;
  align-items: center;
  justify-content: space-between;
  gap: 0.5rem;
  padding: 0.5rem 0.75rem;
  border-bottom: 1px solid var(--_line);
  font-size: 0.85em;
}
.title { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.status { color: var(--_muted); white-space: nowrap; }
progress { width: 100%; height: 3px; display: block; border: 0; accent-color: var(--_accent); }
.note { margin: 0; padding: 0.35rem 0.75rem; font-size: 0.8em; color: var(--_muted); border-bottom: 1px solid var(--_line); }
.log {
  flex: 1;
  overflow-y: auto;
  list-style: none;
  margin: 0;
  padding: 0.75rem;
  display: flex;
  flex-direction: column;
  gap: 0.5rem;
}
.message { max-width: 88%; padding: 0.4rem 0.65rem; border-radius: var(--_radius); white-space: pre-wrap; overflow-wrap: anywhere; }
.message.user { align-self: flex-end; background: var(--_user-bg); }
.message.assistant { align-self: flex-start; background: var(--_model-bg); }
.message.error { align-self: stretch; max-width: none; border: 1px solid #b3261e; color: #b3261e; background: transparent; }
.stats { display: block; margin-top: 0.25rem; font-size: 0.75em; color: var(--_muted); font-variant-numeric: tabular-nums; }
form { display: flex; gap: 0.4rem; padding: 0.5rem; border-top: 1px solid var(--_line); }
input {
  flex: 1;
  min-width: 0;
  font: inherit;
  color: inherit;
  background: transparent;
  border: 1px solid var(--_line);
  border-radius: calc(var(--_radius) * 0.66);
  padding: 0.4rem 0.55rem;
}
button {
  font: inherit;
  border-radius: calc(var(--_radius) * 0.66);
  padding: 0.4rem 0.8rem;
  cursor: pointer;
  border: 1px solid var(--_accent);
}
button.send { background: var(--_accent); color: var(--_accent-fg); }
button.stop { background: transparent; color: var(--_accent); }
button:disabled { opacity: 0.5; cursor: not-allowed; }
:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;
