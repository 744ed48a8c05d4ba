"""CI smoke test for the training recipe (seconds, CPU, no corpus package needed):

  python3 -m unittest training/smoke_test.py      or      python3 training/smoke_test.py

Checks the schedule arithmetic against the runtime's rules, that training steps (full depth and with
SkipDecode layer masks) lower the loss, the safetensors/config save-load round trip, that the masked
full-sequence forward (training) equals KV-cache decoding (what the runtime does), left padding, the
tokenizer, the fine-tuning path for an existing Hugging Face layout OPT checkpoint, train-only dropout,
and the sampling-settings harness (sampler limits, repetition measures).
"""
from __future__ import annotations

import json
import os
import random
import struct
import sys
import tempfile
import unittest

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bpe import ByteBPE, learn_merges, tokenizer_json  # noqa: E402
from corpus import TokenStream  # noqa: E402
from opt import (  # noqa: E402
    OptConfig,
    OptLM,
    decode_layers,
    linear_layer_count,
    load_model,
    pick_schedule,
    run_masks,
    save_model,
    save_safetensors,
    schedule_table,
    theoretical_speedup,
)
import train  # noqa: E402
from sampling_quality import distinct2, rep4, sampler  # noqa: E402

TEXT = [
    'In the beginning God created the heaven and the earth.',
    'And the earth was without form, and void; and darkness was upon the face of the deep.',
    'And God said, Let there be light: and there was light.',
    'And God saw the light, that it was good: and God divided the light from the darkness.',
    "It's 12 o'clock; café ümlaut naïve -- don't worry!",
] * 4

torch.set_num_threads(2)


def tiny(layers=3, **kw) -> OptLM:
    torch.manual_seed(0)
    c = OptConfig(
        vocab_size=kw.pop('vocab_size', 300),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        ffn_dim=64,
        max_position_embeddings=48,
        **kw,
    )
    return OptLM(c)


class Schedule(unittest.TestCase):
    def test_worked_example(self):
        # docs/SKIPDECODE.md: L = 12, max 10, min 3, warmup 2, span 16.
        s = {'kind': 'linear', 'max': 10, 'min': 3, 'warmup': 2, 'span': 16}
        self.assertEqual(
            [linear_layer_count(s, k) for k in range(18)], [10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 3]
        )
        self.assertEqual(decode_layers(12, s, 5), [0, 1, 6, 7, 8, 9, 10, 11])

    def test_exact_halves_round_up(self):
        # Float64 gives 9 here; the runtime's exact rule gives 10.
        self.assertEqual(linear_layer_count({'max': 20, 'min': 1, 'span': 39}, 21), 10)

    def test_layer_sets_only_shrink_and_masks(self):
        s = pick_schedule(6, 2.0, 40)
        sets = [set(decode_layers(6, s, k)) for k in range(50)]
        self.assertTrue(all(b <= a for a, b in zip(sets, sets[1:])))
        self.assertAlmostEqual(theoretical_speedup(6, s, 40), 2.0, delta=0.1)
        tables = torch.stack([schedule_table(6, {'kind': 'full'}, 16), schedule_table(6, s, 16)])
        runs = run_masks(tables, torch.tensor([0, 1]), torch.tensor([3, 5]), 12)
        self.assertTrue(runs[:, 0].all())  # full-depth sequence
        self.assertTrue(runs[:, 1, :5].all())  # prompt positions
        for k in range(7):
            self.assertEqual([l for l in range(6) if runs[l, 1, 5 + k]], decode_layers(6, s, k))


class Training(unittest.TestCase):
    def setUp(self):
        merges = learn_merges(TEXT, 40)
        self.tj = tokenizer_json(merges)
        self.tok = ByteBPE(self.tj)
        self.stream = TokenStream(self.tok, TEXT)

    def steps(self, model, n, runs_fn=None):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        rng = random.Random(0)
        losses = []
        for _ in range(n):
            ids = self.stream.batch(rng, 8, 32)
            logits = model(ids, runs_fn(ids, rng) if runs_fn else None)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    def test_loss_decreases_full_depth_then_with_skipping(self):
        model = tiny(vocab_size=self.tok.size)
        losses = self.steps(model, 25)
        self.assertLess(sum(losses[-5:]) / 5, 0.7 * sum(losses[:5]) / 5)
        s = {'kind': 'linear', 'max': 3, 'min': 1, 'warmup': 0, 'span': 4}
        tables = torch.stack([schedule_table(3, {'kind': 'full'}, 32), schedule_table(3, s, 32)])

        def runs(ids, rng):
            b = ids.shape[0]
            return run_masks(tables, torch.ones(b, dtype=torch.long), torch.randint(2, 10, (b,)), ids.shape[1])

        ids = self.stream.batch(random.Random(1), 8, 32)
        before = F.cross_entropy(model(ids, runs(ids, None))[:, :-1].reshape(-1, self.tok.size), ids[:, 1:].reshape(-1))
        self.steps(model, 15, runs)
        after = F.cross_entropy(model(ids, runs(ids, None))[:, :-1].reshape(-1, self.tok.size), ids[:, 1:].reshape(-1))
        self.assertLess(after.item(), before.item())

    def test_tokenizer_round_trip(self):
        for t in TEXT[:5] + ['tabs\there  😀\n\n']:
            ids = self.tok.encode(t, bos=True)
            self.assertEqual(ids[0], 2)
            self.assertEqual(self.tok.decode(ids), t)
        self.assertLess(len(self.tok.encode(TEXT[0])), len(TEXT[0].encode()))  # merges apply
        self.assertEqual(self.tj['model']['vocab']['</s>'], 2)
        self.assertEqual(len(self.tj['model']['vocab']), 260 + len(self.tj['model']['merges']))


class Checkpoints(unittest.TestCase):
    def test_save_load_round_trip(self):
        model = tiny().eval()
        ids = torch.randint(3, 300, (2, 20))
        with tempfile.TemporaryDirectory() as d:
            save_model(model, d, 'float32', {'fine_tuned': True, 'schedule': 'linear:max=3,min=1,warmup=0,span=4'})
            with open(os.path.join(d, 'model.safetensors'), 'rb') as f:
                raw = f.read()
            (n,) = struct.unpack('<Q', raw[:8])
            header = json.loads(raw[8 : 8 + n])
            self.assertEqual(n % 8, 0)
            self.assertIn('model.decoder.layers.2.self_attn.q_proj.weight', header)
            self.assertNotIn('lm_head.weight', header)
            self.assertEqual(header['model.decoder.embed_positions.weight']['shape'], [50, 32])
            with open(os.path.join(d, 'config.json')) as f:
                config = json.load(f)
            self.assertEqual((config['model_type'], config['do_layer_norm_before']), ('opt', True))
            self.assertEqual(config['skipdecode']['fine_tuned'], True)
            again = load_model(d).eval()
            self.assertTrue(torch.equal(model(ids), again(ids)))
            save_model(model, d, 'float16')
            with open(os.path.join(d, 'model.safetensors'), 'rb') as f:
                raw = f.read()
            header = json.loads(raw[8 : 8 + struct.unpack('<Q', raw[:8])[0]])
            self.assertEqual(header['model.decoder.final_layer_norm.bias']['dtype'], 'F16')
            half = load_model(d).eval()
            self.assertLess((model(ids) - half(ids)).abs().max().item(), 2e-2)

    def test_hf_layouts_load(self):
        """Bare decoder. prefix, a saved copy of the tied head, bf16, post-LN with project_in/out."""
        model = tiny(do_layer_norm_before=False, word_embed_proj_dim=16).eval()
        ids = torch.randint(3, 300, (1, 10))
        with tempfile.TemporaryDirectory() as d:
            tensors = {k.removeprefix('model.'): v.to(torch.bfloat16) for k, v in model.state_dict().items()}
            tensors['lm_head.weight'] = tensors['decoder.embed_tokens.weight']
            save_safetensors(os.path.join(d, 'model.safetensors'), tensors)
            with open(os.path.join(d, 'config.json'), 'w') as f:
                json.dump(model.config.to_hf('bfloat16'), f)
            again = load_model(d).eval()
            self.assertLess((model(ids) - again(ids)).abs().max().item(), 0.1)
            self.assertIsNotNone(again.model.decoder.project_in)

    def test_kv_cache_decoding_equals_masked_forward(self):
        model = tiny(layers=4).double().eval()
        s = {'kind': 'linear', 'max': 4, 'min': 2, 'warmup': 1, 'span': 4}
        prompts = torch.randint(3, 300, (2, 6))
        tokens, logits = model.generate(prompts, 8, s, return_logits=True)
        seq = torch.cat([prompts, tokens[:, :-1]], dim=1)
        runs = run_masks(schedule_table(4, s, 16)[None], torch.zeros(2, dtype=torch.long), torch.tensor([6, 6]), 13)
        full = model(seq, runs)[:, 5:]
        self.assertLess((full.transpose(0, 1) - logits).abs().max().item(), 1e-9)
        # And a skipped layer changes the result (the masks do something).
        self.assertGreater((model(seq)[:, 7:] - full[:, 2:]).abs().max().item(), 1e-3)

    def test_left_padding(self):
        model = tiny().double().eval()
        ids = torch.randint(3, 300, (1, 7))
        padded = torch.cat([torch.ones(1, 3, dtype=torch.long), ids], dim=1)
        mask = torch.tensor([[0, 0, 0] + [1] * 7])
        self.assertLess((model(ids) - model(padded, None, mask)[:, 3:]).abs().max().item(), 1e-9)

    def hub_checkpoint(self, d):
        """A tiny sharded hub-layout checkpoint (bare prefix) and a text corpus under d: (model, init, text)."""
        tj = tokenizer_json(learn_merges(TEXT, 30))
        model = tiny(layers=4, vocab_size=ByteBPE(tj).size)
        init = os.path.join(d, 'init')
        os.makedirs(init)
        state = {k.removeprefix('model.'): v for k, v in model.state_dict().items()}
        names = sorted(state)
        shards = {'model-00001-of-00002.safetensors': names[::2], 'model-00002-of-00002.safetensors': names[1::2]}
        for file, part in shards.items():
            save_safetensors(os.path.join(init, file), {n: state[n] for n in part})
        index = {'weight_map': {n: f for f, part in shards.items() for n in part}}
        with open(os.path.join(init, 'model.safetensors.index.json'), 'w') as f:
            json.dump(index, f)
        with open(os.path.join(init, 'config.json'), 'w') as f:
            json.dump(model.config.to_hf('float32'), f)
        with open(os.path.join(init, 'tokenizer.json'), 'w') as f:
            json.dump(tj, f)
        text = os.path.join(d, 'corpus.txt')
        with open(text, 'w') as f:
            f.write('\n'.join(TEXT * 3) + '\n')
        return model, init, text

    def finetune_args(self, init, out, text, *extra):
        return ['finetune', '--init', init, '--out', out, '--text', text, '--steps', '4', '--batch', '4',
                '--seq', '32', '--max-prompt', '16', '--log-every', '2', '--threads', '2', *extra]

    def test_distill_loss(self):
        logits = torch.randn(2, 5, 11)
        self.assertLess(train.distill_loss(logits, logits.clone(), 0.5, 2.0).item(), 1e-6)
        self.assertGreater(train.distill_loss(logits, torch.randn(2, 5, 11), 0.5, 1.0).item(), 1e-3)

    def test_resume_continues_a_stopped_run(self):
        """A run stopped after its step-2 checkpoint and resumed ends with the weights of an unbroken run
        (self-distillation and dropout on, so those paths and the saved random state are exercised too)."""
        with tempfile.TemporaryDirectory() as d:
            _, init, text = self.hub_checkpoint(d)
            whole, broken = os.path.join(d, 'whole'), os.path.join(d, 'broken')
            opts = ('--distill', '0.5', '--dropout', '0.1', '--checkpoint-minutes', '0')
            train.main(self.finetune_args(init, whole, text, *opts))
            done = train.Budget.done
            train.Budget.done = lambda self, step: step >= 2  # the run is killed after step 2
            try:
                train.main(self.finetune_args(init, broken, text, *opts))
            finally:
                train.Budget.done = done
            train.main(self.finetune_args(init, broken, text, *opts, '--resume'))
            a, b = load_model(whole).state_dict(), load_model(broken).state_dict()
            for name in a:
                self.assertLess((a[name] - b[name]).abs().max().item(), 1e-6, name)
            with open(os.path.join(broken, 'train_log.json')) as f:
                self.assertEqual(json.load(f)['steps'], 4)

    def test_finetune_an_hf_checkpoint(self):
        """train.py finetune on a hub-layout checkpoint (bare prefix, sharded): trains, saves, reloads."""
        with tempfile.TemporaryDirectory() as d:
            model, init, text = self.hub_checkpoint(d)
            out, export = os.path.join(d, 'out'), os.path.join(d, 'export')
            train.main(self.finetune_args(init, out, text, '--export', export))
            tuned = load_model(export)
            with open(os.path.join(export, 'config.json')) as f:
                config = json.load(f)
            self.assertTrue(config['skipdecode']['fine_tuned'])
            self.assertEqual(config['torch_dtype'], 'float16')
            self.assertTrue(os.path.exists(os.path.join(export, 'tokenizer.json')))
            before = model.state_dict()['model.decoder.layers.0.fc1.weight']
            after = tuned.state_dict()['model.decoder.layers.0.fc1.weight']
            self.assertGreater((before - after).abs().max().item(), 1e-4)  # it trained


class Dropout(unittest.TestCase):
    def test_only_in_training(self):
        """--dropout changes training forwards only: in eval mode the model is the runtime's forward."""
        model = tiny()
        ids = torch.randint(0, 300, (2, 12))
        plain = model.eval()(ids)
        for layer in model.model.decoder.layers:
            layer.dropout = 0.5
        self.assertTrue(torch.equal(model.eval()(ids), plain))
        self.assertGreater((model.train()(ids) - plain).abs().max().item(), 1e-3)


class Sampling(unittest.TestCase):
    def test_sampler_limits(self):
        """Greedy is the penalised argmax; top-k 1 and a tiny top-p leave only the best token."""
        gen = torch.Generator().manual_seed(0)
        logits = torch.tensor([[2.0, 3.0, -1.0, 2.9], [0.45, -0.2, 0.4, 0.1]])
        seen = torch.tensor([[1, 1], [0, 0]])  # penalised: 3.0 / 1.2 = 2.5 < 2.9, 0.45 / 1.2 < 0.4
        self.assertEqual(sampler(0.0, 1.0, 0, 1.0, gen)(logits, seen).tolist(), [1, 0])
        self.assertEqual(sampler(0.0, 1.0, 0, 1.2, gen)(logits, seen).tolist(), [3, 2])
        for _ in range(20):
            self.assertEqual(sampler(1.0, 1.0, 1, 1.0, gen)(logits, seen).tolist(), [1, 0])
            self.assertEqual(sampler(1.0, 1e-3, 0, 1.0, gen)(logits, seen).tolist(), [1, 0])
        draws = [sampler(1.0, 1.0, 0, 1.0, gen)(logits, seen)[0].item() for _ in range(200)]
        self.assertLessEqual({0, 1, 3}, set(draws))  # p = 0.15, 0.42, 0.38: a real draw, not an argmax

    def test_repetition_measures(self):
        self.assertEqual(rep4('a b c d a b c d'.split()), 1 / 5)
        self.assertEqual(rep4('a b c d e f'.split()), 0.0)
        self.assertEqual(distinct2(['a b a b'.split()]), 2 / 3)


if __name__ == '__main__':
    unittest.main()
