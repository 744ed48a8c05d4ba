/**
 * The models the apps offer: the offline demo model served from /models/ (made by
 * scripts/prepare-demo-model.ts), OPT checkpoints and Llama-family instruct models from the
 * Hugging Face hub.
 */
import { listCachedModels, type CachedModel } from '../../index.ts';

export interface ModelChoice {
  /** What the runtime loads: a hub id or an absolute base URL. */
  spec: string;
  label: string;
  /** Approximate download in bytes (fp16 checkpoints), for the picker. */
  bytes: number;
  layers: number;
  /** Shown under the picker. */
  note: string;
  offline: boolean;
  /** Random weights: say so wherever its text appears. */
  random: boolean;
  /** Weight bytes per storage format (Llama-family entries), see `formatSizes`. */
  formats?: FormatSizes;
}

export interface FormatSizes {
  /** As published (bf16): the download. */
  bf16: number;
  /** 8-bit weights with one f16 scale per 32. */
  int8: number;
  /** 4-bit weights with one f16 scale per 32. */
  q4: number;
}

/** Weight bytes of `params` parameters (tied heads counted once, as the checkpoints store them). */
export function formatSizes(params: number): FormatSizes {
  const scales = (params / 32) * 2;
  return { bf16: params * 2, int8: params + scales, q4: params / 2 + scales };
}

/** A Llama-family instruct model on the hub; `params` from its safetensors index. */
function llamaFamily(spec: string, label: string, params: number, layers: number, note: string): ModelChoice {
  const formats = formatSizes(params);
  return { spec, label, bytes: formats.bf16, layers, note, offline: false, random: false, formats };
}

/** What scripts/prepare-demo-model.ts writes to /models/demo.json. */
interface DemoManifest {
  name: string;
  path: string;
  trained: boolean;
  layers: number;
  hiddenSize: number;
  description: string;
  bytes: number;
}

export const DEMO_SPEC = 'demo';

export const HUB_MODELS: ModelChoice[] = [
  {
    spec: 'facebook/opt-125m',
    label: 'OPT-125m',
    bytes: 251e6,
    layers: 12,
    note: '12 layers; about 250 MB from the Hugging Face hub, cached after the first download.',
    offline: false,
    random: false,
  },
  {
    spec: 'facebook/opt-350m',
    label: 'OPT-350m',
    bytes: 663e6,
    layers: 24,
    note: '24 layers (post-LN); about 660 MB from the Hugging Face hub.',
    offline: false,
    random: false,
  },
  {
    spec: 'facebook/opt-1.3b',
    label: 'OPT-1.3b',
    bytes: 2.63e9,
    layers: 24,
    note: '24 layers; about 2.6 GB: needs a discrete GPU or a recent laptop, and patience for the download.',
    offline: false,
    random: false,
  },
  llamaFamily(
    'HuggingFaceTB/SmolLM2-135M-Instruct',
    'SmolLM2-135M-Instruct',
    134_515_008,
    30,
    '30 layers, chat template (ChatML); about 270 MB (bf16).',
  ),
  llamaFamily(
    'HuggingFaceTB/SmolLM2-360M-Instruct',
    'SmolLM2-360M-Instruct',
    361_821_120,
    32,
    '32 layers, chat template (ChatML); about 720 MB (bf16).',
  ),
  llamaFamily(
    'Qwen/Qwen2.5-0.5B-Instruct',
    'Qwen2.5-0.5B-Instruct',
    494_032_768,
    24,
    '24 layers, grouped-query attention (14 query / 2 KV heads), ChatML; about 990 MB (bf16).',
  ),
  llamaFamily(
    'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    'TinyLlama-1.1B-Chat',
    1_100_048_384,
    22,
    '22 layers, SentencePiece tokenizer; about 2.2 GB (bf16).',
  ),
  llamaFamily(
    'meta-llama/Llama-3.2-1B-Instruct',
    'Llama-3.2-1B-Instruct (gated)',
    1_235_814_400,
    16,
    '16 layers; about 2.5 GB (bf16). Gated: accept its license on the hub and load with an access token.',
  ),
];

let demo: Promise<ModelChoice | undefined> | undefined;

/** The bundled demo model, or undefined when the site was deployed without one. */
export function demoModel(): Promise<ModelChoice | undefined> {
  demo ??= fetch(new URL('models/demo.json', document.baseURI))
    .then(async (res) => {
      if (!res.ok) return undefined;
      const m = (await res.json()) as DemoManifest;
      return {
        spec: new URL(m.path.replace(/^\//, ''), document.baseURI).href,
        label: m.trained ? `Bundled: ${m.name} (trained)` : 'Bundled demo (random weights)',
        bytes: m.bytes,
        layers: m.layers,
        note: m.description,
        offline: true,
        random: !m.trained,
      } satisfies ModelChoice;
    })
    .catch(() => undefined);
  return demo;
}

/** The demo model first (it works offline), then the hub models. */
export async function modelChoices(): Promise<ModelChoice[]> {
  const d = await demoModel();
  return d ? [d, ...HUB_MODELS] : [...HUB_MODELS];
}

/** Resolves a page or attribute value: 'demo' (or empty) means the bundled model. */
export async function resolveChoice(spec: string | null | undefined): Promise<ModelChoice> {
  const s = spec?.trim() ?? '';
  const all = await modelChoices();
  if (s === '' || s === DEMO_SPEC) {
    if (all[0].offline) return all[0];
  }
  const known = all.find((c) => c.spec === s);
  if (known) return known;
  return {
    spec: s,
    label: s,
    bytes: 0,
    layers: 0,
    note: 'A custom model by hub id or URL.',
    offline: false,
    random: false,
  };
}

/** Which of `choices` sit complete in Cache Storage (hub ids, or base URLs for the demo). */
export async function cachedSpecs(): Promise<Map<string, CachedModel>> {
  const out = new Map<string, CachedModel>();
  for (const m of await listCachedModels().catch(() => [])) {
    out.set(m.model, m);
    out.set(m.baseUrl.replace(/\/+$/, ''), m);
  }
  return out;
}
