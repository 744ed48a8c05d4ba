"""The corpus: the King James Bible from Debian's bible-kjv package (public domain text), one verse per
line, split by chapter into train and held-out parts; the demo tokenizer is learnt on the train part."""
from __future__ import annotations

import json
import os
import random
import re
import subprocess

import torch

from bpe import ByteBPE, learn_merges, tokenizer_json

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, '.cache')
VERSE = re.compile(r'^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$')
# Every 25th chapter (by position in the whole Bible, offset 12) is held out: 48 of 1189 chapters.
HELD_OUT_EVERY, HELD_OUT_OFFSET = 25, 12


def load_verses() -> list[tuple[str, int, int, str]]:
    """(book, chapter, verse, text) for all 31102 verses, via the `bible` command of bible-kjv."""
    try:
        out = subprocess.run(
            ['bible', '-f'], input='gen1:1-rev22:21\n', capture_output=True, text=True, check=True
        ).stdout
    except FileNotFoundError as e:
        raise SystemExit('the corpus needs the bible command: apt-get install bible-kjv') from e
    verses, seen = [], set()
    for line in out.splitlines():
        m = VERSE.match(line)
        # The program shows Gen 1:1 once on start-up before the requested range: keep each verse once.
        if m and m.group(1, 2, 3) not in seen:
            seen.add(m.group(1, 2, 3))
            verses.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4).strip()))
    if len(verses) != 31102:
        raise SystemExit(f'expected 31102 verses from bible-kjv, got {len(verses)}')
    return verses


def split_verses(verses) -> tuple[list[str], list[str]]:
    """Train and held-out verse texts; whole chapters go to one side."""
    train, held = [], []
    chapter, last = -1, None
    for book, ch, _, text in verses:
        if (book, ch) != last:
            chapter += 1
            last = (book, ch)
        (held if chapter % HELD_OUT_EVERY == HELD_OUT_OFFSET else train).append(text)
    return train, held


def build_tokenizer(train_texts: list[str], num_merges: int) -> dict:
    return tokenizer_json(learn_merges([t + '\n' for t in train_texts], num_merges))


class TokenStream:
    """Verses joined by newlines, as token ids, with the index where each verse starts."""

    def __init__(self, tok: ByteBPE, texts: list[str]):
        ids, starts = [], []
        for t in texts:
            starts.append(len(ids))
            ids.extend(tok.encode(t + '\n'))
        self.ids = torch.tensor(ids, dtype=torch.long)
        self.starts = torch.tensor(starts, dtype=torch.long)
        self.bos = tok.bos_id

    def batch(self, rng: random.Random, batch: int, seq: int) -> torch.Tensor:
        """[batch, seq]: BOS then seq-1 tokens from a random verse start."""
        limit = len(self.ids) - (seq - 1)
        valid = self.starts[self.starts <= limit]
        rows = []
        for _ in range(batch):
            s = int(valid[rng.randrange(len(valid))])
            rows.append(torch.cat([torch.tensor([self.bos]), self.ids[s : s + seq - 1]]))
        return torch.stack(rows)

    def chunks(self, seq: int) -> torch.Tensor:
        """Non-overlapping [n, seq] evaluation chunks: BOS + seq-1 tokens, each starting at a verse start."""
        rows, end = [], 0
        for s in self.starts.tolist():
            if s < end or s + seq - 1 > len(self.ids):
                continue
            rows.append(torch.cat([torch.tensor([self.bos]), self.ids[s : s + seq - 1]]))
            end = s + seq - 1
        return torch.stack(rows)


def kjv(tokenizer: dict | None = None, num_merges: int = 764):
    """(tokenizer.json dict, ByteBPE, train TokenStream, held-out TokenStream). Without `tokenizer`,
    one is learnt on the train split (cached in training/.cache)."""
    train, held = split_verses(load_verses())
    if tokenizer is None:
        os.makedirs(CACHE, exist_ok=True)
        path = os.path.join(CACHE, f'kjv-tokenizer-{num_merges}.json')
        if os.path.exists(path):
            with open(path) as f:
                tokenizer = json.load(f)
        else:
            tokenizer = build_tokenizer(train, num_merges)
            with open(path, 'w') as f:
                json.dump(tokenizer, f)
    tok = ByteBPE(tokenizer)
    return tokenizer, tok, TokenStream(tok, train), TokenStream(tok, held)
