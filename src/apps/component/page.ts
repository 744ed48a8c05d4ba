/**
 * The component page: shows the live markup as the snippet to copy, logs the elements' events,
 * then registers <skipdecode-chat> so the boxes come alive.
 */
import { byId, h } from '../shared/dom.ts';
import { checkWebGpu } from '../shared/problems.ts';

interface LoggedEvent {
  type: string;
  id: string;
  detail: unknown;
}

declare global {
  interface Window {
    /** Every event the elements emitted, in order (token details included), for the e2e tests. */
    skipdecodeEvents?: LoggedEvent[];
  }
}

const events: LoggedEvent[] = (window.skipdecodeEvents = []);
const list = byId<HTMLOListElement>('events');
const tokenLines = new Map<string, { li: HTMLLIElement; count: number }>();

function snippet(): void {
  const markup = ['embed-plain', 'embed-themed']
    .map((id) =>
      byId(id)
        .innerHTML.trim()
        .replace(/\n {10}/g, '\n'),
    )
    .join('\n\n');
  const script = [
    '<script type="module">',
    "  import { defineSkipDecodeChat } from 'skipdecode-web/component';",
    '  defineSkipDecodeChat();',
    '</script>',
  ].join('\n');
  byId('snippet').textContent = `${script}\n\n${markup}`;
  byId('css-snippet').textContent = byId('themed-css')
    .textContent!.trim()
    .replace(/\n {6}/g, '\n');
}

function summary(type: string, detail: Record<string, unknown>): string {
  const n = (v: unknown, d = 1) => (typeof v === 'number' ? v.toFixed(d) : String(v));
  switch (type) {
    case 'ready': {
      const info = detail.info as { layers: number; adapter: string };
      return `${String(detail.model)} · ${info.layers} layers · ${info.adapter}`;
    }
    case 'done':
      return `${n(detail.tokens, 0)} tokens, ${n(detail.tokensPerSecond)} tok/s, ${n(detail.meanLayers)} layers (${String(detail.finishReason)})`;
    case 'error':
      return `${String(detail.title)}: ${String(detail.message)}`;
    default:
      return '';
  }
}

function record(e: Event): void {
  const target = e.target as HTMLElement;
  const id = target.id || target.tagName.toLowerCase();
  const detail = (e as CustomEvent<Record<string, unknown>>).detail;
  events.push({ type: e.type, id, detail });
  if (e.type === 'token') {
    // One line per reply, counting its tokens, rather than a line per token.
    let line = tokenLines.get(id);
    if (!line) {
      line = { li: h('li'), count: 0 };
      tokenLines.set(id, line);
      list.append(line.li);
    }
    line.count++;
    line.li.textContent = `#${id} token × ${line.count}`;
    return;
  }
  tokenLines.delete(id);
  list.append(h('li', {}, `#${id} ${e.type}: ${summary(e.type, detail)}`));
  list.scrollTop = list.scrollHeight;
}

async function main(): Promise<void> {
  snippet();
  for (const type of ['ready', 'token', 'done', 'error']) {
    document.addEventListener(type, (e) => {
      if ((e.target as Element).tagName === 'SKIPDECODE-CHAT') record(e);
    });
  }
  const problem = await checkWebGpu();
  if (problem) {
    byId('problem').hidden = false;
    byId('problem-title').textContent = problem.title;
    byId('problem-detail').textContent = problem.detail;
  }
  await import('./define.ts');
}

void main();
