"""A small encoder-decoder Transformer (Vaswani et al. 2017) built from torch.nn, and its parameter counts.

The paper scales encoder and decoder DEPTH of a Transformer NMT model around a base shape and counts
encoder and decoder parameters separately (N_e, N_d in the law). Here: ``nn.TransformerEncoderLayer`` and
``nn.TransformerDecoderLayer`` with nn.Transformer's defaults (post-LayerNorm as in Vaswani et al. 2017,
a final LayerNorm on each stack, Xavier-uniform weight matrices), learned positional embeddings,
separate source and target embeddings, an untied output projection, no dropout (the data stream is
unlimited, nothing is seen twice). Pre-LN variants were piloted too (README); none of them removed
the head start of shallow stacks at a fixed small budget.

N_e and N_d are NON-EMBEDDING counts: the parameters of the encoder (decoder) layers and of the
encoder's (decoder's) final LayerNorm. Token and position embeddings and the output projection are
shared by every model of a ladder and left out, as in Kaplan et al. (2020) and the research notes
(non-embedding encoder and decoder parameters). With d_model 64, FFN 256 an encoder layer has
4*64*64 + 4*64 (self-attention) + 2*64*256 + 256 + 64 (FFN) + 2*2*64 (two LayerNorms) = 49,984
parameters, a decoder layer adds cross-attention and a third LayerNorm: 66,752.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nmt_scaling.task import PAD


@dataclass(frozen=True)
class ModelShape:
    """enc_layers, dec_layers: depths (the scaled axes); d_model, heads, ffn: the shared layer shape;
    max_len: the longest source/target sequence (positions); src_vocab, tgt_vocab: vocabulary sizes;
    dropout: nn.Transformer's dropout inside every layer (0 at smoke/cpu scale: unlimited data);
    norm_first: pre-LN layers (only ``--scale full`` sets it: deep post-LN stacks diverge there)."""

    enc_layers: int
    dec_layers: int
    src_vocab: int
    tgt_vocab: int
    d_model: int = 64
    heads: int = 4
    enc_ffn: int = 256
    dec_ffn: int = 256
    max_len: int = 16
    dropout: float = 0.0
    norm_first: bool = False

    def __post_init__(self) -> None:
        if self.enc_layers < 1 or self.dec_layers < 1:
            raise ValueError(f"need >= 1 encoder and decoder layer, got {self.enc_layers}, {self.dec_layers}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by heads={self.heads}")


class Seq2Seq(nn.Module):
    """Encoder-decoder Transformer; ``forward(src, dec_in)`` returns target logits (B, T, V_tgt)."""

    def __init__(self, shape: ModelShape):
        super().__init__()
        self.shape = shape
        d = shape.d_model
        self.src_emb = nn.Embedding(shape.src_vocab, d, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(shape.tgt_vocab, d, padding_idx=PAD)
        self.src_pos = nn.Embedding(shape.max_len, d)
        self.tgt_pos = nn.Embedding(shape.max_len, d)
        enc_layer = nn.TransformerEncoderLayer(
            d,
            shape.heads,
            shape.enc_ffn,
            dropout=shape.dropout,
            batch_first=True,
            norm_first=shape.norm_first,
        )
        dec_layer = nn.TransformerDecoderLayer(
            d,
            shape.heads,
            shape.dec_ffn,
            dropout=shape.dropout,
            batch_first=True,
            norm_first=shape.norm_first,
        )
        # final LayerNorms: with pre-LN the last layer's output is not normalised otherwise
        self.encoder = nn.TransformerEncoder(
            enc_layer, shape.enc_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        self.decoder = nn.TransformerDecoder(dec_layer, shape.dec_layers, norm=nn.LayerNorm(d))
        self.out = nn.Linear(d, shape.tgt_vocab)
        self._init_weights()

    def _init_weights(self) -> None:
        """nn.Transformer's own initialisation: Xavier-uniform for every weight matrix of the encoder and
        decoder (``nn.Transformer._reset_parameters``), PyTorch defaults for biases and LayerNorms;
        embeddings N(0, 0.02) (PAD row zero) and a zero output bias."""
        for stack in (self.encoder, self.decoder):
            for p in stack.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        for emb in (self.src_emb, self.tgt_emb, self.src_pos, self.tgt_pos):
            nn.init.normal_(emb.weight, std=0.02)
        nn.init.zeros_(self.out.bias)
        with torch.no_grad():
            self.src_emb.weight[PAD].zero_()
            self.tgt_emb.weight[PAD].zero_()

    def n_encoder(self) -> int:
        """N_e: non-embedding encoder parameters (layers + final norm)."""
        return sum(p.numel() for p in self.encoder.parameters())

    def n_decoder(self) -> int:
        """N_d: non-embedding decoder parameters (layers + final norm)."""
        return sum(p.numel() for p in self.decoder.parameters())

    def forward(self, src: torch.Tensor, dec_in: torch.Tensor) -> torch.Tensor:
        ls, lt = src.shape[1], dec_in.shape[1]
        if max(ls, lt) > self.shape.max_len:
            raise ValueError(f"sequence length {max(ls, lt)} exceeds max_len={self.shape.max_len}")
        src_pad = src == PAD
        tgt_pad = dec_in == PAD
        x = self.src_emb(src) + self.src_pos.weight[:ls]
        y = self.tgt_emb(dec_in) + self.tgt_pos.weight[:lt]
        # boolean masks throughout (True = not attended), the same type as the key-padding masks
        causal = torch.triu(torch.ones(lt, lt, dtype=torch.bool, device=src.device), diagonal=1)
        mem = self.encoder(x, src_key_padding_mask=src_pad)
        h = self.decoder(
            y, mem, tgt_mask=causal, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad
        )
        return self.out(h)


def decoder_input(tgt: torch.Tensor) -> torch.Tensor:
    """Teacher forcing: BOS followed by the target shifted right by one (the last token dropped)."""
    from nmt_scaling.task import BOS

    bos = torch.full_like(tgt[:, :1], BOS)
    return torch.cat([bos, tgt[:, :-1]], dim=1)


def seeded_model(shape: ModelShape, seed: int) -> Seq2Seq:
    """The model for ``shape`` initialised from ``seed`` whatever ran before (own generator state)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return Seq2Seq(shape)
    finally:
        torch.random.set_rng_state(state)
