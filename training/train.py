"""Step 1 (pretrain): a small OPT from scratch on the KJV corpus, at full depth.
Step 2 (finetune): continue training any OPT checkpoint in hub layout with the SkipDecode schedule on:
each sequence gets a random prompt length and a schedule drawn from a mix (plus some full-depth
sequences); positions after the prompt run only the layers the runtime's planner gives them.

  python3 training/train.py pretrain --out DIR [--minutes 30 | --steps N] [model size flags]
  python3 training/train.py finetune --init DIR --out DIR [--minutes 15 | --steps N] [--text FILE]
      [--schedules auto|"linear:...;linear:..."] [--device cuda] [--amp bf16]

Both write DIR/model.safetensors (float32) + config.json + tokenizer.json; --export DIR2 also writes
the float16 copy the runtime ships.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import TOKENIZER_CONFIG, ByteBPE  # noqa: E402
from corpus import TokenStream, build_tokenizer, kjv  # noqa: E402
from opt import (  # noqa: E402
    OptConfig,
    OptLM,
    format_schedule,
    load_model,
    parse_schedule,
    pick_schedule,
    run_masks,
    save_model,
    schedule_table,
    theoretical_speedup,
    validate_schedule,
)

# The evaluation's decode length (128-token chunks, 32-token prompts: 95 scored decode positions);
# 'auto' schedules are sized for it.
EVAL_SEQ, EVAL_PROMPT = 128, 32
AUTO_TARGETS = (1.5, 2.0, 3.0, 5.0)


def auto_schedules(num_layers: int) -> list[dict]:
    out = []
    for t in AUTO_TARGETS:
        s = pick_schedule(num_layers, t, EVAL_SEQ - EVAL_PROMPT - 1)
        if s not in out:  # shallow models cannot reach every target
            out.append(s)
    return out


def write_tokenizer(tokenizer: dict, out: str) -> None:
    with open(os.path.join(out, 'tokenizer.json'), 'w') as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(out, 'tokenizer_config.json'), 'w') as f:
        json.dump(TOKENIZER_CONFIG, f, indent=2)
        f.write('\n')


def data_for(args, tokenizer: dict | None):
    """(tokenizer dict, train stream, held-out stream): the KJV corpus, or --text FILE (one paragraph
    per line; every 25th line held out) tokenized with the given tokenizer."""
    if args.text:
        with open(args.text, encoding='utf-8') as f:
            lines = [line.rstrip('\n') for line in f if line.strip()]
        held = [line for i, line in enumerate(lines) if i % 25 == 12]
        train = [line for i, line in enumerate(lines) if i % 25 != 12]
        if tokenizer is None:
            tokenizer = build_tokenizer(train, args.merges)
        tok = ByteBPE(tokenizer)
        return tokenizer, TokenStream(tok, train), TokenStream(tok, held)
    tj, _, train, held = kjv(tokenizer, getattr(args, 'merges', 764))
    return tj, train, held


def param_groups(model, weight_decay):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    return [{'params': decay, 'weight_decay': weight_decay}, {'params': rest, 'weight_decay': 0.0}]


class Budget:
    """Learning-rate progress by steps (--steps) or by wall time (--minutes): linear warm-up, cosine to 10%.
    `elapsed` is the training time of earlier segments of a resumed run, so the schedule continues."""

    def __init__(self, steps, minutes, warmup, elapsed=0.0):
        self.steps, self.seconds, self.warmup = steps, minutes * 60 if minutes else None, warmup
        self.start = time.time() - elapsed

    def elapsed(self):
        return time.time() - self.start

    def progress(self, step):
        if self.steps:
            return step / self.steps
        return self.elapsed() / self.seconds

    def done(self, step):
        return self.progress(step) >= 1

    def lr_scale(self, step):
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        return warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, self.progress(step)))))


CHECKPOINT = 'checkpoint.pt'


def save_checkpoint(out, model, opt, rng, state):
    """Everything a stopped run needs to continue (written atomically: a kill mid-write keeps the last one)."""
    path = os.path.join(out, CHECKPOINT)
    torch.save(
        {'model': model.state_dict(), 'opt': opt.state_dict(), 'rng': rng.getstate(), 'torch_rng': torch.get_rng_state(), **state},
        path + '.tmp',
    )
    os.replace(path + '.tmp', path)


def distill_loss(logits, teacher, alpha, temperature):
    """alpha * T^2 * KL(teacher || student) at temperature T, per position (mean); the teacher is the
    same model's full-depth pass on the same batch (self-distillation, as LayerSkip and CALM do)."""
    t = temperature
    logp = F.log_softmax(logits[:, :-1].float() / t, dim=-1)
    q = F.log_softmax(teacher[:, :-1].float() / t, dim=-1)
    kl = (q.exp() * (q - logp)).sum(-1).mean()
    return alpha * t * t * kl


@torch.no_grad()
def held_out_loss(model, stream, args, device, runs_fn=None, max_chunks=64):
    chunks = stream.chunks(args.seq)[:max_chunks].to(device)
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(chunks), args.batch):
        ids = chunks[i : i + args.batch]
        runs = runs_fn(ids) if runs_fn else None
        logits = model(ids, runs)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1), reduction='sum')
        total += loss.item()
        count += ids[:, 1:].numel()
    model.train()
    return total / count


def train(args, model, train_stream, held_stream, device, make_runs=None, log_prefix=''):
    """The loop both steps share. make_runs(ids, rng) -> [L, B, T] layer masks (None: full depth).
    With --distill A (fine-tuning), the loss is (1 - A) * cross-entropy + A * KL to the full-depth
    pass's logits. A checkpoint is written to --out every --checkpoint-minutes; --resume continues
    from it (same step, optimizer, data order and learning-rate schedule)."""
    for layer in model.model.decoder.layers:
        layer.dropout = args.dropout
    model.to(device).train()
    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    step, tokens, smooth, log, elapsed = 0, 0, None, [], 0.0
    ckpt = os.path.join(args.out, CHECKPOINT)
    if args.resume and os.path.exists(ckpt):
        c = torch.load(ckpt)
        model.load_state_dict(c['model'])
        opt.load_state_dict(c['opt'])
        rng.setstate(c['rng'])
        torch.set_rng_state(c['torch_rng'])
        step, tokens, smooth, log, elapsed = c['step'], c['tokens'], c['smooth'], c['log'], c['elapsed']
        print(f'{log_prefix}resumed at step {step} ({elapsed / 60:.1f} min)', flush=True)
    budget = Budget(args.steps, args.minutes, args.warmup, elapsed)
    amp = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if args.amp == 'bf16' else None
    distill = getattr(args, 'distill', 0.0)
    last_ckpt = time.time()
    while not budget.done(step):
        for g in opt.param_groups:
            g['lr'] = args.lr * budget.lr_scale(step)
        ids = train_stream.batch(rng, args.batch, args.seq).to(device)
        runs = make_runs(ids, rng) if make_runs else None
        with amp or contextlib.nullcontext():
            teacher = None
            if distill and runs is not None:
                with torch.no_grad():
                    teacher = model(ids)
            logits = model(ids, runs)
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))
        loss = ce if teacher is None else (1 - distill) * ce + distill_loss(logits, teacher, distill, args.distill_temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        tokens += ids.numel()
        smooth = ce.item() if smooth is None else 0.95 * smooth + 0.05 * ce.item()
        if step % args.log_every == 0 or budget.done(step):
            el = budget.elapsed()
            print(
                f'{log_prefix}step {step} loss {smooth:.4f} lr {opt.param_groups[0]["lr"]:.2e} '
                f'{tokens / el:.0f} tok/s {el / 60:.1f} min',
                flush=True,
            )
            log.append({'step': step, 'loss': round(smooth, 4), 'minutes': round(el / 60, 2)})
        if time.time() - last_ckpt >= args.checkpoint_minutes * 60:
            state = {'step': step, 'tokens': tokens, 'smooth': smooth, 'log': log, 'elapsed': budget.elapsed()}
            save_checkpoint(args.out, model, opt, rng, state)
            last_ckpt = time.time()
    held = held_out_loss(model, held_stream, args, device)
    minutes = budget.elapsed() / 60
    print(f'{log_prefix}done: {step} steps, {tokens} tokens, {minutes:.1f} min, held-out loss {held:.4f} nats/token', flush=True)
    return {'steps': step, 'tokens': tokens, 'minutes': round(minutes, 2), 'held_out_loss': held, 'log': log}


def save_run(model, tokenizer, out, info, skipdecode=None, export=None):
    model = model.float().cpu()
    save_model(model, out, 'float32', skipdecode)
    write_tokenizer(tokenizer, out)
    with open(os.path.join(out, 'train_log.json'), 'w') as f:
        json.dump(info, f, indent=2)
        f.write('\n')
    if export:
        save_model(model, export, 'float16', skipdecode)
        write_tokenizer(tokenizer, export)
        shutil.copy(os.path.join(out, 'train_log.json'), os.path.join(export, 'train_log.json'))
        print(f'exported float16 model to {export}')


def cmd_pretrain(args):
    device = torch.device(args.device)
    tokenizer, train_stream, held_stream = data_for(args, None)
    size = ByteBPE(tokenizer).size
    config = OptConfig(
        vocab_size=(size + 7) // 8 * 8,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        ffn_dim=args.ffn,
        max_position_embeddings=args.seq,
    )
    torch.manual_seed(args.seed)
    model = OptLM(config)
    print(f'pretrain: {sum(p.numel() for p in model.parameters())} parameters, {len(train_stream.ids)} train tokens')
    info = train(args, model, train_stream, held_stream, device, log_prefix='pretrain ')
    info.update(command='pretrain', args=vars(args))
    save_run(model, tokenizer, args.out, info, {'fine_tuned': False}, args.export)


def cmd_finetune(args):
    device = torch.device(args.device)
    model = load_model(args.init)
    with open(os.path.join(args.init, 'tokenizer.json')) as f:
        init_tokenizer = json.load(f)
    tokenizer, train_stream, held_stream = data_for(args, init_tokenizer)
    L = model.num_layers
    schedules = auto_schedules(L) if args.schedules == 'auto' else [parse_schedule(s) for s in args.schedules.split(';')]
    for s in schedules:
        validate_schedule(L, s)
    # Table of layer sets per decode step for each schedule; row 0 of the stack is full depth.
    steps = args.seq
    tables = torch.stack([schedule_table(L, {'kind': 'full'}, steps)] + [schedule_table(L, s, steps) for s in schedules])
    weights = [args.full_fraction] + [(1 - args.full_fraction) / len(schedules)] * len(schedules)
    decode = EVAL_SEQ - EVAL_PROMPT - 1
    for s in schedules:
        print(f'finetune schedule {format_schedule(s)}: {theoretical_speedup(L, s, decode):.2f}x over {decode} decode steps')

    def make_runs(ids, rng):
        b, t = ids.shape
        which = torch.tensor(rng.choices(range(len(tables)), weights=weights, k=b))
        prompt = torch.tensor([rng.randint(args.min_prompt, min(args.max_prompt, t - 1)) for _ in range(b)])
        return run_masks(tables, which, prompt, t).to(ids.device)

    info = train(args, model, train_stream, held_stream, device, make_runs, log_prefix='finetune ')
    info.update(command='finetune', args=vars(args), schedules=[format_schedule(s) for s in schedules])
    main = schedules[min(1, len(schedules) - 1)]
    # --full-fraction 1 is the control run: more training at full depth, no skipping.
    skip = {'fine_tuned': True, 'schedule': format_schedule(main)} if args.full_fraction < 1 else {'fine_tuned': False}
    save_run(model, tokenizer, args.out, info, skip, args.export)
    if os.path.exists(os.path.join(args.init, 'tokenizer_config.json')):
        for out in filter(None, [args.out, args.export]):
            shutil.copy(os.path.join(args.init, 'tokenizer_config.json'), os.path.join(out, 'tokenizer_config.json'))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    for name in ('pretrain', 'finetune'):
        q = sub.add_parser(name)
        q.add_argument('--out', required=True)
        q.add_argument('--export', help='also write the float16 hub-layout model here')
        q.add_argument('--text', help='plain-text corpus (one paragraph per line) instead of the KJV Bible')
        q.add_argument('--steps', type=int, help='train this many steps (reproducible)')
        q.add_argument('--minutes', type=float, help='or train for this much wall time (cosine over time)')
        q.add_argument('--batch', type=int, default=16)
        q.add_argument('--seq', type=int, default=128)
        q.add_argument('--lr', type=float, default=2e-3 if name == 'pretrain' else 5e-4)
        q.add_argument('--warmup', type=int, default=100 if name == 'pretrain' else 20)
        q.add_argument('--weight-decay', type=float, default=0.1)
        q.add_argument('--clip', type=float, default=1.0)
        q.add_argument('--dropout', type=float, default=0.0, help='residual dropout in training (KJV is small: many epochs)')
        q.add_argument('--seed', type=int, default=0)
        q.add_argument('--threads', type=int, default=2)
        q.add_argument('--device', default='cpu')
        q.add_argument('--amp', choices=['none', 'bf16'], default='none', help='bf16 autocast (GPUs)')
        q.add_argument('--log-every', type=int, default=20)
        q.add_argument('--resume', action='store_true', help='continue from --out/checkpoint.pt if there is one')
        q.add_argument('--checkpoint-minutes', type=float, default=3.0, help='write --out/checkpoint.pt this often')
        if name == 'pretrain':
            q.add_argument('--layers', type=int, default=8)
            q.add_argument('--hidden', type=int, default=128)
            q.add_argument('--heads', type=int, default=4)
            q.add_argument('--ffn', type=int, default=512)
            q.add_argument('--merges', type=int, default=764, help='BPE merges (vocab = 260 + merges)')
        else:
            q.add_argument('--init', required=True, help='OPT checkpoint folder in hub layout (with tokenizer.json)')
            q.add_argument('--schedules', default='auto', help="'auto' (~1.5x, 2x, 3x, 5x) or schedules joined by ';'")
            q.add_argument('--full-fraction', type=float, default=0.25, help='share of full-depth sequences')
            q.add_argument('--min-prompt', type=int, default=4)
            q.add_argument('--max-prompt', type=int, default=64)
            q.add_argument('--distill', type=float, default=0.0, help='weight of the KL to the full-depth pass (0: off)')
            q.add_argument('--distill-temperature', type=float, default=1.0)
    args = p.parse_args(argv)
    if bool(args.steps) == bool(args.minutes):
        p.error('give exactly one of --steps and --minutes')
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    (cmd_pretrain if args.cmd == 'pretrain' else cmd_finetune)(args)


if __name__ == '__main__':
    main()
