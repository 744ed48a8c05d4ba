"""Which default sampling settings suit the demo model: continuations of held-out prompts sampled with
each setting (the pages' controls: temperature, top-p, top-k, repetition penalty, Hugging Face's
order), scored against the true text and for repetition.

  python3 training/sampling_quality.py [--model DIR] [--prompts 87] [--seeds 3] [--schedule full|NAME]

- ROUGE-L F1 against the held-out text that followed the prompt (evaluate.py's measure).
- rep-4: the share of a continuation's word 4-grams that already occurred earlier in it (0 is no
  repetition; the held-out text's own rate is printed as the reference: text that repeats itself
  more than real KJV prose is looping, less is not a goal in itself).
- distinct-2: distinct word bigrams / bigrams over all of a setting's continuations (variety).
- nats/token: the full-depth model's own negative log-likelihood of the sampled tokens (coherence as
  the model sees it; greedy is lowest by construction, so it is read beside rep-4, not alone).
Writes training/sampling-quality.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from corpus import kjv  # noqa: E402
from evaluate import rouge_l, stderr  # noqa: E402
from opt import format_schedule, load_model, parse_schedule  # noqa: E402
from train import EVAL_PROMPT, EVAL_SEQ, auto_schedules  # noqa: E402

# (temperature, top-p, top-k, repetition penalty); temperature 0 is greedy.
SETTINGS = [
    (0.0, 1.0, 0, 1.0),
    (0.0, 1.0, 0, 1.1),
    (0.0, 1.0, 0, 1.2),
    (0.6, 0.95, 50, 1.0),
    (0.6, 0.95, 50, 1.1),
    (0.7, 0.95, 50, 1.1),
    (0.8, 0.95, 50, 1.0),
    (0.8, 0.95, 50, 1.1),
    (0.8, 0.95, 50, 1.2),
    (1.0, 0.95, 50, 1.1),
    (1.0, 1.0, 0, 1.0),
]


def sampler(temperature, top_p, top_k, penalty, gen):
    """pick(logits [B, V], ids [B, n]) -> [B]: repetition penalty on every id seen (prompt and
    generated), temperature, top-k, top-p, then a draw; greedy (argmax of the penalised logits) at 0."""

    def pick(logits, ids):
        x = logits.float().clone()
        if penalty != 1.0:
            seen = torch.zeros_like(x, dtype=torch.bool).scatter_(1, ids, True)
            x = torch.where(seen, torch.where(x > 0, x / penalty, x * penalty), x)
        if temperature == 0:
            return x.argmax(-1)
        x = x / temperature
        if top_k:
            kth = x.topk(min(top_k, x.shape[-1]), dim=-1).values[:, -1:]
            x = x.masked_fill(x < kth, float('-inf'))
        if top_p < 1.0:
            sx, order = x.sort(-1, descending=True)
            mass = sx.softmax(-1).cumsum(-1)
            drop = mass - sx.softmax(-1) >= top_p  # keep the fewest that reach top_p
            x = x.scatter(1, order, sx.masked_fill(drop, float('-inf')))
        return torch.multinomial(x.softmax(-1), 1, generator=gen)[:, 0]

    return pick


def rep4(words: list[str]) -> float:
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    if not grams:
        return 0.0
    seen, repeats = set(), 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


def distinct2(texts: list[list[str]]) -> float:
    grams = [tuple(w[i : i + 2]) for w in texts for i in range(len(w) - 1)]
    return len(set(grams)) / max(1, len(grams))


@torch.no_grad()
def nll(model, prompts, tokens):
    """Mean nats/token of `tokens` after `prompts` under the full-depth model."""
    ids = torch.cat([prompts, tokens], dim=1)
    logits = model(ids)[:, prompts.shape[1] - 1 : -1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1)).item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default=os.path.join(HERE, 'models', 'skipdecode-kjv'))
    p.add_argument('--prompts', type=int, default=87)
    p.add_argument('--seeds', type=int, default=3)
    p.add_argument('--new-tokens', type=int, default=64)
    p.add_argument('--schedule', default='recommended', help="'full', 'recommended' (the config's) or a schedule")
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default=os.path.join(HERE, 'sampling-quality.json'))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.model, 'tokenizer.json')) as f:
        tokenizer = json.load(f)
    with open(os.path.join(args.model, 'config.json')) as f:
        config = json.load(f)
    _, tok, _, held = kjv(tokenizer)
    model = load_model(args.model).eval()
    if args.schedule == 'full':
        schedule = {'kind': 'full'}
    elif args.schedule == 'recommended':
        name = config.get('skipdecode', {}).get('schedule')
        schedule = parse_schedule(name) if name else auto_schedules(model.num_layers)[1]
    else:
        schedule = parse_schedule(args.schedule)
    chunks = held.chunks(EVAL_SEQ)
    chunks = chunks[:: max(1, len(chunks) // args.prompts)][: args.prompts]
    prompts = chunks[:, :EVAL_PROMPT]
    truth = [tok.decode(c) for c in chunks[:, EVAL_PROMPT : EVAL_PROMPT + args.new_tokens].tolist()]
    reference_rep4 = sum(rep4(t.split()) for t in truth) / len(truth)
    print(f'{args.model}, schedule {format_schedule(schedule)}, {len(truth)} prompts x {args.seeds} seeds')
    print(f'held-out text: rep-4 {reference_rep4:.3f}, distinct-2 {distinct2([t.split() for t in truth]):.3f}')
    rows = []
    for temperature, top_p, top_k, penalty in SETTINGS:
        seeds = 1 if temperature == 0 else args.seeds
        rouge, reps, texts, nats = [], [], [], []
        for seed in range(seeds):
            gen = torch.Generator().manual_seed(seed)
            out = model.generate(prompts, args.new_tokens, schedule, pick=sampler(temperature, top_p, top_k, penalty, gen))
            nats.append(nll(model, prompts, out))
            for o, t in zip(out.tolist(), truth):
                text = tok.decode(o)
                rouge.append(rouge_l(text, t))
                reps.append(rep4(text.split()))
                texts.append(text.split())
        row = {
            'temperature': temperature,
            'top_p': top_p,
            'top_k': top_k,
            'repetition_penalty': penalty,
            'rouge_l': round(sum(rouge) / len(rouge), 4),
            'rouge_l_stderr': round(stderr(rouge), 4),
            'rep4': round(sum(reps) / len(reps), 4),
            'distinct2': round(distinct2(texts), 4),
            'nats_per_token': round(sum(nats) / len(nats), 4),
        }
        rows.append(row)
        print(
            f"T {temperature:.1f} top-p {top_p:.2f} top-k {top_k:3d} penalty {penalty:.1f}: ROUGE-L {row['rouge_l']:.3f} "
            f"± {row['rouge_l_stderr']:.3f}  rep-4 {row['rep4']:.3f}  distinct-2 {row['distinct2']:.3f}  "
            f"nats/token {row['nats_per_token']:.3f}",
            flush=True,
        )
    res = {
        'model': os.path.relpath(args.model, os.path.dirname(HERE)),
        'schedule': format_schedule(schedule),
        'prompts': len(truth),
        'seeds': args.seeds,
        'new_tokens': args.new_tokens,
        'held_out': {'rep4': round(reference_rep4, 4), 'distinct2': round(distinct2([t.split() for t in truth]), 4)},
        'settings': rows,
    }
    with open(args.out, 'w') as f:
        json.dump(res, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
