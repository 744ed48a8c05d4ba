/**
 * OPT-6.7B shape end to end on this machine: writes a random-weight f16 checkpoint (13.4 GB, into
 * .cache/models/, never committed), then, each in its own process timed by /usr/bin/time:
 *   1. `skipdecode generate --weights q4` from the f16 checkpoint (quantized while loading),
 *   2. `skipdecode quantize --weights q4 --out DIR`,
 *   3. `skipdecode generate` from that folder (no quantization at load),
 *   4. `generate --weights q4` twice through the quantized-model cache (stores a copy, then reads it),
 * printing wall time, peak host RSS and decode tokens/s (16 tokens, batch 1), and the GPU weight
 * bytes of the 6.7B and 1.3B shapes in f16 / int8 / q4 computed from their shapes.
 *
 *   npx tsx bench/opt-6.7b.ts [--skip-write]
 *
 * Each tensor is one 1M-value random block (normal, the writer's scales) tiled over the tensor: the
 * bytes and the work of reading and quantizing are those of a real checkpoint, at disk speed.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { rowBytesOf, rowStride, scaleRowBytesOf } from '../src/gpu/kernel.ts';
import { float32ToTensor } from '../src/model/dtype.ts';
import { schemeFor, type WeightFormat } from '../src/model/quantize.ts';

const repo = path.resolve(import.meta.dirname, '..');
const dir = path.join(repo, '.cache', 'models', 'opt-6.7b-f16');
const qdir = path.join(repo, '.cache', 'models', 'opt-6.7b-q4');
const SHAPES = {
  'opt-1.3b': { layers: 24, hidden: 2048, ffn: 8192, vocab: 50272, positions: 2050 },
  'opt-6.7b': { layers: 32, hidden: 4096, ffn: 16384, vocab: 50272, positions: 2050 },
};

/** [name, shape, std, mean] of every OPT tensor, in file order. */
function tensorList(s: (typeof SHAPES)['opt-6.7b']): [string, number[], number, number][] {
  const { layers, hidden: H, ffn: F, vocab: V, positions } = s;
  const p = 'model.decoder.';
  const out: [string, number[], number, number][] = [
    [`${p}embed_tokens.weight`, [V, H], 1, 0],
    [`${p}embed_positions.weight`, [positions, H], 1, 0],
    [`${p}final_layer_norm.weight`, [H], 0.1, 1],
    [`${p}final_layer_norm.bias`, [H], 0.1, 0],
  ];
  for (let l = 0; l < layers; l++) {
    const lp = `${p}layers.${l}.`;
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) {
      out.push([`${lp}self_attn.${proj}.weight`, [H, H], 1.5 / Math.sqrt(H), 0]);
      out.push([`${lp}self_attn.${proj}.bias`, [H], 0.1, 0]);
    }
    out.push([`${lp}self_attn_layer_norm.weight`, [H], 0.1, 1], [`${lp}self_attn_layer_norm.bias`, [H], 0.1, 0]);
    out.push([`${lp}fc1.weight`, [F, H], 1.5 / Math.sqrt(H), 0], [`${lp}fc1.bias`, [F], 0.1, 0]);
    out.push([`${lp}fc2.weight`, [H, F], 1.5 / Math.sqrt(F), 0], [`${lp}fc2.bias`, [H], 0.1, 0]);
    out.push([`${lp}final_layer_norm.weight`, [H], 0.1, 1], [`${lp}final_layer_norm.bias`, [H], 0.1, 0]);
  }
  return out;
}

function randomBlock(n: number, mean: number, std: number, seed: number): Uint8Array {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = mean + std * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(6.283 * uniform());
  return float32ToTensor(v, [n], 'F16').data;
}

function writeCheckpoint(): void {
  const list = tensorList(SHAPES['opt-6.7b']);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of list) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'F16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const json = new Uint8Array(Math.ceil(raw.byteLength / 8) * 8).fill(0x20);
  json.set(raw);
  mkdirSync(dir, { recursive: true });
  const fd = openSync(path.join(dir, 'model.safetensors'), 'w');
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  writeSync(fd, len);
  writeSync(fd, json);
  list.forEach(([, shape, std, mean], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const block = randomBlock(Math.min(n, 1 << 20), mean, std, i + 1);
    for (let at = 0; at < 2 * n; at += block.byteLength)
      writeSync(fd, block, 0, Math.min(block.byteLength, 2 * n - at));
  });
  closeSync(fd);
  const s = SHAPES['opt-6.7b'];
  const config = {
    architectures: ['OPTForCausalLM'],
    model_type: 'opt',
    activation_function: 'relu',
    bos_token_id: 2,
    eos_token_id: 2,
    pad_token_id: 1,
    do_layer_norm_before: true,
    hidden_size: s.hidden,
    ffn_dim: s.ffn,
    num_attention_heads: 32,
    num_hidden_layers: s.layers,
    max_position_embeddings: 2048,
    vocab_size: s.vocab,
    word_embed_proj_dim: s.hidden,
    torch_dtype: 'float16',
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
}

/** GPU bytes of a shape's weights stored as `format` (matrices padded, scales included; vectors f32). */
function gpuBytes(s: (typeof SHAPES)['opt-6.7b'], format: WeightFormat): number {
  let total = 0;
  for (const [name, shape] of tensorList(s)) {
    if (shape.length === 1) total += shape[0] * 4;
    else {
      const quantized = !name.endsWith('embed_positions.weight') && schemeFor(format, shape[1]);
      const dtype = quantized || 'f16';
      total += shape[0] * (rowBytesOf(dtype, rowStride(shape[1])) + scaleRowBytesOf(dtype, rowStride(shape[1])));
    }
  }
  return total;
}

function timed(label: string, args: string[]): void {
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', '%e s wall, %M KB peak RSS', process.execPath, 'bin/skipdecode.js', ...args],
    {
      cwd: repo,
      encoding: 'utf8',
      env: process.env,
    },
  );
  const time = r.stderr.trim().split('\n').pop();
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let tps: string;
  try {
    tps = `, decode ${(JSON.parse(last) as { timing: { decodeTokensPerSecond: number } }).timing.decodeTokensPerSecond.toFixed(2)} tok/s`;
  } catch {
    tps = ` (${last})`;
  }
  console.log(`${label}: ${time}${tps}${r.status === 0 ? '' : ` FAILED (${r.status}): ${r.stderr.slice(-800)}`}`);
}

for (const [shape, s] of Object.entries(SHAPES)) {
  const gb = (f: WeightFormat) => (gpuBytes(s, f) / 1e9).toFixed(2);
  console.log(`${shape} GPU weight bytes: f16 ${gb('checkpoint')} GB, int8 ${gb('int8')} GB, q4 ${gb('q4')} GB`);
}
if (!process.argv.includes('--skip-write') || !existsSync(path.join(dir, 'model.safetensors'))) {
  const t0 = performance.now();
  writeCheckpoint();
  console.log(`wrote ${dir} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
const gen = ['--input-ids', '2,100,200,300,400,500,600,700', '--max-new-tokens', '16', '--ignore-eos', '--json'];
// --no-cache: this times quantizing at load, every time (the folder cache would answer a second run).
timed('generate --weights q4 from the f16 checkpoint', [
  'generate',
  '--model',
  dir,
  '--weights',
  'q4',
  '--no-cache',
  ...gen,
]);
timed('quantize --weights q4', ['quantize', '--model', dir, '--weights', 'q4', '--out', qdir]);
timed('generate from the quantized folder', ['generate', '--model', qdir, ...gen]);
// The quantized-model cache: the first load quantizes and stores a copy, the second reads only the copy.
process.env.SKIPDECODE_CACHE_DIR = path.join(repo, '.cache', 'bench-quantized-cache');
rmSync(process.env.SKIPDECODE_CACHE_DIR, { recursive: true, force: true });
timed('generate --weights q4, storing the quantized copy', ['generate', '--model', dir, '--weights', 'q4', ...gen]);
timed('generate --weights q4 from the cached copy', ['generate', '--model', dir, '--weights', 'q4', ...gen]);
rmSync(process.env.SKIPDECODE_CACHE_DIR, { recursive: true, force: true });
