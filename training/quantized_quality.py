"""Bits per byte of the KJV models with their matrices stored as the runtime's int8 and q4 formats,
against the f16 checkpoint, at full depth and under the evaluation's ~2x and ~3x schedules: what
`weights: 'int8' | 'q4'` costs in quality.

  /usr/bin/python3 training/quantized_quality.py [--tuned DIR] [--vanilla DIR] [--chunks N] [--threads 2]

The schemes are src/model/quantize.ts's, recomputed here independently (round half away from zero,
w / scale in f32): int8 per output row, scale = max|w| / 127; q4 per output row in groups of 32
inputs, scale = f16(max|w| / 7), codes clamped to -7..7 (widths not a multiple of 32 as int8). Every
matrix is quantized but the positional embeddings, as the runtime does; the LM head is the tied token
embedding, quantized once. Scoring is evaluate.py's bits_per_byte on its held-out chunks.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from corpus import kjv  # noqa: E402
from evaluate import bits_per_byte  # noqa: E402
from opt import format_schedule, load_model, theoretical_speedup  # noqa: E402
from train import EVAL_PROMPT, EVAL_SEQ, auto_schedules  # noqa: E402


def round_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def int8_dequant(w: torch.Tensor) -> torch.Tensor:
    w = w.float()
    scale = (w.abs().amax(dim=1, keepdim=True) / 127).float()
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.clamp(round_away(w / safe), -127, 127)
    return torch.where(scale == 0, torch.zeros_like(w), scale * q)


def q4_dequant(w: torch.Tensor) -> torch.Tensor:
    rows, cols = w.shape
    if cols % 32:
        return int8_dequant(w)
    g = w.float().reshape(rows, cols // 32, 32)
    scale = (g.abs().amax(dim=2, keepdim=True) / 7).half().float()
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.clamp(round_away(g / safe), -7, 7)
    return torch.where(scale == 0, torch.zeros_like(g), scale * q).reshape(rows, cols)


def quantize_model(model, scheme: str) -> int:
    """Replaces every matrix but the positional embeddings by its dequantized scheme; returns how many."""
    n = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() != 2 or 'embed_positions' in name:
                continue
            p.copy_(int8_dequant(p) if scheme == 'int8' else q4_dequant(p))
            n += 1
    return n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--tuned', default=os.path.join(HERE, 'models', 'skipdecode-kjv'))
    p.add_argument('--vanilla', default=os.path.join(HERE, 'models', 'skipdecode-kjv-vanilla'))
    p.add_argument('--chunks', type=int, default=0, help='held-out chunks (0: all)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json', help='also write the rows to this file')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.tuned, 'tokenizer.json')) as f:
        _, tok, _, held = kjv(json.load(f))
    chunks = held.chunks(EVAL_SEQ)
    if args.chunks:
        chunks = chunks[: args.chunks]
    byte_len = torch.tensor([len(tok.token_bytes(i)) for i in range(max(tok.size, 1))] + [0] * 4096)
    L = load_model(args.tuned).num_layers
    decode = EVAL_SEQ - EVAL_PROMPT - 1
    schedules = [{'kind': 'full'}] + [s for s in auto_schedules(L) if 1.8 <= theoretical_speedup(L, s, decode) <= 3.3]
    rows = []
    print(f'{len(chunks)} held-out chunks; schedules: {[format_schedule(s) for s in schedules]}', flush=True)
    print('| model | schedule | speedup | f16 bpb | int8 bpb (vs f16) | q4 bpb (vs f16) |')
    print('| --- | --- | --- | --- | --- | --- |')
    for name, path in (('fine-tuned', args.tuned), ('vanilla', args.vanilla)):
        bpb = {}
        for scheme in ('f16', 'int8', 'q4'):
            model = load_model(path).eval()
            if scheme != 'f16':
                quantize_model(model, scheme)
            t0 = time.time()
            bpb[scheme] = [bits_per_byte(model, chunks, s, byte_len)[0] for s in schedules]
            print(f'  ({name} {scheme}: {time.time() - t0:.0f} s)', file=sys.stderr, flush=True)
        for i, s in enumerate(schedules):
            f16, i8, q4 = bpb['f16'][i], bpb['int8'][i], bpb['q4'][i]
            row = {
                'model': name,
                'schedule': format_schedule(s),
                'speedup': round(theoretical_speedup(L, s, decode), 3),
                'f16': round(f16, 4),
                'int8': round(i8, 4),
                'q4': round(q4, 4),
            }
            rows.append(row)
            print(
                f"| {name} | `{row['schedule']}` | {row['speedup']:.2f}x | {f16:.4f} | "
                f'{i8:.4f} ({100 * (i8 / f16 - 1):+.2f}%) | {q4:.4f} ({100 * (q4 / f16 - 1):+.2f}%) |',
                flush=True,
            )
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'chunks': len(chunks), 'rows': rows}, f, indent=2)
            f.write('\n')


if __name__ == '__main__':
    main()
