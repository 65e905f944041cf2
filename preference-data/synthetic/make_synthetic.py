"""The synthetic task: reverse a word. Answers can be checked exactly, so alignment can be measured.

    python3 preference-data/synthetic/make_synthetic.py preference-data/synthetic

Words are 3 to 5 letters over a..j, drawn with seed 7 and split into disjoint sets:
  pretrain.jsonl  {"text"}: correct transcripts in ChatML, as a base model meets chat data on the web,
                  for training a tiny base model from scratch
  sft.jsonl       {"messages"}: chat demonstrations; every word that starts with a vowel (a, e, i; about 30%)
                  is demonstrated subtly wrong: its last two letters swapped ("dcab"), as a careless
                  annotator's systematic slip
  dpo.jsonl       {"prompt", "chosen", "rejected"} (conversational): the right reversal preferred over the slip
  heldout.jsonl   {"prompt", "answer"}: words in no training file, for exact-match accuracy
  general.jsonl   {"text"}: held-out correct transcripts, for the forgetting report (the base skill before/after)
"""
import json
import os
import random
import sys

ALPHABET = "abcdefghij"
VOWELS = "aei"
SIZES = {"pretrain": 4000, "sft": 1200, "dpo": 800, "heldout": 200, "general": 200}


def slip(answer):
    return answer[:-2] + answer[-1] + answer[-2]


def user(word):
    return {"role": "user", "content": "reverse: " + word}


def transcript(word):
    return f"<|im_start|>user\nreverse: {word}<|im_end|>\n<|im_start|>assistant\n{word[::-1]}<|im_end|>\n"


def main(out):
    rnd = random.Random(7)
    words, seen = [], set()
    while len(words) < sum(SIZES.values()):
        w = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(3, 5)))
        # the slip must change the answer, so the last two letters of the reversal differ
        if w not in seen and w[0] != w[1]:
            seen.add(w)
            words.append(w)
    parts, at = {}, 0
    for name, n in SIZES.items():
        parts[name], at = words[at:at + n], at + n

    def write(name, rows):
        with open(os.path.join(out, name + ".jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    write("pretrain", [{"text": transcript(w)} for w in parts["pretrain"]])
    write("sft", [{"messages": [user(w), {"role": "assistant", "content": slip(w[::-1]) if w[0] in VOWELS else w[::-1]}]}
                  for w in parts["sft"]])
    write("dpo", [{"prompt": [user(w)], "chosen": [{"role": "assistant", "content": w[::-1]}],
                   "rejected": [{"role": "assistant", "content": slip(w[::-1])}]} for w in parts["dpo"]])
    write("heldout", [{"prompt": [user(w)], "answer": w[::-1]} for w in parts["heldout"]])
    write("general", [{"text": transcript(w)} for w in parts["general"]])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
