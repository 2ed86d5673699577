"""A tiny causal LM built locally (no download): for tests, benchmarks and CPU smoke runs.

A byte-level BPE tokenizer is trained with ``tokenizers`` on the given texts, a small
``LlamaConfig`` model is initialised from a seed, and both are written with
``save_pretrained`` so TRL loads them from a path like any hub model. The tokenizer carries
a minimal chat template, so the chat-template path of DPO runs too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>"]


def build_tiny_causal_lm(directory: str | Path, texts: Iterable[str], *, vocab_size: int = 512,
                         hidden_size: int = 64, layers: int = 2, heads: int = 4, max_positions: int = 512,
                         chat_template: bool = True, seed: int = 0) -> Path:
    """Train a tokenizer on ``texts``, build a small Llama, save both to ``directory``.

    Parameters
    ----------
    directory : path
    texts : iterable of str
        Tokenizer training corpus.
    vocab_size, hidden_size, layers, heads, max_positions : int
        Size of the model; defaults give about 0.1M parameters.
    chat_template : bool, default True
        Give the tokenizer a minimal chat template.
    seed : int, default 0

    Returns
    -------
    Path
        ``directory``, loadable with ``AutoModelForCausalLM`` / ``AutoTokenizer``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", additional_special_tokens=SPECIALS[4:])
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=max_positions, pad_token_id=fast.pad_token_id,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory
