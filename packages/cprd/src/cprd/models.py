"""The two model families: a dual encoder (the student) and a cross-encoder (the teacher).

Both read the same inputs: 3 x S x S images and fixed-length word-id captions (0 = padding).

* ``DualEncoder``: a small CNN whose 4x4 feature map is *flattened* (global pooling would throw away
  where things are, and the captions are about where things are) and an order-aware text
  transformer (word + position embeddings, one encoder layer, mean over words); both projected to
  ``dim`` and L2-normalised. Its score is the cosine similarity (the paper's dual encoders: CLIP /
  ALBEF-ITC style, Sec. 3).
* ``CrossEncoder``: ALBEF-style. Unimodal towers like the student's (trained with ITC), then a
  fusion transformer over [CLS] + image patch tokens (the CNN's 4x4 = 16 locations) + word tokens
  and an ITM head giving one match logit per (image, caption) pair (the paper's cross-encoders are
  ALBEF / BLIP ITM heads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the teacher cache key (``cprd.experiment.teacher_code``)"""


class ConvStem(nn.Module):
    """3 x S x S -> C x 4 x 4: three conv-BN-ReLU blocks (the first two with stride 2), then adaptive pooling."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels
        # strided first two convs: most of the cost of a conv stem is at full resolution
        self.net = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1), nn.BatchNorm2d(c // 2), nn.ReLU(),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        )  # fmt: skip
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TextTransformer(nn.Module):
    """Word + position embeddings and ``layers`` pre-norm encoder layers; padding masked."""

    def __init__(self, vocab_size: int, max_len: int, width: int, layers: int = 1, heads: int = 4) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, width, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(max_len, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = tokens == 0
        h = self.enc(self.tok(tokens) + self.pos[: tokens.shape[1]], src_key_padding_mask=pad)
        return h, pad


class DualEncoder(nn.Module):
    """Student: separate image and text towers; ``encode_*`` return unit vectors of size ``dim``."""

    def __init__(
        self, vocab_size: int, max_len: int, dim: int = 64, channels: int = 32, width: int = 64
    ) -> None:
        super().__init__()
        self.stem = ConvStem(channels)
        self.img_proj = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * channels, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim)
        )
        self.text = TextTransformer(vocab_size, max_len, width, layers=1)
        self.txt_proj = nn.Linear(width, dim)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.img_proj(self.stem(x)), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        h, pad = self.text(tokens)
        keep = (~pad).unsqueeze(-1).float()
        pooled = (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return F.normalize(self.txt_proj(pooled), dim=-1)


class CrossEncoder(nn.Module):
    """Teacher, ALBEF-style: unimodal towers (as the student's) plus a fusion transformer with an ITM head.

    Towers: the same CNN and text transformer as ``DualEncoder`` give unit embeddings a (image) and
    b (text), trained with ITC. Fusion (per *pair*, the cross part): [CLS] + the 16 image location
    tokens + the text tower's word states, with type and position embeddings, through ``layers``
    joint transformer layers of width ``fusion_width``; the ITM head reads [CLS] and a * b (the
    elementwise product of the tower embeddings, so the fused score starts from what ITC learned)
    and gives one match logit. The teacher's retrieval / distillation score is this ITM logit.
    """

    def __init__(
        self, vocab_size: int, max_len: int, dim: int = 64, width: int = 64, fusion_width: int = 32,
        layers: int = 1, heads: int = 4, channels: int = 32,
    ) -> None:  # fmt: skip
        super().__init__()
        self.towers = DualEncoder(vocab_size, max_len, dim=dim, channels=channels, width=width)
        self.img_in = nn.Linear(channels, fusion_width)
        self.txt_in = nn.Linear(width, fusion_width)
        self.img_pos = nn.Parameter(torch.randn(16, fusion_width) * 0.02)
        self.type_emb = nn.Parameter(torch.randn(3, fusion_width) * 0.02)  # cls, image, text
        self.cls = nn.Parameter(torch.randn(1, 1, fusion_width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            fusion_width, heads, 2 * fusion_width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.fusion = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(fusion_width)
        self.itm = nn.Sequential(
            nn.Linear(fusion_width + dim, fusion_width), nn.ReLU(), nn.Linear(fusion_width, 1)
        )

    def encode_images(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, tokens): unit embeddings N x dim and fusion tokens N x 16 x fw (once per image)."""
        fmap = self.towers.stem(x)
        a = F.normalize(self.towers.img_proj(fmap), dim=-1)
        tok = self.img_in(fmap.flatten(2).transpose(1, 2)) + self.img_pos + self.type_emb[1]
        return a, tok

    def encode_texts(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(b, tokens, pad): unit embeddings, fusion tokens N x L x fw, padding mask (once per caption)."""
        h, pad = self.towers.text(tokens)
        keep = (~pad).unsqueeze(-1).float()
        b = F.normalize(self.towers.txt_proj((h * keep).sum(1) / keep.sum(1).clamp_min(1.0)), dim=-1)
        return b, self.txt_in(h) + self.type_emb[2], pad

    def itm_logits(self, a, img_tok, b, txt_tok, pad) -> torch.Tensor:
        """ITM logits for aligned rows (pair k = image row k with text row k)."""
        n = img_tok.shape[0]
        seq = torch.cat([(self.cls + self.type_emb[0]).expand(n, 1, -1), img_tok, txt_tok], 1)
        mask = torch.cat([torch.zeros(n, 1 + img_tok.shape[1], dtype=torch.bool, device=seq.device), pad], 1)
        cls = self.norm(self.fusion(seq, src_key_padding_mask=mask)[:, 0])
        return self.itm(torch.cat([cls, a * b], -1)).squeeze(-1)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        a, it = self.encode_images(x)
        return self.itm_logits(a, it, *self.encode_texts(tokens))

    @torch.no_grad()
    def score_matrix(self, x: torch.Tensor, tokens: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """All-pairs ITM logits (N_images x N_texts); towers run once per image / caption."""
        a, it = self.encode_images(x)
        b, tt_, pad = self.encode_texts(tokens)
        ni, nt = len(a), len(b)
        ii, tt = torch.meshgrid(torch.arange(ni), torch.arange(nt), indexing="ij")
        ii, tt = ii.reshape(-1), tt.reshape(-1)
        out = torch.empty(ni * nt)
        for s in range(0, ni * nt, chunk):
            i, t = ii[s : s + chunk], tt[s : s + chunk]
            out[s : s + chunk] = self.itm_logits(a[i], it[i], b[t], tt_[t], pad[t])
        return out.view(ni, nt)
