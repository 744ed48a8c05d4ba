/**
 * The site's registration of <skipdecode-chat>: model attributes go through the demo catalog, so
 * `model="demo"` (or none) is the bundled model. The library's element knows no catalog.
 */
import { resolveChoice } from '../shared/catalog.ts';
import { defineSkipDecodeChat } from './skipdecode-chat.ts';

defineSkipDecodeChat('skipdecode-chat', { resolveModel: resolveChoice });
