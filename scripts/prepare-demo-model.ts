/**
 * Puts the offline demo model under public/models/ so every page works without a network:
 * the trained model from training/models/<name>/ when the training engineer has committed one,
 * else a tiny random-weight OPT with a byte-level tokenizer. public/models/demo.json says which,
 * so the pages can tell the user plainly whether the weights mean anything.
 *
 *   npx tsx scripts/prepare-demo-model.ts [--force]
 *
 * Runs before `npm run dev` / `npm run build` (package.json) and from a Vite plugin, so Playwright's
 * web server gets it too. It is idempotent: a stamp makes repeat runs a few stat calls.
 */
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeTinyOpt, type TinyOptOptions } from './make-tiny-model.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PUBLIC_MODELS = path.join(ROOT, 'public', 'models');
// Overridable so the copy path can be tried without touching the training engineer's folder.
const TRAINED_MODELS = process.env.SKIPDECODE_TRAINED_MODELS ?? path.join(ROOT, 'training', 'models');
export const RANDOM_MODEL_NAME = 'tiny-random-opt';

/**
 * Twelve layers like OPT-125m, so the schedule presets and the heatmap look as they would on the
 * real model, but 64 wide: the software adapter in CI decodes it at interactive speed.
 */
const RANDOM_MODEL: TinyOptOptions = {
  layers: 12,
  hidden: 64,
  heads: 4,
  ffn: 256,
  vocab: 512,
  maxPositions: 512,
  dtype: 'f16',
  seed: 20230705,
};

/** What the pages read from /models/demo.json. */
export interface DemoModelManifest {
  /** Folder name under /models/. */
  name: string;
  /** URL path of the model's folder, relative to the site root. */
  path: string;
  /** true: trained weights from training/models/; false: random weights (text is noise). */
  trained: boolean;
  layers: number;
  hiddenSize: number;
  /** One sentence for the user about what this model is. */
  description: string;
  /** Where it came from, for the stamp check. */
  origin: string;
  bytes: number;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A trained model folder: config.json, weights, and a tokenizer the browser can load. */
async function findTrainedModel(): Promise<string | undefined> {
  if (!(await exists(TRAINED_MODELS))) return undefined;
  const names = (await readdir(TRAINED_MODELS, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  // A model fine-tuned with skipping on is the one worth showing: skipping costs it least quality.
  const tuned = new Set<string>();
  for (const n of names) if (await fineTuned(path.join(TRAINED_MODELS, n))) tuned.add(n);
  const ordered = [...names.filter((n) => tuned.has(n)), ...names.filter((n) => !tuned.has(n))];
  for (const name of ordered) {
    const dir = path.join(TRAINED_MODELS, name);
    const files = new Set(await readdir(dir));
    const weights = files.has('model.safetensors') || files.has('model.safetensors.index.json');
    const tokenizer = files.has('tokenizer.json') || (files.has('vocab.json') && files.has('merges.txt'));
    if (files.has('config.json') && weights && tokenizer) return dir;
    if (files.has('config.json')) {
      console.warn(`prepare-demo-model: skipping ${dir}: it needs safetensors weights and a tokenizer`);
    }
  }
  return undefined;
}

async function fineTuned(dir: string): Promise<boolean> {
  try {
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as {
      skipdecode?: { fine_tuned?: boolean };
    };
    return config.skipdecode?.fine_tuned === true;
  } catch {
    return false;
  }
}

async function signature(dir: string): Promise<string> {
  let bytes = 0;
  let newest = 0;
  for (const f of await readdir(dir)) {
    const st = await stat(path.join(dir, f));
    bytes += st.size;
    newest = Math.max(newest, Math.floor(st.mtimeMs));
  }
  return `${bytes}:${newest}`;
}

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) n += (await stat(path.join(dir, f))).size;
  return n;
}

async function readManifest(): Promise<DemoModelManifest | undefined> {
  try {
    return JSON.parse(await readFile(path.join(PUBLIC_MODELS, 'demo.json'), 'utf8')) as DemoModelManifest;
  } catch {
    return undefined;
  }
}

async function trainedDescription(dir: string): Promise<string> {
  // The training engineer may leave a README or model card; its first line says more than we can.
  for (const card of ['README.md', 'MODEL.md']) {
    const p = path.join(dir, card);
    if (await exists(p)) {
      const line = (await readFile(p, 'utf8'))
        .split('\n')
        .map((l) => l.replace(/^#+\s*/, '').trim())
        .find((l) => l.length > 0);
      if (line) return line;
    }
  }
  const tuned = await fineTuned(dir);
  return (
    `A small OPT trained on the King James Bible for this project (training/models/${path.basename(dir)})` +
    (tuned ? ', fine-tuned with SkipDecode schedules so skipping costs little quality.' : '.')
  );
}

export async function prepareDemoModel(opts: { force?: boolean; quiet?: boolean } = {}): Promise<DemoModelManifest> {
  const log = (m: string) => opts.quiet || console.log(`prepare-demo-model: ${m}`);
  const trained = await findTrainedModel();
  // A retrained model in the same folder must replace the copy: its sizes and times are in the stamp.
  const origin = trained
    ? `${path.relative(ROOT, trained)}@${await signature(trained)}`
    : `random:${JSON.stringify(RANDOM_MODEL)}`;
  const current = await readManifest();
  if (!opts.force && current && current.origin === origin && (await exists(path.join(ROOT, 'public', current.path)))) {
    return current;
  }

  await mkdir(PUBLIC_MODELS, { recursive: true });
  let manifest: DemoModelManifest;
  if (trained) {
    const name = path.basename(trained);
    const out = path.join(PUBLIC_MODELS, name);
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    for (const f of await readdir(trained)) {
      if ((await stat(path.join(trained, f))).isFile()) await copyFile(path.join(trained, f), path.join(out, f));
    }
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, number>;
    manifest = {
      name,
      path: `/models/${name}`,
      trained: true,
      layers: config.num_hidden_layers,
      hiddenSize: config.hidden_size,
      description: await trainedDescription(trained),
      origin,
      bytes: await folderBytes(out),
    };
    log(`copied the trained model ${path.relative(ROOT, trained)} to public/models/${name}`);
  } else {
    const out = path.join(PUBLIC_MODELS, RANDOM_MODEL_NAME);
    await rm(out, { recursive: true, force: true });
    const o = await writeTinyOpt(out, RANDOM_MODEL);
    manifest = {
      name: RANDOM_MODEL_NAME,
      path: `/models/${RANDOM_MODEL_NAME}`,
      trained: false,
      layers: o.layers,
      hiddenSize: o.hidden,
      description:
        `A tiny ${o.layers}-layer OPT with random weights: it exercises every kernel and the skip schedule, ` +
        'but its text is noise. Pick an OPT model from the hub for real text.',
      origin,
      bytes: await folderBytes(out),
    };
    log(`wrote a random ${o.layers}x${o.hidden} OPT to public/models/${RANDOM_MODEL_NAME}`);
  }
  if (current && current.name !== manifest.name) {
    // The previous demo model would otherwise ship in every build from now on.
    await rm(path.join(PUBLIC_MODELS, path.basename(current.name)), { recursive: true, force: true });
  }
  await writeFile(path.join(PUBLIC_MODELS, 'demo.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    const m = await prepareDemoModel({ force: process.argv.includes('--force') });
    console.log(`prepare-demo-model: ${m.trained ? 'trained' : 'random'} demo model at public${m.path}`);
  } catch (e) {
    console.error(`prepare-demo-model: ${(e as Error).message}`);
    process.exit(1);
  }
}
