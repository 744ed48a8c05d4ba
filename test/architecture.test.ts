import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ForwardProgram, Kernels } from '../src/engine/forward.ts';
import { WeightUploader } from '../src/engine/model.ts';
import { SessionBuffers } from '../src/engine/session.ts';
import { ConfigError } from '../src/errors.ts';
import { Argmax } from '../src/ops/argmax.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { float32ToTensor } from '../src/model/dtype.ts';
import type { ActivationSpec, GpuModel, GraphContext, ModelGraph } from '../src/models/architecture.ts';
import { architectureOf, parseModelConfig } from '../src/models/index.ts';
import { llama } from '../src/models/llama.ts';
import { opt } from '../src/models/opt.ts';
import { parseOptConfig } from '../src/models/opt-config.ts';
import { randomFloats, readF32, testGpu } from './helpers/gpu.ts';

const SRC = path.join(import.meta.dirname, '..', 'src');
const MODELS = path.join(SRC, 'models');
const OPT_NAMES = ['self_attn', 'fc1', 'fc2', 'final_layer_norm', 'embed_positions'];

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('architectures live in src/models/', () => {
  it("OPT's tensor names appear in src/ only under src/models/", () => {
    const outside: string[] = [];
    const inside = new Set<string>();
    for (const file of filesUnder(SRC)) {
      const text = readFileSync(file, 'utf8');
      for (const name of OPT_NAMES) {
        if (!text.includes(name)) continue;
        if (file.startsWith(MODELS + path.sep)) inside.add(name);
        else outside.push(`${path.relative(SRC, file)}: ${name}`);
      }
    }
    expect(outside).toEqual([]);
    // The scan sees the names where they do belong, so an empty list above is not a blind scan.
    expect([...inside].sort()).toEqual([...OPT_NAMES].sort());
  });

  it('picks the architecture from model_type and names the supported ones otherwise', () => {
    const json = { model_type: 'opt', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, ffn_dim: 256 };
    const config = parseModelConfig(json);
    expect(config).toEqual(parseOptConfig(json));
    expect(architectureOf(config)).toBe(opt);
    expect(architectureOf(parseModelConfig({ ...json, model_type: 'qwen2', eos_token_id: 2, bos_token_id: 1 }))).toBe(
      llama,
    );
    for (const model_type of ['gpt2', undefined]) {
      const bad = () => parseModelConfig({ ...json, model_type });
      expect(bad).toThrow(ConfigError);
      expect(bad).toThrow(/"model_type" must be one of "opt", "llama", "qwen2", "mistral"/);
    }
  });
});

/**
 * A toy architecture the runner has never heard of: token embeddings, then per layer
 * h += B relu(A h) through a declared `scratch` activation, then an LM head. It proves the
 * session and the forward program run whatever graph a model declares.
 */
class ToyModel implements GpuModel {
  readonly positionIds = { offset: 0, padding: 0 };
  readonly kvCache = { kvHeads: 1, headDim: 4 };
  readonly config: ModelConfig = {
    model_type: 'toy',
    vocab_size: 5,
    hidden_size: 4,
    num_hidden_layers: 3,
    num_attention_heads: 1,
    max_position_embeddings: 16,
    pad_token_id: 0,
    bos_token_id: 0,
    eos_token_id: 0,
  };
  private readonly up: WeightUploader;
  constructor(
    gpu: Awaited<ReturnType<typeof testGpu>>,
    readonly host: { embed: Float32Array; a: Float32Array[]; b: Float32Array[]; head: Float32Array },
  ) {
    this.up = new WeightUploader(gpu);
  }

  activations(): ActivationSpec[] {
    return [{ name: 'scratch', width: 4, rows: 'tokens' }];
  }

  graph(ctx: GraphContext): ModelGraph {
    const { kernels: k, io } = ctx;
    const step = io.step;
    const m = (label: string, data: Float32Array, rows: number) =>
      this.up.matrix(label, float32ToTensor(data, [rows, 4], 'F32'));
    const scratch = ctx.activation('scratch');
    const table = m('toy_embed', this.host.embed, 5);
    return {
      embed: [
        {
          name: 'embed',
          bound: k.embedding.bind({
            label: 'embed',
            step,
            table,
            indices: io.ids,
            output: io.hidden,
            accumulate: false,
          }),
        },
      ],
      layers: this.host.a.map((a, l) => [
        {
          name: 'up',
          bound: k.linear.bind({
            label: `up${l}`,
            step,
            weight: m(`a${l}`, a, 4),
            input: io.hidden,
            output: scratch,
            relu: true,
            rows: 'tokens',
          }),
        },
        {
          name: 'down',
          bound: k.linear.bind({
            label: `down${l}`,
            step,
            weight: m(`b${l}`, this.host.b[l], 4),
            input: scratch,
            output: io.hidden,
            residual: true,
            rows: 'tokens',
          }),
        },
      ]),
      head: [
        {
          name: 'head',
          bound: k.linear.bind({
            label: 'head',
            step,
            weight: m('head', this.host.head, 5),
            input: io.last,
            output: io.logits,
            rows: 'sequences',
          }),
        },
        // An op host reached the way a new architecture's own ops would be.
        {
          name: 'pick',
          bound: k.op(Argmax).bind({ label: 'pick', step, logits: io.logits, ids: io.nextIds, vocab: 5 }),
        },
      ],
    };
  }

  decodeCosts(): { perLayerBytes: number[]; fixedBytes: number } {
    return { perLayerBytes: [0, 0, 0], fixedBytes: 0 };
  }

  dispose(): void {
    this.up.dispose();
  }
}

/** y = W x for a row-major [rows][4] W. */
function matVec(w: Float32Array, x: number[], rows: number): number[] {
  return Array.from({ length: rows }, (_, r) => x.reduce((s, v, c) => s + w[r * 4 + c] * v, 0));
}

describe('the runner knows no architecture', () => {
  const cleanup: (() => void)[] = [];
  afterAll(() => cleanup.forEach((f) => f()));

  it('runs a toy architecture: declared activations, its step names, the chosen layers only', async () => {
    const gpu = await testGpu();
    const r = (n: number, seed: number) => randomFloats(n, seed);
    const host = {
      embed: r(20, 1),
      a: [r(16, 2), r(16, 3), r(16, 4)],
      b: [r(16, 5), r(16, 6), r(16, 7)],
      head: r(20, 8),
    };
    const model = new ToyModel(gpu, host);
    const kernels = new Kernels(gpu);
    const shape = { batch: 1, promptCapacity: 2, maxSeq: 4 };
    const buffers = new SessionBuffers(gpu, model, shape);
    const program = new ForwardProgram(gpu, model, buffers, kernels);
    cleanup.push(
      () => program.dispose(),
      () => buffers.dispose(),
      () => model.dispose(),
    );
    expect(buffers.activation('scratch').size).toBe(2 * 4 * 4);
    expect(() => buffers.activation('qkv')).toThrow(/"qkv"/);

    const ids = [3, 1];
    gpu.device.queue.writeBuffer(buffers.ids, 0, new Uint32Array(ids));
    const seen: string[] = [];
    const encoder = gpu.device.createCommandEncoder();
    program.encode(encoder, { batch: 1, tokens: 2, past: 0 }, [0, 2], (name, layer) => seen.push(`${name}@${layer}`));
    gpu.device.queue.submit([encoder.finish()]);
    expect(seen).toEqual(['embed@-1', 'up@0', 'down@0', 'up@2', 'down@2', 'head@-1', 'pick@-1']);

    const want = ids.map((id) => {
      let h = Array.from(host.embed.subarray(id * 4, id * 4 + 4));
      for (const l of [0, 2]) {
        const s = matVec(host.a[l], h, 4).map((v) => Math.max(0, v));
        h = h.map((v, i) => v + matVec(host.b[l], s, 4)[i]);
      }
      return matVec(host.head, h, 5);
    })[1];
    const got = await readF32(gpu, buffers.logits, 5);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    const picked = new Uint32Array(await gpu.read(buffers.nextIds, 4))[0];
    expect(picked).toBe(want.indexOf(Math.max(...want)));
  });
});
