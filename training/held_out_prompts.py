"""Writes test/kjv-held-out.json: the opening words of 50 verses spread evenly over the held-out chapters
(corpus.split_verses), the prompts the runtime's exact-mode tests feed the KJV models."""
import json
import os

from corpus import HERE, load_verses, split_verses

COUNT, WORDS = 50, 6


def main() -> None:
    _, held = split_verses(load_verses())
    step = len(held) // COUNT
    prompts = [' '.join(held[i * step].split()[:WORDS]) for i in range(COUNT)]
    out = os.path.join(HERE, '..', 'test', 'kjv-held-out.json')
    with open(out, 'w') as f:
        json.dump({'source': 'training/held_out_prompts.py', 'prompts': prompts}, f, indent=1)
        f.write('\n')
    print(f'wrote {len(prompts)} prompts to {os.path.normpath(out)}')


if __name__ == '__main__':
    main()
