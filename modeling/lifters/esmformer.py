"""ESMformer: the error-aware self-supervised multi-view transformer lifter (reference code
github.com/z0911k/ESMformer, ``model/esmformer.py``, ``SMFE.py``, ``MILF.py``, ``MCLF.py``).

A window of F (27) frames of V views' 2D, (B, F, V, J, 2) in normalised screen coordinates -> the
root-relative 3D in the world frame, metres: all F frames (B, F, J, 3) for supervised training, or
the centre frame (B, 1, J, 3) through a learned mix of the frames for self-supervised training.

- Single-view multi-level feature extraction (SMFE), one module per view (weights not shared): the
  tokens are the 2 J coordinates, each with its F-frame trajectory as feature (no input embedding).
  Three chained levels ``x_l = x_{l-1} + T_l(LN(x_{l-1}))``; each ``T_l`` adds a learned token
  position embedding (zeros), dropout 0.1, then 5 pre-norm blocks (F channels, 9 heads, MLP 2F,
  dropout 0.1, stochastic depth 0 -> 0.2) with "relative attention" (the query is a 1D convolution of
  kernel 3 along the tokens, keys and values are linear, the output is ``proj(q - attention v)``) and a
  layer norm. Each level is projected to 512 channels per frame: 1x1 convolution over the 2 J
  tokens, batch norm, ReLU, dropout 0.25.
- Multi-view fusion (MVF), per level: the V views' (F, 512) maps as V channels, batch norm, a 7x7
  convolution V -> 1 (no bias), ReLU, layer norm; plus the sum of the views, layer norm.
- Multi-level intra-level fusion (MILF): per level, a learned frame position embedding (zeros),
  dropout 0.1, and a residual temporal transformer (its own position embedding, 2 blocks of 512
  channels, 8 heads, MLP 1024, dropout 0.1, stochastic depth 0 -> 0.2).
- Multi-level cross-level fusion (MCLF): cross attention with its own layer norm on each of its three
  inputs (nine norms, the reference's ``norm3_11`` .. ``norm3_33``), applied in turn
  ``x1 += CA(q=x2, k=x3, v=x1)``, ``x2 += CA(q=x1, k=x3, v=x2)``, ``x3 += CA(q=x1, k=x2, v=x3)`` (stochastic
  depth 0.2), then the three levels concatenated (1536) and layer-normed.
- Head: batch norm and a 1x1 convolution 1536 -> 3 J per frame; self-supervised: an MLP over the
  frames (F -> 64 -> 1, GELU) gives the centre frame.

Deviations from the reference code: the temporal transformers add their position embedding out of
place (the reference adds it in place, so it also leaks into the block's residual input); the
reference builds an MLP and norms in its cross-level block and a norm in MILF that it never uses (6.3 M
parameters), which are left out: 16.65 M parameters at 4 views. The number of views V is a
constructor argument (the reference hard-codes 4): SMFE has one module per view and the fusion
convolution has V input channels, so a model serves the rig it was trained on (the views in the same
order), not a different number of cameras. The level width C (512 in the paper, ``features``) is a
constructor argument too, so that a narrower model can train on a small machine, and so are the two dropout
rates (``dropout`` 0.1 in the transformers and on the fused levels, ``projection_dropout`` 0.25 after each level's
projection). Trained with dropout, the self-supervised model predicts differently on average once dropout is
off (measured on the synthetic world at 128 channels: ankles 6 cm too low at test and on the training
subjects, gone when dropout stays on at test). Its per-frame head outputs are free features mixed by the
frame MLP; the supervised model, whose per-frame outputs are the poses, shows no such shift.
``configs/synthetic/esmformer_*.yaml`` therefore train without dropout.
"""
import torch
from torch import Tensor, nn

from core.registry import LIFTERS
from modeling.arguments import check_dropout
from modeling.lifters.transformer import DropPath, check_heads, merge_heads, split_heads, transformer_blocks

LEVELS = 3


class RelativeAttention(nn.Module):
    """ESMformer's SMFE attention: q = Conv1d(k=3) along the tokens, k and v linear, out = proj(q - softmax(q k^T /
    sqrt(head_dim)) v), then dropout."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        check_heads(dim, num_heads, "RelativeAttention")
        self.num_heads = num_heads
        self.query = nn.Conv1d(dim, dim, kernel_size=3, padding=1)
        self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        q = self.query(x.transpose(1, 2)).transpose(1, 2).contiguous()  # unit-stride heads: the fused attention kernel
        q, k, v = (split_heads(t, self.num_heads) for t in (q, self.key(x), self.value(x)))
        return self.proj(merge_heads(q - nn.functional.scaled_dot_product_attention(q, k, v)))


class TokenTransformer(nn.Module):
    """Position embedding (zeros), dropout, blocks, layer norm: (B, N, C) -> (B, N, C)."""

    def __init__(self, tokens: int, dim: int, depth: int, num_heads: int, mlp_ratio: float, dropout: float,
                 drop_path_rate: float, attention=None):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, tokens, dim))
        self.dropout = nn.Dropout(dropout)
        self.blocks = transformer_blocks(dim, depth, num_heads, mlp_ratio, drop_path_rate, dropout, attention)
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.blocks(self.dropout(x + self.position)))


class SingleViewFeatures(nn.Module):
    """SMFE of one view: (B, 2J, F) coordinate trajectories -> LEVELS x (B, F, features)."""

    def __init__(self, frames: int, tokens: int, features: int, depth: int = 5, num_heads: int = 9,
                 dropout: float = 0.1, drop_path_rate: float = 0.2, projection_dropout: float = 0.25):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(frames) for _ in range(LEVELS))
        self.levels = nn.ModuleList(TokenTransformer(tokens, frames, depth, num_heads, 2.0, dropout, drop_path_rate,
                                                     RelativeAttention) for _ in range(LEVELS))
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Conv1d(tokens, features, kernel_size=1), nn.BatchNorm1d(features), nn.ReLU(inplace=True),
                          nn.Dropout(projection_dropout)) for _ in range(LEVELS))

    def forward(self, x: Tensor):
        features = []
        for norm, level, projection in zip(self.norms, self.levels, self.projections):
            x = x + level(norm(x))
            features.append(projection(x).transpose(1, 2))
        return features


class MultiViewFusion(nn.Module):
    """MVF of one level: V x (B, F, C) -> (B, F, C)."""

    def __init__(self, num_views: int, features: int):
        super().__init__()
        self.mix = nn.Sequential(nn.BatchNorm2d(num_views), nn.Conv2d(num_views, 1, kernel_size=7, padding=3, bias=False),
                                 nn.ReLU(inplace=True))
        self.mix_norm = nn.LayerNorm(features)
        self.norm = nn.LayerNorm(features)

    def forward(self, views: Tensor) -> Tensor:          # (B, V, F, C)
        norm, conv, relu = self.mix
        mixed = relu(conv(norm(views).contiguous(memory_format=torch.channels_last)))[:, 0]  # 3x faster backward
        return self.norm(self.mix_norm(mixed) + views.sum(1))


class CrossAttention(nn.Module):
    """softmax(q k^T / sqrt(head_dim)) v with linear q, k, v (bias), an output projection and dropout."""

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        check_heads(dim, num_heads, "CrossAttention")
        self.num_heads = num_heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        q, k, v = (split_heads(f(t), self.num_heads) for f, t in ((self.query, q), (self.key, k), (self.value, v)))
        return self.proj(merge_heads(nn.functional.scaled_dot_product_attention(q, k, v)))


class CrossLevelFusion(nn.Module):
    """MCLF: the three levels attend to each other in turn; (B, F, C) x 3 -> (B, F, 3C)."""

    def __init__(self, features: int, num_heads: int = 8, dropout: float = 0.1, drop_path: float = 0.2):
        super().__init__()
        # one layer norm per input of each cross attention (query, key, value), as the reference's norm3_ij
        self.norms = nn.ModuleList(nn.ModuleList(nn.LayerNorm(features, eps=1e-6) for _ in range(3))
                                   for _ in range(LEVELS))
        self.attentions = nn.ModuleList(CrossAttention(features, num_heads, dropout) for _ in range(LEVELS))
        self.drop_path = DropPath(drop_path)
        self.norm = nn.LayerNorm(LEVELS * features, eps=1e-6)

    def _attend(self, level: int, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        nq, nk, nv = self.norms[level]
        return self.drop_path(self.attentions[level](nq(query), nk(key), nv(value)))

    def forward(self, x1: Tensor, x2: Tensor, x3: Tensor) -> Tensor:
        x1 = x1 + self._attend(0, x2, x3, x1)
        x2 = x2 + self._attend(1, x1, x3, x2)
        x3 = x3 + self._attend(2, x1, x2, x3)
        return self.norm(torch.cat([x1, x2, x3], dim=-1))


@LIFTERS.register("esmformer")
class ESMformer(nn.Module):
    """(B, F, V, J, 2) normalised 2D -> (B, F, J, 3), or (B, 1, J, 3) with ``centre_frame``: world-frame metres,
    root-relative (see the module docstring)."""

    single_view = False
    inputs = "screen_views"

    def __init__(self, num_frames: int = 27, num_views: int = 4, num_joints: int = 17, centre_frame: bool = False,
                 features: int = 512, smfe_depth: int = 5, milf_depth: int = 2, dropout: float = 0.1,
                 drop_path_rate: float = 0.2, projection_dropout: float = 0.25):
        super().__init__()
        check_dropout(dropout)
        check_dropout(projection_dropout, "projection_dropout")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
        if num_views < 2:
            raise ValueError(f"ESMformer fuses several views: num_views must be >= 2, got {num_views}")
        if num_frames % 9:
            raise ValueError(f"ESMformer's SMFE attends with 9 heads over the {num_frames}-frame trajectories: "
                             "num_frames must be a multiple of 9 (27 in the paper)")
        self.num_frames, self.num_views, self.num_joints = num_frames, num_views, num_joints
        tokens = 2 * num_joints
        self.views = nn.ModuleList(SingleViewFeatures(num_frames, tokens, features, smfe_depth, 9, dropout,
                                                      drop_path_rate, projection_dropout) for _ in range(num_views))
        self.fusions = nn.ModuleList(MultiViewFusion(num_views, features) for _ in range(LEVELS))
        self.level_positions = nn.Parameter(torch.zeros(LEVELS, 1, num_frames, features))
        self.level_dropout = nn.Dropout(dropout)
        self.temporal = nn.ModuleList(TokenTransformer(num_frames, features, milf_depth, 8, 2.0, dropout, drop_path_rate)
                                      for _ in range(LEVELS))
        self.cross = CrossLevelFusion(features, 8, dropout, drop_path_rate)
        self.head = nn.Sequential(nn.BatchNorm1d(LEVELS * features), nn.Conv1d(LEVELS * features, 3 * num_joints, 1))
        self.frame_mix = nn.Sequential(nn.Linear(num_frames, 64), nn.GELU(), nn.Linear(64, 1)) if centre_frame else None

    def forward(self, keypoints_2d: Tensor) -> Tensor:
        expected = (self.num_frames, self.num_views, self.num_joints, 2)
        if keypoints_2d.dim() != 5 or keypoints_2d.shape[1:] != expected:
            raise ValueError(f"ESMformer: expected 2D keypoints (B, {', '.join(map(str, expected))}), got "
                             f"{tuple(keypoints_2d.shape)}")
        batch = keypoints_2d.shape[0]
        trajectories = keypoints_2d.permute(2, 0, 3, 4, 1).flatten(2, 3)            # V, B, 2J, F
        per_view = [module(x) for module, x in zip(self.views, trajectories)]      # V x LEVELS x (B, F, C)
        levels = []
        for level, (fusion, temporal) in enumerate(zip(self.fusions, self.temporal)):
            fused = fusion(torch.stack([view[level] for view in per_view], dim=1))
            fused = self.level_dropout(fused + self.level_positions[level])
            levels.append(fused + temporal(fused))
        out = self.head(self.cross(*levels).transpose(1, 2))                         # B, 3J, F
        if self.frame_mix is not None:
            out = self.frame_mix(out)                                                # B, 3J, 1
        return out.transpose(1, 2).reshape(batch, -1, self.num_joints, 3)
