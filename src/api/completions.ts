/**
 * An OpenAI-style completions facade (`engine.completions.create(...)`), so code written against
 * OpenAI's legacy completions endpoint runs on a local model with few changes. Only the fields that
 * make sense locally are supported; the others are refused by name rather than ignored.
 */
import { PromptError, SamplingError } from '../errors.ts';
import type { Schedule } from '../skip/schedule.ts';
import type { SkipMetrics } from '../skip/metrics.ts';
import type { GenerateRequest, GenerationEngine, StopReason } from './types.ts';

export interface CompletionCreateParams {
  /** Ignored beyond being echoed back: the engine serves the model it loaded. */
  model?: string;
  /** Text, texts (a batch), token ids, or a batch of token ids. */
  prompt: string | string[] | number[] | number[][];
  /** Default 16, as in OpenAI's API. */
  max_tokens?: number | null;
  /** Default 1, as in OpenAI's API; 0 is greedy. */
  temperature?: number | null;
  top_p?: number | null;
  /** Up to 4 stop strings. */
  stop?: string | string[] | null;
  seed?: number | null;
  /** Only 1 is supported. */
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  /** SkipDecode extension: which layers each decode step runs. */
  schedule?: string | Schedule;
  /** SkipDecode extension: top-k sampling. */
  top_k?: number;
  /** SkipDecode extension: token ids that also end a sequence (the chat facade's end-of-turn ids). */
  stop_token_ids?: number[];
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { text: string; index: number; logprobs: null; finish_reason: FinishReason }[];
  usage: Usage;
  /** SkipDecode extension: the schedule, the layers each step ran, the skip metrics. */
  skipdecode: { schedule: string; layers_run: number[][]; metrics: SkipMetrics };
}

export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { text: string; index: number; logprobs: null; finish_reason: FinishReason | null }[];
  /** Only on the last chunk, when stream_options.include_usage is set (choices is then empty). */
  usage?: Usage;
}

const ALLOWED = new Set([
  'model',
  'prompt',
  'max_tokens',
  'temperature',
  'top_p',
  'stop',
  'seed',
  'n',
  'stream',
  'stream_options',
  'schedule',
  'top_k',
  'stop_token_ids',
]);

function finishReason(r: StopReason): FinishReason {
  return r === 'length' ? 'length' : 'stop';
}

function completionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return 'cmpl-' + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Maps OpenAI parameters onto a generate request, refusing what cannot be honoured. */
export function toGenerateRequest(p: CompletionCreateParams, signal?: AbortSignal): GenerateRequest {
  if (typeof p !== 'object' || p === null) throw new PromptError('completions.create needs a parameters object');
  const unknown = Object.keys(p).filter((k) => !ALLOWED.has(k) && (p as unknown as Record<string, unknown>)[k] != null);
  if (unknown.length) throw new SamplingError(`unsupported parameter(s): ${unknown.join(', ')}`);
  if (p.n != null && p.n !== 1) throw new SamplingError(`n must be 1 (got ${p.n}); send a batch of prompts instead`);
  const stop = p.stop == null ? undefined : typeof p.stop === 'string' ? [p.stop] : p.stop;
  if (stop && (!Array.isArray(stop) || stop.length > 4)) throw new SamplingError('stop takes at most 4 strings');
  const prompt = p.prompt;
  let prompts: (string | number[])[];
  if (typeof prompt === 'string') prompts = [prompt];
  else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((x) => typeof x === 'number')) {
    prompts = [prompt as number[]];
  } else if (Array.isArray(prompt) && prompt.length > 0) prompts = prompt as (string | number[])[];
  else throw new PromptError('prompt must be a string, an array of strings, or token ids');
  return {
    prompts,
    maxNewTokens: p.max_tokens ?? 16,
    schedule: p.schedule,
    sampling: {
      temperature: p.temperature ?? 1,
      topP: p.top_p ?? undefined,
      topK: p.top_k,
      seed: p.seed ?? undefined,
    },
    stop,
    stopTokenIds: p.stop_token_ids,
    signal,
  };
}

export class Completions {
  constructor(private readonly engine: GenerationEngine) {}

  create(params: CompletionCreateParams & { stream?: false | null }, options?: RequestOptions): Promise<Completion>;
  create(
    params: CompletionCreateParams & { stream: true },
    options?: RequestOptions,
  ): Promise<AsyncIterable<CompletionChunk>>;
  create(
    params: CompletionCreateParams,
    options?: RequestOptions,
  ): Promise<Completion | AsyncIterable<CompletionChunk>>;
  async create(
    params: CompletionCreateParams,
    options: RequestOptions = {},
  ): Promise<Completion | AsyncIterable<CompletionChunk>> {
    const request = toGenerateRequest(params, options.signal);
    const head = { id: completionId(), object: 'text_completion' as const, created: Math.floor(Date.now() / 1000) };
    const model = params.model ?? this.engine.info.source;
    if (params.stream) return this.chunks(request, { ...head, model }, params.stream_options?.include_usage ?? false);
    const out = await this.engine.generate(request);
    const completionTokens = out.tokens.reduce((s, t) => s + t.length, 0);
    const promptTokens = out.promptTokens.reduce((s, t) => s + t.length, 0);
    return {
      ...head,
      model,
      choices: out.texts.map((text, index) => ({
        text,
        index,
        logprobs: null,
        finish_reason: finishReason(out.finishReasons[index]),
      })),
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
      skipdecode: { schedule: out.schedule, layers_run: out.layersRun, metrics: out.metrics },
    };
  }

  private async *chunks(
    request: GenerateRequest,
    head: Omit<CompletionChunk, 'choices'>,
    includeUsage: boolean,
  ): AsyncGenerator<CompletionChunk> {
    const stream = this.engine.stream(request);
    for await (const c of stream) {
      const choices: CompletionChunk['choices'] = [];
      c.tokens.forEach((t, index) => {
        const reason = c.finishReasons[index];
        if (t === null || (c.deltas[index] === '' && !reason)) return;
        choices.push({ text: c.deltas[index], index, logprobs: null, finish_reason: reason && finishReason(reason) });
      });
      if (choices.length) yield { ...head, choices };
    }
    if (includeUsage) {
      const out = await stream.result;
      const completionTokens = out.tokens.reduce((s, t) => s + t.length, 0);
      const promptTokens = out.promptTokens.reduce((s, t) => s + t.length, 0);
      yield {
        ...head,
        choices: [],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
      };
    }
  }
}
