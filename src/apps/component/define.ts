/** Side-effect entry: `<script type="module" src="…/define.js">` registers <skipdecode-chat>. */
import { defineSkipDecodeChat } from './skipdecode-chat.ts';

defineSkipDecodeChat();
