"""GPT-2-style byte-level BPE: learn merges, write tokenizer.json (the Hugging Face tokenizers format
the runtime loads), and encode/decode with any such tokenizer.json (ours or OPT's own)."""
from __future__ import annotations

import re
from collections import Counter, defaultdict

SPECIALS = ['<s>', '<pad>', '</s>', '<unk>']

# GPT-2's pre-tokenizer pattern ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
# with Python's classes: [^\W\d_] is a letter, \d a digit. Identical for ASCII text.
PRETOKENIZE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def byte_to_unicode() -> list[str]:
    """GPT-2's reversible byte -> printable character map (so every byte is one vocabulary symbol)."""
    out, extra = [], 0
    for b in range(256):
        printable = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF
        out.append(chr(b) if printable else chr(256 + extra))
        extra += 0 if printable else 1
    return out


B2U = byte_to_unicode()
U2B = {c: b for b, c in enumerate(B2U)}


def pretokens(text: str) -> list[str]:
    """Pre-tokens of `text`, each as its byte-mapped symbol string."""
    return [''.join(B2U[b] for b in m.encode('utf-8')) for m in PRETOKENIZE.findall(text)]


def learn_merges(texts, num_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE over pre-token counts: repeatedly merge the most frequent adjacent pair
    (ties: the lexically smallest pair, so the result is deterministic)."""
    counts = Counter()
    for text in texts:
        counts.update(pretokens(text))
    words = [list(w) for w in counts]
    freq = list(counts.values())
    pair_count = Counter()
    where = defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[a, b] += freq[i]
            where[a, b].add(i)
    merges = []
    while len(merges) < num_merges and pair_count:
        best, n = min(pair_count.items(), key=lambda kv: (-kv[1], kv[0]))
        if n < 2:
            break
        merges.append(best)
        a, b = best
        for i in list(where[best]):
            w = words[i]
            for p in zip(w, w[1:]):
                pair_count[p] -= freq[i]
                if pair_count[p] <= 0:
                    del pair_count[p]
            merged, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    merged.append(a + b)
                    j += 2
                else:
                    merged.append(w[j])
                    j += 1
            words[i] = merged
            for p in zip(merged, merged[1:]):
                pair_count[p] += freq[i]
                where[p].add(i)
        where.pop(best, None)
    return merges


def tokenizer_json(merges: list[tuple[str, str]]) -> dict:
    """tokenizer.json: specials <s>=0 <pad>=1 </s>=2 <unk>=3, the 256 bytes at 4.., then one id per merge."""
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for c in B2U:
        vocab[c] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    byte_level = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True}
    return {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [
            {
                'id': i,
                'content': s,
                'single_word': False,
                'lstrip': False,
                'rstrip': False,
                'normalized': True,
                'special': True,
            }
            for i, s in enumerate(SPECIALS)
        ],
        'normalizer': None,
        'pre_tokenizer': byte_level,
        # As in the hub's OPT tokenizer.json: the post-processor prepends </s> (the runtime adds it itself).
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '</s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
            'pair': [
                {'SpecialToken': {'id': '</s>', 'type_id': 0}},
                {'Sequence': {'id': 'A', 'type_id': 0}},
                {'Sequence': {'id': 'B', 'type_id': 1}},
            ],
            'special_tokens': {'</s>': {'id': '</s>', 'ids': [2], 'tokens': ['</s>']}},
        },
        'decoder': {**byte_level, 'add_prefix_space': True},
        'model': {
            'type': 'BPE',
            'dropout': None,
            'unk_token': None,
            'continuing_subword_prefix': '',
            'end_of_word_suffix': '',
            'fuse_unk': False,
            'byte_fallback': False,
            'vocab': vocab,
            'merges': [f'{a} {b}' for a, b in merges],
        },
    }


TOKENIZER_CONFIG = {
    'add_bos_token': True,
    'bos_token': '</s>',
    'eos_token': '</s>',
    'pad_token': '<pad>',
    'unk_token': '<unk>',
}


class ByteBPE:
    """Encoder/decoder for a byte-level BPE tokenizer.json (this project's or GPT-2/OPT's)."""

    def __init__(self, tj: dict, bos_id: int = 2):
        model = tj['model']
        if model.get('type') != 'BPE':
            raise ValueError('tokenizer.json: only BPE models are supported')
        self.vocab: dict[str, int] = dict(model['vocab'])
        for t in tj.get('added_tokens', []):
            self.vocab.setdefault(t['content'], t['id'])
        self.special_ids = {t['id'] for t in tj.get('added_tokens', []) if t.get('special')}
        self.inverse = {i: s for s, i in self.vocab.items()}
        merges = [tuple(m.split(' ')) if isinstance(m, str) else tuple(m) for m in model['merges']]
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.bos_id = bos_id
        self.cache: dict[str, list[int]] = {}

    @property
    def size(self) -> int:
        return max(self.inverse) + 1

    def _word(self, w: str) -> list[int]:
        ids = self.cache.get(w)
        if ids is not None:
            return ids
        sym = list(w)
        while len(sym) > 1:
            ranked = [(self.ranks.get(p, 1 << 60), i) for i, p in enumerate(zip(sym, sym[1:]))]
            rank, _ = min(ranked)
            if rank == 1 << 60:
                break
            a, b = next(p for p in zip(sym, sym[1:]) if self.ranks.get(p) == rank)
            out, j = [], 0
            while j < len(sym):
                if j + 1 < len(sym) and sym[j] == a and sym[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(sym[j])
                    j += 1
            sym = out
        ids = [self.vocab[s] for s in sym]
        self.cache[w] = ids
        return ids

    def encode(self, text: str, bos: bool = False) -> list[int]:
        ids = [self.bos_id] if bos else []
        for w in pretokens(text):
            ids.extend(self._word(w))
        return ids

    def token_bytes(self, i: int) -> bytes:
        if i in self.special_ids or i not in self.inverse:
            return b''
        return bytes(U2B[c] for c in self.inverse[i])

    def decode(self, ids) -> str:
        return b''.join(self.token_bytes(int(i)) for i in ids).decode('utf-8', errors='replace')
