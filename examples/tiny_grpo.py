"""A tiny but real TRL GRPO run on CPU, with nothing downloaded.

A character-level tokenizer and a 2-layer Llama are built in code; the prompts live
in memory; the reward favours completions with many vowels. The script is an
ordinary TRL trainer: it takes GRPOConfig's own arguments (``--output_dir``,
``--max_steps``, ``--save_steps``, ``--resume_from_checkpoint`` ...) and knows
nothing of train-resume.

    python examples/tiny_grpo.py --output_dir runs/tiny --max_steps 6

One knob for the demo and the end-to-end tests (examples/demo.py run_segment):
with TINY_GRPO_STEP_GATE=DIR the main process stops at the end of every optimizer
step (trained, not yet logged or saved: checkpoint-N of an earlier step is
complete) and waits there until the caller lets it go on or kills it, so that a
kill lands at a step the caller chose, whatever the machine's load.
"""

import os
import time

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import (  # noqa: E402
    HfArgumentParser,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    TrainerCallback,
)
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,?!"
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
PROMPTS = [
    "the cat",
    "a dog ran",
    "hello",
    "what is",
    "once upon",
    "tiny model",
    "grpo on cpu",
    "resume me",
]


def build_tokenizer():
    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(ALPHABET))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )


def build_model(tokenizer, seed):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def vowel_reward(completions, **kwargs):
    return [sum(ch in "aeiou" for ch in text) / max(len(text), 1) for text in completions]


class StepGate(TrainerCallback):
    """TINY_GRPO_STEP_GATE=DIR: at the end of each optimizer step the main process
    writes the step to DIR/at and waits until DIR/go holds that step (go on), or
    until it is killed. Nobody answering for GATE_TIMEOUT seconds ends the run."""

    GATE_TIMEOUT = 900

    def __init__(self, folder):
        self.folder = folder

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        tmp, at = os.path.join(self.folder, ".at"), os.path.join(self.folder, "at")
        with open(tmp, "w") as f:
            f.write(f"{state.global_step}\n")
        os.replace(tmp, at)
        deadline = time.monotonic() + self.GATE_TIMEOUT
        while _read(os.path.join(self.folder, "go")) != f"{state.global_step}\n":
            if time.monotonic() > deadline:
                raise SystemExit(f"tiny_grpo: nobody answered the step gate in {self.folder}")
            time.sleep(0.002)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def main(argv=None):
    parser = HfArgumentParser(GRPOConfig)
    parser.set_defaults(
        output_dir="runs/tiny_grpo",
        max_steps=6,
        save_steps=2,
        logging_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-3,
        report_to=["wandb"],
        use_cpu=True,
        bf16=False,
        seed=0,
        run_name="tiny-grpo",
    )
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, args.seed)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=vowel_reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
        processing_class=tokenizer,
        callbacks=[StepGate(gate)] if (gate := os.environ.get("TINY_GRPO_STEP_GATE")) else None,
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)


if __name__ == "__main__":
    main()
