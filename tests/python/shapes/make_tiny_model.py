"""Save the tiny Llama and its character tokenizer (examples/tiny_grpo.py) with
save_pretrained, and a local prompt dataset, for TRL's own grpo script:

    python make_tiny_model.py DIR     # writes DIR/model/ and DIR/data/train.jsonl
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))

from tiny_grpo import PROMPTS, build_model, build_tokenizer  # noqa: E402


def main():
    out = Path(sys.argv[1])
    tokenizer = build_tokenizer()
    build_model(tokenizer, 0).save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    (out / "data").mkdir(parents=True, exist_ok=True)
    with open(out / "data" / "train.jsonl", "w") as f:
        for prompt in PROMPTS:
            f.write(json.dumps({"prompt": prompt}) + "\n")


if __name__ == "__main__":
    main()
