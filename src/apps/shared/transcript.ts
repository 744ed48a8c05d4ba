import { chatPrompt, type ModelInfo } from '../../index.ts';

/**
 * The chat as a plain-text transcript. OPT is a base language model, so "chat" means asking it to
 * continue a dialogue; the stop string ends a reply where the model starts writing the user's turn.
 */
export interface Turn {
  role: 'user' | 'assistant';
  text: string;
}

const PREAMBLE = 'The following is a conversation between a curious User and a helpful, knowledgeable Assistant.\n\n';
export const STOP_STRINGS = ['\nUser:'];

/**
 * The prompt for the next reply. Older turns are dropped when the text would not leave room for the
 * reply in the model's context: `budgetChars` is a conservative character count for that room.
 */
export function buildPrompt(turns: readonly Turn[], budgetChars: number): string {
  const lines = turns.map((t) => `${t.role === 'user' ? 'User' : 'Assistant'}: ${t.text.trim()}\n`);
  let start = 0;
  const size = (from: number) => PREAMBLE.length + lines.slice(from).join('').length + 'Assistant:'.length;
  while (start < lines.length - 1 && size(start) > budgetChars) start++;
  let body = lines.slice(start).join('');
  // A single message longer than the room keeps its end: the model continues from there.
  const room = budgetChars - PREAMBLE.length - 'Assistant:'.length;
  if (body.length > room) body = body.slice(body.length - Math.max(0, room));
  return `${PREAMBLE}${body}Assistant:`;
}

/**
 * The prompt and stop rules for the next reply: the model's chat template and its end-of-turn ids
 * when tokenizer_config.json has one (Llama-family instruct models), else the plain transcript (OPT).
 */
export function replyRequest(
  info: ModelInfo,
  turns: readonly Turn[],
  budgetChars: number,
): { prompt: string; stop?: string[]; stopTokenIds?: number[] } {
  if (!info.chat) return { prompt: buildPrompt(turns, budgetChars), stop: STOP_STRINGS };
  const messages = turns.map((t) => ({ role: t.role, content: t.text.trim() }));
  return { prompt: chatPrompt(info.chat, messages), stopTokenIds: info.chat.stopTokenIds };
}
