"""Expected greedy tokens and logits of the committed fine-tuned model, computed by this PyTorch
implementation (float64, from the float16 weights the runtime loads), for test/training-logits.test.ts.

  python3 training/make_fixture.py [--model training/models/skipdecode-kjv] [--steps 6]

The prompts form one left-padded batch, as the runtime runs them: padding gets position id -1 and is
never attended; decode step k is shared by the batch. Computed by re-running the whole sequence with
per-position layer masks each step (the training path), independently of the KV-cache decoder.
Writes training/fixtures/expected.json and one .f32 file per case ([step][batch][vocab], little-endian).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bpe import ByteBPE  # noqa: E402
from opt import decode_layers, format_schedule, load_model, parse_schedule, pick_schedule  # noqa: E402

PROMPTS = [
    'In the beginning',
    'And the LORD spake unto Moses, saying,',
    'Blessed are the',
]


@torch.no_grad()
def reference_generate(model, prompts: list[list[int]], schedule: dict, steps: int):
    """Greedy tokens, logits [steps][B][V] and layers run per decode step, for a left-padded batch."""
    L = model.num_layers
    p = max(len(x) for x in prompts)
    b = len(prompts)
    ids = torch.full((b, p), model.config.pad_token_id, dtype=torch.long)
    mask = torch.zeros(b, p, dtype=torch.long)
    for i, x in enumerate(prompts):
        ids[i, p - len(x) :] = torch.tensor(x)
        mask[i, p - len(x) :] = 1
    tokens, logits, layers_run = [[] for _ in prompts], [], []
    for step in range(steps):
        t = ids.shape[1]
        runs = torch.ones(L, b, t, dtype=torch.bool)
        for k in range(t - p):
            on = set(decode_layers(L, schedule, k))
            for layer in range(L):
                runs[layer, :, p + k] = layer in on
        if step > 0:
            layers_run.append(decode_layers(L, schedule, step - 1))
        out = model(ids, runs, mask)[:, -1]
        logits.append(out)
        nxt = out.argmax(-1)
        for i in range(b):
            tokens[i].append(int(nxt[i]))
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones(b, 1, dtype=torch.long)], dim=1)
    return tokens, torch.stack(logits), layers_run


def min_margin(logits: torch.Tensor) -> float:
    top = logits.topk(2, dim=-1).values
    return float((top[..., 0] - top[..., 1]).min())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default=os.path.join(HERE, 'models', 'skipdecode-kjv'))
    p.add_argument('--steps', type=int, default=8)
    p.add_argument('--out', default=os.path.join(HERE, 'fixtures'))
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    model = load_model(args.model, torch.float64).eval()
    with open(os.path.join(args.model, 'tokenizer.json')) as f:
        tok = ByteBPE(json.load(f))
    with open(os.path.join(args.model, 'config.json')) as f:
        tuned_for = json.load(f).get('skipdecode', {}).get('schedule')
    L = model.num_layers
    schedules = [{'kind': 'full'}]
    schedules.append(parse_schedule(tuned_for) if tuned_for else pick_schedule(L, 2.0, 95))
    schedules.append(pick_schedule(L, 5.0, 95))
    # Short decay, max below L and two warm-up layers: skipping from the first decode step on.
    schedules.append({'kind': 'linear', 'max': L - 2, 'min': 3, 'warmup': 2, 'span': 5})
    prompts = [tok.encode(t, bos=True) for t in PROMPTS]
    os.makedirs(args.out, exist_ok=True)
    cases = []
    for i, s in enumerate(schedules):
        tokens, logits, layers_run = reference_generate(model, prompts, s, args.steps)
        name = f'case{i}.f32'
        logits.float().numpy().astype('<f4').tofile(os.path.join(args.out, name))
        margin = min_margin(logits)
        cases.append(
            {
                'schedule': s,
                'label': format_schedule(s),
                'newTokens': args.steps,
                'tokens': tokens,
                'layersRun': layers_run,
                'logitsFile': name,
                'minMargin': round(margin, 6),
                'text': [tok.decode(t) for t in tokens],
            }
        )
        print(f'{format_schedule(s)}: min top-2 margin {margin:.4f}; {[tok.decode(t) for t in tokens]}')
    fixture = {
        'model': os.path.relpath(args.model, os.path.dirname(HERE)),
        'vocabSize': model.config.vocab_size,
        'prompts': prompts,
        'promptTexts': PROMPTS,
        'cases': cases,
    }
    with open(os.path.join(args.out, 'expected.json'), 'w') as f:
        json.dump(fixture, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
