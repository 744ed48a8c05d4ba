/**
 * skipdecode-web/component: the <skipdecode-chat> custom element, apart from the main entry so a
 * page using only the API does not ship it.
 *
 *   import { defineSkipDecodeChat } from 'skipdecode-web/component';
 *   defineSkipDecodeChat();
 *   // <skipdecode-chat model="facebook/opt-125m" schedule="2x"></skipdecode-chat>
 *
 * The element lives with the site's pages (src/apps/component/) and shares their helpers; it reaches
 * the runtime only through the public API (src/index.ts), and the site's model catalog not at all.
 */
export {
  SkipDecodeChatElement,
  defineSkipDecodeChat,
  type DefineSkipDecodeChatOptions,
  type SkipDecodeChatModel,
  type SkipDecodeChatState,
  type SkipDecodeModelResolver,
  type SkipDecodeReadyDetail,
  type SkipDecodeTokenDetail,
  type SkipDecodeDoneDetail,
  type SkipDecodeErrorDetail,
} from './apps/component/skipdecode-chat.ts';
