/**
 * The chat page: pick a model, talk to it, watch how many layers each reply ran. Page state is
 * mirrored on body[data-state] (no-webgpu, loading, ready, generating, error) for tests and CSS.
 */
import { byId, fmt, h } from '../shared/dom.ts';
import { ModelPanel, type LoadedChoice } from '../shared/model-panel.ts';
import { checkWebGpu, describeProblem, type Problem } from '../shared/problems.ts';
import { ScheduleForm } from '../shared/schedule-form.ts';
import type { GenerateOutput } from '../shared/backend.ts';
import { SamplingForm } from './sampling.ts';
import { replyRequest, type Turn } from '../shared/transcript.ts';

type PageState = 'checking' | 'no-webgpu' | 'loading' | 'ready' | 'generating' | 'error';

const input = byId<HTMLTextAreaElement>('composer-input');
const sendButton = byId<HTMLButtonElement>('send');
const stopButton = byId<HTMLButtonElement>('stop');
const messages = byId<HTMLOListElement>('messages');
const status = byId('status');

let loaded: LoadedChoice | undefined;
let running: AbortController | undefined;
let turns: Turn[] = [];

function setState(state: PageState): void {
  document.body.dataset.state = state;
  const canSend = state === 'ready';
  input.disabled = !(state === 'ready' || state === 'generating');
  sendButton.disabled = !canSend;
  stopButton.disabled = state !== 'generating';
}

function showProblem(p: Problem | undefined): void {
  byId('problem').hidden = !p;
  if (!p) return;
  byId('problem-title').textContent = p.title;
  byId('problem-detail').textContent = p.detail;
  byId('problem-retry').hidden = p.kind !== 'device-lost';
}

const schedule = new ScheduleForm({ initial: '2x' });
const sampling = new SamplingForm({ maxNewTokens: 32 }, () =>
  schedule.configure(loaded?.model.info.layers ?? 12, sampling.tokens),
);
const panel = new ModelPanel({
  onLoading(choice) {
    loaded = undefined;
    showProblem(undefined);
    setState('loading');
    status.textContent = `Loading ${choice.label}…`;
  },
  onLoaded(l) {
    loaded = l;
    const info = l.model.info;
    byId('random-note').hidden = !l.choice.random;
    byId('template-note').hidden = info.chat !== undefined;
    // Bigger models write longer useful replies; the tiny one is for watching, not reading.
    sampling.tokens = l.choice.random ? 32 : 64;
    sampling.suggest(info.sampling);
    schedule.configure(info.layers, sampling.tokens);
    setState('ready');
    status.textContent = `${l.choice.label} is ready: ${info.layers} layers, ${info.hiddenSize} wide. Say something.`;
    input.focus();
  },
  onError(p) {
    showProblem(p);
    setState('error');
    status.textContent = p.title;
  },
});

byId('model-slot').append(panel.element);
byId('schedule-slot').append(schedule.element);
byId('sampling-slot').append(sampling.element);

function messageItem(role: Turn['role'], text: string): { li: HTMLLIElement; body: HTMLElement; stats: HTMLElement } {
  const body = h('div', { class: 'text' }, text);
  const stats = h('ul', { class: 'stats', 'aria-label': 'Reply statistics' });
  const li = h(
    'li',
    { class: `message ${role}` },
    h('span', { class: 'role' }, role === 'user' ? 'You' : 'Model'),
    body,
    role === 'assistant' ? stats : null,
  );
  messages.append(li);
  li.scrollIntoView({ block: 'end' });
  return { li, body, stats };
}

function statItems(list: HTMLElement, items: [string, string][]): void {
  list.replaceChildren(...items.map(([k, v]) => h('li', {}, `${k} `, h('strong', {}, v))));
}

function finalStats(out: GenerateOutput, layers: number): [string, string][] {
  const m = out.metrics;
  return [
    ['tokens', String(out.tokens[0].length)],
    ['decode', `${fmt(m.decodeTokensPerSecond)} tok/s`],
    ['mean layers', `${fmt(m.meanLayers)} / ${layers}`],
    ['theoretical speedup', `${fmt(m.theoreticalSpeedup, 2)}×`],
    ['schedule', out.schedule],
    // Exact mode: the reply is the full model's; the schedule only drafted it.
    ...(m.speculative
      ? ([
          ['exact', `${m.speculative.accepted}/${m.speculative.drafted} drafts accepted`],
          ['bound speedup', `${fmt(m.boundSpeedup ?? 1, 2)}×`],
        ] as [string, string][])
      : []),
  ];
}

async function send(): Promise<void> {
  const text = input.value.trim();
  if (!text || !loaded || running) return;
  const { model, choice } = loaded;
  const info = model.info;
  let scheduleValue;
  try {
    scheduleValue = schedule.schedule();
  } catch (e) {
    showProblem(describeProblem(e));
    return;
  }
  showProblem(undefined);
  input.value = '';
  turns.push({ role: 'user', text });
  messageItem('user', text);
  const reply = messageItem('assistant', '');
  reply.li.setAttribute('aria-busy', 'true');
  reply.body.classList.add('streaming');

  const maxNewTokens = sampling.tokens;
  // Byte-level BPE: one character is at least a token on the tiny model, about half of one on OPT.
  const perToken = choice.random ? 1 : 2;
  const prompt = replyRequest(info, turns, Math.max(64, (info.maxPositions - maxNewTokens - 8) * perToken));
  running = new AbortController();
  setState('generating');
  status.textContent = 'Generating…';
  let generated = 0;
  let replyText = '';
  try {
    const stream = model.stream({
      ...prompt,
      maxNewTokens,
      schedule: scheduleValue,
      exact: schedule.exact(),
      sampling: sampling.options(),
      signal: running.signal,
    });
    for await (const chunk of stream) {
      replyText += chunk.deltas[0] ?? '';
      reply.body.textContent = replyText;
      if (chunk.tokens[0] !== null) generated++;
      if (chunk.metrics.decodeSteps >= 1) {
        statItems(reply.stats, [
          ['tokens', String(generated)],
          ['decode', `${fmt(chunk.metrics.decodeTokensPerSecond)} tok/s`],
          ['mean layers', `${fmt(chunk.metrics.meanLayers)} / ${info.layers}`],
        ]);
      }
      reply.li.scrollIntoView({ block: 'end' });
    }
    const out = await stream.result;
    replyText = out.texts[0];
    reply.body.textContent = replyText || '(empty reply)';
    statItems(reply.stats, finalStats(out, info.layers));
    status.textContent = `Reply finished (${out.finishReasons[0]}).`;
    setState('ready');
  } catch (e) {
    const p = describeProblem(e);
    if (p.kind === 'aborted') {
      // What the engine generated before the stop, with its metrics (absent if it never started).
      const partial = (e as { partial?: GenerateOutput }).partial;
      if (partial) replyText = partial.texts[0];
      reply.body.textContent = replyText;
      reply.li.classList.add('stopped');
      statItems(reply.stats, [
        ['stopped after', `${partial?.tokens[0].length ?? generated} tokens`],
        ['mean layers', partial?.metrics.decodeSteps ? `${fmt(partial.metrics.meanLayers)} / ${info.layers}` : '—'],
      ]);
      status.textContent = 'Stopped.';
      setState('ready');
    } else {
      reply.li.remove();
      showProblem(p);
      status.textContent = p.title;
      setState(p.kind === 'input' ? 'ready' : 'error');
    }
  } finally {
    reply.body.classList.remove('streaming');
    reply.li.removeAttribute('aria-busy');
    if (replyText.trim()) turns.push({ role: 'assistant', text: replyText });
    running = undefined;
    if (document.body.dataset.state === 'ready') input.focus();
  }
}

byId('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  void send();
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    void send();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && running) running.abort();
});
stopButton.addEventListener('click', () => running?.abort());
byId('clear').addEventListener('click', () => {
  running?.abort();
  turns = [];
  messages.replaceChildren();
  input.focus();
});
byId('problem-retry').addEventListener('click', async () => {
  await panel.reset();
  await panel.load();
});

async function main(): Promise<void> {
  setState('checking');
  const problem = await checkWebGpu();
  await panel.init();
  if (problem) {
    showProblem(problem);
    setState('no-webgpu');
    status.textContent = 'This page needs WebGPU.';
    return;
  }
  status.textContent = 'Loading the model…';
  // The bundled model is small and local: load it at once so the page is usable offline.
  if (panel.selected?.offline) await panel.load();
  else {
    setState('error');
    status.textContent = 'Pick a model and press “Load model”.';
  }
}

void main();
