"""LEAF's character LSTM for Shakespeare (Caldas et al. 2018; McMahan et al. 2017).

LEAF ``models/shakespeare/stacked_lstm.py``: an 8-dimensional embedding of the 80 characters, two stacked LSTM
layers of 256 units, and a dense layer of 80 logits on the last step's output (next-character prediction from
80 characters). McMahan et al. (2017) used this architecture for Shakespeare too.

Parameters with 80 characters: 819,920 in PyTorch. PyTorch's LSTM keeps two bias vectors per layer (``b_ih`` and
``b_hh``, 4 x 256 each) where TensorFlow's ``BasicLSTMCell`` (LEAF) keeps one, so LEAF's TensorFlow model has
2 x 1,024 = 2,048 fewer: 817,872. The two biases only ever appear summed, so the functions the models can
represent are the same. Breakdown: embedding 80 x 8 = 640; LSTM layer 1: 4 x 256 x (8 + 256) + 2 x 1,024 = 272,384;
layer 2: 4 x 256 x (256 + 256) + 2 x 1,024 = 526,336; dense 256 x 80 + 80 = 20,560.

``all_positions=true`` returns the logits of every position, ``(N, T, classes)``, for per-position next-character
targets (``dataset.targets=sequence`` with ``task=sequence``, as TFF's Shakespeare task and Reddi et al. 2021 train).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from fedbench.errors import ConfigError, require


class CharLSTM(nn.Module):
    """Embedding -> stacked LSTM -> linear, on the last position or on all of them."""

    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int, hidden_size: int, num_layers: int,
                 all_positions: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)
        self.all_positions = all_positions

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(self.embedding(x.long()))
        return self.head(out if self.all_positions else out[:, -1])


def _positive(value: int, field: str) -> None:
    require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, field, "an integer >= 1", value)


def char_lstm(input_shape: Sequence[int], num_classes: int, vocab_size: int | None = None, embedding_dim: int = 8,
              hidden_size: int = 256, num_layers: int = 2, all_positions: bool = False) -> nn.Module:
    """LEAF's Shakespeare model.

    Args:
        input_shape: ``(sequence length,)`` of character ids (LEAF: 80).
        num_classes: output logits (next-character prediction: the vocabulary, 80).
        vocab_size: embedding rows; null = ``num_classes`` (LEAF); 81 for inputs left-padded with id 80.
        embedding_dim, hidden_size, num_layers: LEAF: 8, 256, 2.
        all_positions: logits at every position instead of the last one only.
    """
    if len(input_shape) != 1:
        raise ConfigError(f"model: char_lstm needs sequences of token ids, shape (length,); this dataset's inputs have "
                          f"shape {tuple(input_shape)} (use dataset=shakespeare or dataset=hf with dataset.text_key)")
    for value, field in ((vocab_size or num_classes, "model.vocab_size"), (embedding_dim, "model.embedding_dim"),
                         (hidden_size, "model.hidden_size"), (num_layers, "model.num_layers")):
        _positive(value, field)
    require(isinstance(all_positions, bool), "model.all_positions", "true or false", all_positions)
    return CharLSTM(vocab_size or num_classes, num_classes, embedding_dim, hidden_size, num_layers, all_positions)
