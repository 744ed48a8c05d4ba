"""OPT decoder in plain PyTorch, exactly as the runtime computes it, plus the SkipDecode schedule,
Hugging Face checkpoint I/O (config.json + safetensors, written and read here without extra packages).

Semantics (docs/SKIPDECODE.md): learned positions looked up at position id + 2, q scaled by
head_dim^-0.5, ReLU, LayerNorm eps 1e-5, tied LM head; pre-LN (do_layer_norm_before) or post-LN;
project_in/out when word_embed_proj_dim != hidden_size.
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

POSITION_OFFSET = 2
LAYER_NORM_EPS = 1e-5


@dataclass
class OptConfig:
    vocab_size: int = 1024
    hidden_size: int = 192
    num_hidden_layers: int = 8
    num_attention_heads: int = 6
    ffn_dim: int = 768
    max_position_embeddings: int = 128
    word_embed_proj_dim: int = 0  # 0: same as hidden_size
    do_layer_norm_before: bool = True
    pad_token_id: int = 1
    bos_token_id: int = 2
    eos_token_id: int = 2
    extra: dict = field(default_factory=dict)  # other keys of config.json, written back unchanged

    def __post_init__(self):
        if not self.word_embed_proj_dim:
            self.word_embed_proj_dim = self.hidden_size
        if self.hidden_size % self.num_attention_heads:
            raise ValueError('hidden_size must be a multiple of num_attention_heads')

    def to_hf(self, dtype: str = 'float16', skipdecode: dict | None = None) -> dict:
        c = dict(self.extra)
        c.update(
            architectures=['OPTForCausalLM'],
            model_type='opt',
            activation_function='relu',
            attention_dropout=0.0,
            dropout=0.0,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            enable_bias=True,
            layer_norm_elementwise_affine=True,
            do_layer_norm_before=self.do_layer_norm_before,
            hidden_size=self.hidden_size,
            ffn_dim=self.ffn_dim,
            num_attention_heads=self.num_attention_heads,
            num_hidden_layers=self.num_hidden_layers,
            max_position_embeddings=self.max_position_embeddings,
            vocab_size=self.vocab_size,
            word_embed_proj_dim=self.word_embed_proj_dim,
            tie_word_embeddings=True,
            torch_dtype=dtype,
            use_cache=True,
        )
        if skipdecode is not None:
            c['skipdecode'] = skipdecode
        else:
            c.pop('skipdecode', None)
        return c

    @staticmethod
    def from_hf(c: dict) -> 'OptConfig':
        if c.get('model_type', 'opt') != 'opt':
            raise ValueError(f"model_type {c.get('model_type')!r} is not opt")
        if c.get('activation_function', 'relu') != 'relu':
            raise ValueError('only activation_function relu is supported')
        if c.get('enable_bias', True) is not True or c.get('layer_norm_elementwise_affine', True) is not True:
            raise ValueError('only enable_bias = true and layer_norm_elementwise_affine = true are supported')
        known = {
            'vocab_size': 50272,
            'hidden_size': 768,
            'num_hidden_layers': 12,
            'num_attention_heads': 12,
            'ffn_dim': 3072,
            'max_position_embeddings': 2048,
            'word_embed_proj_dim': 0,
            'do_layer_norm_before': True,
            'pad_token_id': 1,
            'bos_token_id': 2,
            'eos_token_id': 2,
        }
        args = {k: c.get(k, d) for k, d in known.items()}
        if args['word_embed_proj_dim'] is None:
            args['word_embed_proj_dim'] = 0
        extra = {k: v for k, v in c.items() if k not in known}
        return OptConfig(**args, extra=extra)


# ---------------------------------------------------------------------------------------------
# SkipDecode schedule: the runtime's planner (src/skip/planner.ts), with the same exact integers.


def linear_layer_count(s: dict, k: int) -> int:
    """n_k = floor(max - min(1, k/d)(max - min) + 1/2), d = max(1, span - 1); exact, halves round up."""
    d = max(1, s['span'] - 1)
    kk = min(k, d)
    return (2 * s['max'] * d - 2 * kk * (s['max'] - s['min']) + d) // (2 * d)


def validate_schedule(num_layers: int, s: dict) -> None:
    if s['kind'] == 'full':
        return
    if s['kind'] != 'linear':
        raise ValueError(f"unknown schedule kind {s['kind']!r}")
    if not (1 <= s['min'] <= s['max'] <= num_layers and 0 <= s['warmup'] < s['min'] and s['span'] >= 1):
        raise ValueError(f'invalid schedule {format_schedule(s)} for {num_layers} layers')


def decode_layers(num_layers: int, s: dict, k: int) -> list[int]:
    """Ascending layers that decode forward k runs (k = 0 feeds the first generated token)."""
    if s['kind'] == 'full':
        return list(range(num_layers))
    n = linear_layer_count(s, k)
    w = s['warmup']
    return list(range(w)) + list(range(num_layers - (n - w), num_layers))


def format_schedule(s: dict) -> str:
    if s['kind'] == 'full':
        return 'full'
    return f"linear:max={s['max']},min={s['min']},warmup={s['warmup']},span={s['span']}"


def parse_schedule(text: str) -> dict:
    text = text.strip()
    if text == 'full':
        return {'kind': 'full'}
    kind, _, body = text.partition(':')
    if kind != 'linear':
        raise ValueError(f'schedule {text!r}: expected full or linear:max=A,min=B,warmup=C,span=D')
    vals = dict(part.split('=') for part in body.split(','))
    return {'kind': 'linear', **{k: int(vals[k]) for k in ('max', 'min', 'warmup', 'span')}}


def theoretical_speedup(num_layers: int, s: dict, decode_steps: int) -> float:
    """L / mean(n_k) over decode forwards k = 0 .. decode_steps-1."""
    mean = sum(len(decode_layers(num_layers, s, k)) for k in range(decode_steps)) / decode_steps
    return num_layers / mean


def schedule_table(num_layers: int, s: dict, steps: int) -> torch.Tensor:
    """[steps, L] bool: row k says which layers decode forward k runs (rows past the end repeat)."""
    t = torch.zeros(steps, num_layers, dtype=torch.bool)
    for k in range(steps):
        t[k, decode_layers(num_layers, s, k)] = True
    return t


def run_masks(tables: torch.Tensor, which: torch.Tensor, prompt_lens: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Per-position layer masks [L, B, T]: prompt positions (t < p_b) run every layer; position p_b + k
    runs the layers of decode forward k of sequence b's schedule (tables[which[b]], [S, steps, L])."""
    t = torch.arange(seq_len)[None, :]
    k = (t - prompt_lens[:, None]).clamp(0, tables.shape[1] - 1)
    runs = tables[which[:, None], k]  # [B, T, L]
    runs = runs | (t < prompt_lens[:, None])[:, :, None]
    return runs.permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------
# The model.


class Attention(nn.Module):
    def __init__(self, c: OptConfig):
        super().__init__()
        h = c.hidden_size
        self.heads = c.num_attention_heads
        self.head_dim = h // self.heads
        self.scale = self.head_dim**-0.5
        self.q_proj = nn.Linear(h, h)
        self.k_proj = nn.Linear(h, h)
        self.v_proj = nn.Linear(h, h)
        self.out_proj = nn.Linear(h, h)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, bias, cache=None):
        """x [B, T, H]; bias additive [B|1, 1, T, S]; cache: (k, v) of earlier positions to prepend,
        returned updated so incremental decoding can keep it."""
        q = self.split(self.q_proj(x) * self.scale)
        k = self.split(self.k_proj(x))
        v = self.split(self.v_proj(x))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        att = torch.softmax(q @ k.transpose(-1, -2) + bias, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(x.shape)
        return self.out_proj(y), (k, v)


class Layer(nn.Module):
    def __init__(self, c: OptConfig):
        super().__init__()
        self.pre_ln = c.do_layer_norm_before
        self.self_attn = Attention(c)
        self.self_attn_layer_norm = nn.LayerNorm(c.hidden_size, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(c.hidden_size, c.ffn_dim)
        self.fc2 = nn.Linear(c.ffn_dim, c.hidden_size)
        self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=LAYER_NORM_EPS)
        # Residual dropout, as Hugging Face's OPT applies after out_proj and fc2; only in training
        # (train.py --dropout), so inference is the runtime's forward exactly.
        self.dropout = 0.0

    def forward(self, h, bias, cache=None):
        def drop(x):
            return F.dropout(x, self.dropout, self.training) if self.dropout else x

        if self.pre_ln:
            a, kv = self.self_attn(self.self_attn_layer_norm(h), bias, cache)
            h = h + drop(a)
            h = h + drop(self.fc2(F.relu(self.fc1(self.final_layer_norm(h)))))
        else:
            a, kv = self.self_attn(h, bias, cache)
            h = self.self_attn_layer_norm(h + drop(a))
            h = self.final_layer_norm(h + drop(self.fc2(F.relu(self.fc1(h)))))
        return h, kv


class Decoder(nn.Module):
    def __init__(self, c: OptConfig):
        super().__init__()
        p, h = c.word_embed_proj_dim, c.hidden_size
        self.embed_tokens = nn.Embedding(c.vocab_size, p)
        self.embed_positions = nn.Embedding(c.max_position_embeddings + POSITION_OFFSET, h)
        self.project_in = nn.Linear(p, h, bias=False) if p != h else None
        self.project_out = nn.Linear(h, p, bias=False) if p != h else None
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))
        self.final_layer_norm = nn.LayerNorm(h, eps=LAYER_NORM_EPS) if c.do_layer_norm_before else None


class OptLM(nn.Module):
    """OPTForCausalLM with a tied head. Parameter names are the hub's (model.decoder....)."""

    def __init__(self, c: OptConfig):
        super().__init__()
        self.config = c
        self.model = nn.Module()
        self.model.decoder = Decoder(c)
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.02):
        d = self.model.decoder
        n = len(d.layers)
        for name, p in self.named_parameters():
            if name.endswith('layer_norm.weight'):
                nn.init.ones_(p)
            elif name.endswith('.bias'):
                nn.init.zeros_(p)
            elif 'out_proj' in name or 'fc2' in name:
                nn.init.normal_(p, std=std / math.sqrt(2 * n))  # GPT-2's residual scaling
            else:
                nn.init.normal_(p, std=std)

    @property
    def num_layers(self) -> int:
        return self.config.num_hidden_layers

    def embed(self, ids, positions):
        d = self.model.decoder
        x = d.embed_tokens(ids)
        if d.project_in is not None:
            x = d.project_in(x)
        return x + d.embed_positions(positions + POSITION_OFFSET)

    def head(self, h):
        d = self.model.decoder
        if d.final_layer_norm is not None:
            h = d.final_layer_norm(h)
        if d.project_out is not None:
            h = d.project_out(h)
        return h @ d.embed_tokens.weight.t()

    def forward(self, ids, runs=None, attention_mask=None):
        """Logits [B, T, V] for every position. `runs` [L, B, T] bool: position t runs layer l only where
        set; a skipped layer passes the hidden state through. Every layer is computed on all positions
        and masked: a skipped position's K/V are never attended, because later positions' layer sets
        are subsets of earlier ones. `attention_mask` [B, T] (1 = token, 0 = left padding): positions
        are cumsum(mask) * mask - 1, as in Hugging Face and the runtime."""
        b, t = ids.shape
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
        if attention_mask is None:
            positions = torch.arange(t, device=ids.device).expand(b, t)
            allowed = causal[None]
        else:
            m = attention_mask.long()
            positions = torch.cumsum(m, dim=1) * m - 1
            allowed = causal[None] & attention_mask.bool()[:, None, :]
        dtype = self.model.decoder.embed_positions.weight.dtype
        bias = torch.zeros(allowed.shape, dtype=dtype, device=ids.device)
        bias = bias.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
        h = self.embed(ids, positions)
        for l, layer in enumerate(self.model.decoder.layers):
            out, _ = layer(h, bias)
            h = out if runs is None else torch.where(runs[l][:, :, None], out, h)
        return self.head(h)

    @torch.no_grad()
    def generate(self, prompts: torch.Tensor, new_tokens: int, schedule: dict, return_logits=False, pick=None):
        """Greedy decoding with a per-layer KV cache, as the runtime does: the prompt runs every layer,
        decode forward k runs decode_layers(k) and appends K/V only in those layers. prompts [B, P]
        (no padding). Returns tokens [B, new_tokens] (and logits [new_tokens, B, V]). `pick(logits,
        ids)` chooses each step's tokens instead of argmax (ids: [B, P + step], prompt and generated)."""
        b, p = prompts.shape
        L = self.num_layers
        layers = self.model.decoder.layers
        caches = [None] * L
        dtype = self.model.decoder.embed_positions.weight.dtype
        causal = torch.ones(p, p, dtype=torch.bool, device=prompts.device).tril()
        bias = torch.zeros(p, p, dtype=dtype, device=prompts.device).masked_fill(~causal, torch.finfo(dtype).min)
        h = self.embed(prompts, torch.arange(p, device=prompts.device).expand(b, p))
        for l in range(L):
            h, caches[l] = layers[l](h, bias[None, None])
        logits = self.head(h[:, -1])
        out, all_logits = [], []
        for step in range(new_tokens):
            all_logits.append(logits)
            tok = logits.argmax(-1) if pick is None else pick(logits, torch.cat([prompts, *[t[:, None] for t in out]], dim=1))
            out.append(tok)
            if step == new_tokens - 1:
                break
            pos = torch.full((b, 1), p + step, device=prompts.device)
            h = self.embed(tok[:, None], pos)
            for l in decode_layers(L, schedule, step):
                h, caches[l] = layers[l](h, torch.zeros(1, dtype=dtype, device=prompts.device), caches[l])
            logits = self.head(h[:, -1])
        tokens = torch.stack(out, dim=1)
        return (tokens, torch.stack(all_logits)) if return_logits else tokens


# ---------------------------------------------------------------------------------------------
# safetensors (written and read here; format: u64 LE header length, JSON header, raw data).

_DTYPES = {'F32': (torch.float32, 4), 'F16': (torch.float16, 2), 'BF16': (torch.bfloat16, 2)}
_NAMES = {v[0]: k for k, v in _DTYPES.items()}


def save_safetensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {'dtype': _NAMES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header['__metadata__'] = metadata
    hjson = json.dumps(header, separators=(',', ':')).encode()
    hjson += b' ' * (-len(hjson) % 8)  # align the data to 8 bytes
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)


def load_safetensors(path: str) -> dict[str, torch.Tensor]:
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        if info['dtype'] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name}: dtype {info['dtype']} not supported")
        dtype, size = _DTYPES[info['dtype']]
        b, e = info['data_offsets']
        count = math.prod(info['shape'])
        if e - b != count * size:
            raise ValueError(f'{path}: tensor {name}: {e - b} bytes for shape {info["shape"]}')
        buf = bytearray(data[base + b : base + e])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16) if count else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(buf, dtype=dtype) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info['shape'])
    return out


def load_checkpoint_tensors(model_dir: str) -> dict[str, torch.Tensor]:
    """model.safetensors, sharded model.safetensors.index.json, or pytorch_model.bin (fallback)."""
    single = os.path.join(model_dir, 'model.safetensors')
    index = os.path.join(model_dir, 'model.safetensors.index.json')
    if os.path.exists(single):
        return load_safetensors(single)
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)['weight_map'].values()))
        out = {}
        for name in files:
            out.update(load_safetensors(os.path.join(model_dir, name)))
        return out
    binf = os.path.join(model_dir, 'pytorch_model.bin')
    if os.path.exists(binf):
        return torch.load(binf, map_location='cpu')
    raise FileNotFoundError(f'{model_dir}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin')


def load_model(model_dir: str, dtype=torch.float32) -> OptLM:
    """Any HF-layout OPT checkpoint (prefix model.decoder. or decoder., tied or copied lm_head)."""
    with open(os.path.join(model_dir, 'config.json')) as f:
        config = OptConfig.from_hf(json.load(f))
    model = OptLM(config)
    tensors = load_checkpoint_tensors(model_dir)
    state = {}
    for name, t in tensors.items():
        if name.startswith('decoder.'):
            name = 'model.' + name
        if name == 'lm_head.weight':
            continue  # tied: checked below
        state[name] = t.to(dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f'{model_dir}: missing {missing}, unexpected {unexpected}')
    if 'lm_head.weight' in tensors:
        if not torch.equal(tensors['lm_head.weight'].to(dtype), state['model.decoder.embed_tokens.weight']):
            raise ValueError(f'{model_dir}: untied lm_head.weight is not supported (OPT ties it to embed_tokens)')
    return model.to(dtype)


def save_model(model: OptLM, out_dir: str, dtype: str = 'float16', skipdecode: dict | None = None) -> None:
    """config.json + model.safetensors in hub layout (tied head: no lm_head.weight)."""
    os.makedirs(out_dir, exist_ok=True)
    tdtype = {'float16': torch.float16, 'float32': torch.float32, 'bfloat16': torch.bfloat16}[dtype]
    tensors = {name: p.detach().to(tdtype) for name, p in model.state_dict().items()}
    save_safetensors(os.path.join(out_dir, 'model.safetensors'), tensors, {'format': 'pt'})
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
        json.dump(model.config.to_hf(dtype, skipdecode), f, indent=2)
        f.write('\n')


def pick_schedule(
    num_layers: int, target: float, decode_steps: int, tolerance: float = 0.03, min_span: int = 8
) -> dict:
    """A linear schedule (max = L, warm-up 1 when min >= 2, a gradual decay: span >= min_span) whose
    theoretical speedup over `decode_steps` decode forwards is nearest `target`: among those within
    `tolerance` (relative), the one with the highest floor `min`, then the nearest; else the nearest."""
    best = None
    for mn in range(1, num_layers + 1):
        for span in range(min(min_span, decode_steps), decode_steps + 1):
            s = {'kind': 'linear', 'max': num_layers, 'min': mn, 'warmup': 1 if mn >= 2 else 0, 'span': span}
            err = abs(theoretical_speedup(num_layers, s, decode_steps) / target - 1)
            key = (0, -mn, err) if err <= tolerance else (1, 0, err)
            if best is None or key < best[0]:
                best = (key, s)
    return best[1]
