"""Writes demo-comparisons.jsonl: 24 two-digit additions, one right and one subtly wrong answer each.

    python3 preference-data/make_demo_comparisons.py > preference-data/demo-comparisons.jsonl
"""
import json
import random

random.seed(7)
for _ in range(24):
    a, b = random.randint(10, 99), random.randint(10, 99)
    right, wrong = str(a + b), str(a + b + random.choice([-10, -1, 1, 10]))
    responses = [{"text": right, "model": "demo", "version": "v0"}, {"text": wrong, "model": "demo", "version": "v0"}]
    if random.random() < 0.5:
        responses.reverse()
    print(json.dumps({"prompt": [{"role": "system", "content": "Answer with the number only."},
                                 {"role": "user", "content": f"What is {a} + {b}?"}],
                      "responses": responses, "source": "demo"}))
