"""Seq2seq reply model: build it from a base checkpoint, and suggest replies with it."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    EncoderDecoderModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.generation.stopping_criteria import (
    MaxTimeCriteria,
    StoppingCriteriaList,
)

from inference.replies.artifact import CONFIG_FILE, verify, write_json
from inference.replies.config import ArtifactConfig, ReplyTrainConfig
from inference.replies.data import build_source, parse_context
from inference.replies.errors import ArtifactError, SuggestionTimeout
from inference.replies.suggestions import Suggestion, dedupe
from inference.replies.text import tidy_wordpiece
from inference.runtime import choose_reply_device, limit_threads, quantize_for_cpu, quiet_transformers

MODEL_DIR = "model"
TOKENIZER_DIR = "tokenizer"
# A decoder with its own, smaller vocabulary: entry i is the tokenizer id of decoder id i.
DECODER_VOCAB_FILE = "decoder_vocab.json"


def base_architecture(base_model: str) -> str:
    """Return native-seq2seq for t5/bart-like bases, encoder-decoder for encoder-only ones."""
    config = AutoConfig.from_pretrained(base_model, local_files_only=True)
    return "native-seq2seq" if getattr(config, "is_encoder_decoder", False) else "encoder-decoder"


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    # Cut long contexts from the left: the newest words decide the reply.
    tokenizer.truncation_side = "left"
    return tokenizer


def build_model(
    base_model: str,
    architecture: str,
    config: ReplyTrainConfig,
    tokenizer: PreTrainedTokenizerBase,
) -> PreTrainedModel:
    """A trainable seq2seq network from the base checkpoint."""
    if architecture == "native-seq2seq":
        with quiet_transformers():
            return AutoModelForSeq2SeqLM.from_pretrained(base_model, local_files_only=True)
    # Warm-start both halves from the encoder (Rothe et al. 2020, "bert2bert"); the
    # decoder gains causal masking and fresh cross-attention. decoder_* kwargs shape it.
    decoder_kwargs: dict[str, Any] = {}
    if config.decoder_layers:
        decoder_kwargs["decoder_num_hidden_layers"] = config.decoder_layers
    with quiet_transformers():
        # The load report lists the fresh cross-attention weights: expected, not news.
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(
            base_model, base_model, local_files_only=True, **decoder_kwargs
        )
    if config.copy_cross_attention:
        for layer in model.decoder.bert.encoder.layer:
            layer.crossattention.load_state_dict(layer.attention.state_dict())
    # BERT has no start or end of sequence: [CLS] starts a reply, [SEP] ends it.
    for target in (model.config, model.generation_config):
        target.decoder_start_token_id = tokenizer.cls_token_id
        target.bos_token_id = tokenizer.cls_token_id
        target.eos_token_id = tokenizer.sep_token_id
        target.pad_token_id = tokenizer.pad_token_id
    return model


def restrict_decoder_vocab(
    model: EncoderDecoderModel, tokenizer: PreTrainedTokenizerBase, keep: Sequence[int]
) -> torch.Tensor:
    """Cut a warm-started decoder's input embeddings and output layer down to the
    tokenizer ids in ``keep`` (plus the special tokens), keeping their pretrained
    rows; decoder id i then stands for tokenizer id ``vocab[i]``. Returns ``vocab``."""
    specials = [tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id]
    vocab = torch.tensor(sorted({i for i in (*specials, *keep) if i is not None}), dtype=torch.long)
    decoder = model.decoder
    old_embeddings = decoder.get_input_embeddings()
    embeddings = torch.nn.Embedding(len(vocab), old_embeddings.embedding_dim, padding_idx=None)
    embeddings.weight.data.copy_(old_embeddings.weight.data[vocab])  # (new vocab, hidden)
    decoder.set_input_embeddings(embeddings)
    head = decoder.get_output_embeddings()  # Linear(hidden, vocab), tied to the embeddings
    bias = head.bias.data[vocab].clone() if head.bias is not None else None
    new_head = torch.nn.Linear(head.in_features, len(vocab), bias=bias is not None)
    new_head.weight = embeddings.weight
    if bias is not None:
        new_head.bias.data.copy_(bias)
    decoder.set_output_embeddings(new_head)  # ties the prediction head's bias too
    decoder.config.vocab_size = len(vocab)
    model.config.decoder.vocab_size = len(vocab)
    position = {int(t): i for i, t in enumerate(vocab)}
    for target in (model.config, model.generation_config):
        target.decoder_start_token_id = position[tokenizer.cls_token_id]
        target.bos_token_id = position[tokenizer.cls_token_id]
        target.eos_token_id = position[tokenizer.sep_token_id]
        target.pad_token_id = position[tokenizer.pad_token_id]
    return vocab


def is_new_weight(name: str) -> bool:
    """Weights a warm-started encoder-decoder adds to the pretrained encoder."""
    return "crossattention" in name or ".cls.predictions." in f".{name}"


def target_ids(
    tokenizer: PreTrainedTokenizerBase,
    replies: Sequence[str],
    architecture: str,
    max_len: int,
) -> list[list[int]]:
    """Label ids of each reply, ending with the end-of-sequence token."""
    encoded = tokenizer(list(replies), truncation=True, max_length=max_len + 1)["input_ids"]
    if architecture == "encoder-decoder":
        # The model prepends decoder_start ([CLS]) itself when shifting labels right.
        encoded = [ids[1:] if ids and ids[0] == tokenizer.cls_token_id else ids for ids in encoded]
    return [ids[:max_len] for ids in encoded]


class ReplySuggester:
    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: ArtifactConfig,
        device: torch.device,
        decoder_vocab: torch.Tensor | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.device = device
        # Decoder id -> tokenizer id, when the decoder has a vocabulary of its own.
        self.decoder_vocab = decoder_vocab

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        quantize: bool = False,
        threads: int | None = None,
        device: str | None = None,
    ) -> ReplySuggester:
        """Verify and load a seq2seq artifact. ``quantize`` applies dynamic int8 to Linear
        layers (CPU only): faster decoding for a small loss, see docs/benchmarks.md."""
        directory = Path(directory)
        config = verify(directory)
        if config.kind != "seq2seq":
            raise ArtifactError(f"{directory} holds a {config.kind} model, not a seq2seq model")
        limit_threads(threads)
        chosen = choose_reply_device(device)
        model_cls = EncoderDecoderModel if config.architecture == "encoder-decoder" else AutoModelForSeq2SeqLM
        with quiet_transformers():
            model = model_cls.from_pretrained(str(directory / MODEL_DIR), local_files_only=True)
        model.to(chosen)
        if quantize and chosen.type == "cpu":
            model = quantize_for_cpu(model)
        vocab_file = directory / DECODER_VOCAB_FILE
        decoder_vocab = None
        if vocab_file.exists():
            decoder_vocab = torch.tensor(json.loads(vocab_file.read_text()), dtype=torch.long)
            if len(decoder_vocab) != model.config.decoder.vocab_size:
                raise ArtifactError(
                    f"{vocab_file} lists {len(decoder_vocab)} word pieces; the decoder has "
                    f"{model.config.decoder.vocab_size}"
                )
        return cls(model, load_tokenizer(directory / TOKENIZER_DIR), config, chosen, decoder_vocab)

    def save(self, directory: Path) -> None:
        """Write into ``directory`` (the caller makes it atomic and seals it)."""
        write_json(directory / CONFIG_FILE, self.config.to_dict())
        with quiet_transformers():
            self.model.save_pretrained(directory / MODEL_DIR)
        self.tokenizer.save_pretrained(directory / TOKENIZER_DIR)
        if self.decoder_vocab is not None:
            write_json(directory / DECODER_VOCAB_FILE, self.decoder_vocab.tolist())

    def suggest(
        self,
        context: Sequence[dict[str, Any]],
        n: int = 3,
        timeout_s: float | None = None,
        num_beams: int | None = None,
        max_new_tokens: int | None = None,
    ) -> list[Suggestion]:
        """Up to ``n`` distinct replies, best first, from one beam search.

        Score: log-probability of the reply divided by its length (length_penalty=1).
        ``max_new_tokens`` defaults to the trained target length, so decoding is always
        bounded; with ``timeout_s`` a search that runs past it raises SuggestionTimeout
        rather than returning cut-off replies.
        """
        if n < 1:
            return []
        train = self.config.train
        source = build_source(
            parse_context(context),
            self.tokenizer,
            train.max_source_len,
            train.max_turns,
        )
        batch = self.tokenizer(
            [source],
            truncation=True,
            max_length=train.max_source_len,
            return_tensors="pt",
        )
        # One spare beam, so a duplicate among the beams still leaves n replies.
        beams = num_beams or n + 1
        stopping = StoppingCriteriaList([MaxTimeCriteria(timeout_s)]) if timeout_s else None
        started = time.monotonic()
        self.model.eval()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=batch["input_ids"].to(self.device),
                attention_mask=batch["attention_mask"].to(self.device),
                num_beams=beams,
                num_return_sequences=beams,
                max_new_tokens=max_new_tokens or train.max_target_len,
                length_penalty=1.0,
                early_stopping=beams > 1,
                use_cache=True,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                stopping_criteria=stopping,
            )
        if timeout_s and time.monotonic() - started >= timeout_s:
            raise SuggestionTimeout(f"reply generation took longer than {timeout_s:.3f} s")
        sequences = out.sequences.cpu()  # (beams, generated), decoder ids
        if self.decoder_vocab is not None:
            sequences = self.decoder_vocab[sequences]  # tokenizer ids
        texts = self.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        if self.config.architecture == "encoder-decoder":
            lowercased = bool(getattr(self.tokenizer, "do_lower_case", False))
            texts = [tidy_wordpiece(t, restore_case=lowercased) for t in texts]
        scores = self._scores(out, beams)
        return dedupe((Suggestion(t.strip(), round(s, 6)) for t, s in zip(texts, scores, strict=True)), n)

    def _scores(self, out: Any, beams: int) -> list[float]:
        """Log-probability per generated token of each returned sequence."""
        if beams > 1:
            return out.sequences_scores.tolist()
        # Greedy search reports no sequence score: average the chosen tokens' log-probs.
        steps = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)  # (n, generated)
        generated = out.sequences[:, -steps.shape[1] :]  # (n, generated)
        keep = generated != self.model.generation_config.pad_token_id
        return ((steps * keep).sum(1) / keep.sum(1).clamp(min=1)).tolist()
