"""A tiny causal LM built locally (no hub): a BPE tokenizer trained with `tokenizers`
and a 2-layer Llama with random weights, saved with ``save_pretrained``."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "The cat sat on the mat and looked at the garden.",
    "Quarterly tax filings are due at the end of the month.",
    "Write a short poem about the sea, the wind and the night.",
    "def add(a, b): return a + b  # a tiny Python function",
    "Hawaii has beaches, volcanoes, and a rich cultural history.",
    "Photosynthesis turns light, water and carbon dioxide into sugar.",
] * 20


def build_tiny_causal_lm(folder: Path, *, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=fast.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
