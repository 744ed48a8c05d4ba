/**
 * An OpenAI-style chat facade (`engine.chat.completions.create({ messages })`) for models whose
 * tokenizer_config.json has a chat template: the messages are rendered with it, and generation
 * stops at the model's end-of-turn tokens. Everything else is the completions facade's.
 */
import { TokenizerError } from '../errors.ts';
import { renderChat, type ChatMessage } from '../model/chat-template.ts';
import type { ModelConfig } from '../model/config.ts';
import type { OptTokenizer } from '../model/tokenizer.ts';
import {
  Completions,
  type Completion,
  type CompletionChunk,
  type CompletionCreateParams,
  type FinishReason,
  type RequestOptions,
  type Usage,
} from './completions.ts';
import type { GenerationEngine, ModelChatInfo } from './types.ts';

export type { ChatMessage };

export interface ChatCompletionCreateParams extends Omit<CompletionCreateParams, 'prompt'> {
  messages: ChatMessage[];
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string };
    logprobs: null;
    finish_reason: FinishReason;
  }[];
  usage: Usage;
  skipdecode: Completion['skipdecode'];
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string };
    logprobs: null;
    finish_reason: FinishReason | null;
  }[];
  usage?: Usage;
}

/**
 * What ModelInfo says about chatting with a model: its template and special tokens, whether the
 * tokenizer adds BOS itself, and every end-of-turn id (config.json's eos ids and tokenizer_config's eos_token).
 */
export function chatInfoOf(config: ModelConfig, tokenizer: OptTokenizer | undefined): ModelChatInfo | undefined {
  const chat = tokenizer?.chat;
  if (!tokenizer || !chat) return undefined;
  const eos = chat.eosToken === undefined ? undefined : tokenizer.tokenId(chat.eosToken);
  const stopTokenIds = [
    ...new Set([...(config.eos_token_ids ?? [config.eos_token_id]), ...(eos === undefined ? [] : [eos])]),
  ];
  const bosId = chat.bosToken === undefined ? undefined : tokenizer.tokenId(chat.bosToken);
  return {
    template: chat.template,
    bosToken: chat.bosToken,
    eosToken: chat.eosToken,
    tokenizerAddsBos: bosId !== undefined && tokenizer.encode('a')[0] === bosId,
    stopTokenIds,
  };
}

/** The prompt text for `messages`; a leading BOS the tokenizer will add anyway is left to it, so it appears once. */
export function chatPrompt(info: ModelChatInfo, messages: ChatMessage[]): string {
  const text = renderChat(info, messages);
  return info.tokenizerAddsBos && info.bosToken && text.startsWith(info.bosToken)
    ? text.slice(info.bosToken.length)
    : text;
}

function chatId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return 'chatcmpl-' + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export class ChatCompletions {
  private readonly completions: Completions;

  constructor(private readonly engine: GenerationEngine) {
    this.completions = new Completions(engine);
  }

  create(
    params: ChatCompletionCreateParams & { stream?: false | null },
    options?: RequestOptions,
  ): Promise<ChatCompletion>;
  create(
    params: ChatCompletionCreateParams & { stream: true },
    options?: RequestOptions,
  ): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(
    params: ChatCompletionCreateParams,
    options?: RequestOptions,
  ): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  async create(
    params: ChatCompletionCreateParams,
    options: RequestOptions = {},
  ): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const info = this.engine.info.chat;
    if (!info) {
      throw new TokenizerError(
        `${this.engine.info.source} has no chat template (tokenizer_config.json's chat_template); use completions.create with your own prompt`,
      );
    }
    const { messages, ...rest } = params ?? ({} as ChatCompletionCreateParams);
    const prompt = chatPrompt(info, messages);
    const request = { ...rest, prompt, stop_token_ids: info.stopTokenIds };
    const id = chatId();
    if (params.stream) {
      const chunks = await this.completions.create({ ...request, stream: true }, options);
      return this.chunks(chunks, id);
    }
    const c = await this.completions.create({ ...request, stream: false }, options);
    return {
      id,
      object: 'chat.completion',
      created: c.created,
      model: c.model,
      choices: c.choices.map((ch) => ({
        index: ch.index,
        message: { role: 'assistant', content: ch.text },
        logprobs: null,
        finish_reason: ch.finish_reason,
      })),
      usage: c.usage,
      skipdecode: c.skipdecode,
    };
  }

  private async *chunks(source: AsyncIterable<CompletionChunk>, id: string): AsyncGenerator<ChatCompletionChunk> {
    let first = true;
    for await (const c of source) {
      yield {
        id,
        object: 'chat.completion.chunk',
        created: c.created,
        model: c.model,
        choices: c.choices.map((ch) => ({
          index: ch.index,
          delta: { ...(first ? { role: 'assistant' as const } : {}), content: ch.text },
          logprobs: null,
          finish_reason: ch.finish_reason,
        })),
        ...(c.usage ? { usage: c.usage } : {}),
      };
      first = false;
    }
  }
}
