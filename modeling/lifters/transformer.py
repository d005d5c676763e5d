"""Vision-transformer building blocks shared by the transformer lifters (PoseFormer, ESMformer).

Pre-norm blocks ``x + DropPath(Attention(LN(x)))`` then ``x + DropPath(MLP(LN(x)))`` with layer norms of
eps 1e-6, qkv projections with bias, a GELU MLP, dropout after the attention's output projection and
in the MLP (0 by default, as in PoseFormer), and stochastic depth rising linearly over the blocks of a
stack (``transformer_blocks``).
"""
from typing import Callable, Optional

import torch
from torch import Tensor, nn


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch for a random subset of samples in training (rescaling the rest)."""

    def __init__(self, probability: float):
        super().__init__()
        self.probability = float(probability)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.probability == 0.0:
            return x
        keep = 1.0 - self.probability
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, C) -> (B, heads, N, C / heads)."""
    batch, tokens, dim = x.shape
    return x.reshape(batch, tokens, num_heads, dim // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, heads, N, C / heads) -> (B, N, C)."""
    return x.transpose(1, 2).flatten(2)


def check_heads(dim: int, num_heads: int, where: str) -> None:
    if dim % num_heads:
        raise ValueError(f"{where}: dim {dim} is not divisible by num_heads {num_heads}")


class Attention(nn.Module):
    """Multi-head self-attention ``softmax(q k^T / sqrt(head_dim)) v`` with a joint qkv projection (bias) and an
    output projection followed by dropout."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        check_heads(dim, num_heads, "Attention")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (split_heads(t, self.num_heads) for t in self.qkv(x).chunk(3, dim=-1))
        return self.proj(merge_heads(nn.functional.scaled_dot_product_attention(q, k, v)))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + DropPath(Attention(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float, dropout: float = 0.0,
                 attention: Optional[Callable[[int, int, float], nn.Module]] = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = (attention or Attention)(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                                 nn.Dropout(dropout))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def transformer_blocks(dim: int, depth: int, num_heads: int, mlp_ratio: float, drop_path_rate: float,
                       dropout: float = 0.0, attention=None) -> nn.Sequential:
    """``depth`` blocks whose stochastic depth rises linearly from 0 to ``drop_path_rate``."""
    rates = torch.linspace(0, drop_path_rate, depth).tolist()
    return nn.Sequential(*(TransformerBlock(dim, num_heads, mlp_ratio, rate, dropout, attention) for rate in rates))
