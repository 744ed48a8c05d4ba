/** A few DOM helpers: the pages are plain TypeScript, and these keep the building code readable. */

type Attrs = Record<string, string | number | boolean | undefined>;
type Child = Node | string | null | undefined | false;

/** `h('button', { type: 'button', class: 'primary' }, 'Send')`; boolean true sets an empty attribute. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = document): T {
  const el = root instanceof Document ? root.getElementById(id) : root.querySelector(`#${id}`);
  if (!el) throw new Error(`the page lacks #${id}`);
  return el as T;
}

let uid = 0;
/** An id unique on the page, for label/aria wiring of generated controls. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${++uid}`;
}

/** A labelled number input; returns the wrapper and the input. */
export function numberField(
  label: string,
  opts: { min?: number; max?: number; step?: number | 'any'; value?: number | ''; hint?: string; name?: string },
): { field: HTMLElement; input: HTMLInputElement } {
  const id = uniqueId(opts.name ?? 'field');
  const hintId = opts.hint ? `${id}-hint` : undefined;
  const input = h('input', {
    id,
    name: opts.name,
    type: 'number',
    inputmode: 'decimal',
    min: opts.min,
    max: opts.max,
    step: opts.step ?? 1,
    value: opts.value,
    'aria-describedby': hintId,
  });
  const field = h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    input,
    opts.hint ? h('small', { id: hintId, class: 'hint' }, opts.hint) : null,
  );
  return { field, input };
}

/** The input's value as a number, or undefined when empty or not a number. */
export function numberValue(input: HTMLInputElement): number | undefined {
  if (input.value.trim() === '') return undefined;
  const v = Number(input.value);
  return Number.isFinite(v) ? v : undefined;
}

export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}
