/**
 * tokenizer_config.json's `chat_template`, rendered with @huggingface/jinja (the Jinja subset
 * transformers.js renders templates with), as transformers' `apply_chat_template` does.
 */
import { Template } from '@huggingface/jinja';
import { TokenizerError } from '../errors.ts';

/** One chat message, OpenAI-style. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

/** What a model's tokenizer files say about chatting with it. */
export interface ChatTemplateInfo {
  /** The Jinja source (the `default` one when the file lists several). */
  template: string;
  bosToken?: string;
  eosToken?: string;
}

/** tokenizer_config.json names special tokens as strings or as `{content}` objects. */
export function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const content = (v as { content?: unknown } | null)?.content;
  return typeof content === 'string' ? content : undefined;
}

/** The chat template of a parsed tokenizer_config.json, or undefined when it has none. */
export function readChatTemplate(
  tokenizerConfig: Record<string, unknown>,
  where = 'tokenizer',
): ChatTemplateInfo | undefined {
  const raw = tokenizerConfig.chat_template;
  if (raw === undefined || raw === null) return undefined;
  let template: unknown = raw;
  // Newer files may list named templates: [{name: 'default', template: '...'}, {name: 'tool_use', ...}].
  if (Array.isArray(raw)) {
    const named = raw as { name?: unknown; template?: unknown }[];
    template = (named.find((t) => t?.name === 'default') ?? named[0])?.template;
  }
  if (typeof template !== 'string') {
    throw new TokenizerError(
      `${where}: tokenizer_config.json's chat_template must be a string or a list of named templates`,
    );
  }
  try {
    new Template(template);
  } catch (e) {
    throw new TokenizerError(`${where}: chat_template does not parse: ${(e as Error).message}`, { cause: e });
  }
  return {
    template,
    bosToken: tokenText(tokenizerConfig.bos_token),
    eosToken: tokenText(tokenizerConfig.eos_token),
  };
}

/**
 * The prompt text for `messages`, ending with the assistant's turn opened (add_generation_prompt),
 * with the variables transformers passes: messages, bos_token, eos_token, add_generation_prompt.
 */
export function renderChat(info: ChatTemplateInfo, messages: readonly ChatMessage[]): string {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new TokenizerError('a chat needs at least one message');
  }
  for (const [i, m] of messages.entries()) {
    if (typeof m?.role !== 'string' || typeof m.content !== 'string') {
      throw new TokenizerError(`message ${i} must have a string role and a string content`);
    }
  }
  try {
    return new Template(info.template).render({
      messages,
      bos_token: info.bosToken ?? '',
      eos_token: info.eosToken ?? '',
      add_generation_prompt: true,
    });
  } catch (e) {
    throw new TokenizerError(`the chat template failed on these messages: ${(e as Error).message}`, { cause: e });
  }
}
