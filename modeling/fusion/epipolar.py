"""The epipolar transformer (He et al., "Epipolar Transformers", CVPR 2020), generalised to N views.

For every location of a reference view's feature map, ``samples`` points are placed along its
epipolar line in each chosen source view and read with ``torch.nn.functional.grid_sample``
(bilinear, ``align_corners=True``); their similarity to the query feature (dot product or cosine)
goes through a scaled softmax over the samples, and the attention-weighted sum of the sampled source
features is the fused feature. Per-source results are aggregated (mean, or learned weights) into
``merged``, which goes through a 1x1 convolution ``z`` and a batch norm ``BN0`` whose gamma starts at
zero. The output is, by ``residual``:

- ``"reference"`` (default): ``features + merged + BN0(z(merged))``, the reference's ``ZRESIDUAL``
  (its ``Epipolar.forward`` returns ``BN0(z(out)) + out`` and its backbone adds that to the features),
  the form behind its published numbers. At initialisation it is ``features + merged``: the attended
  source features enter ungated from the first step.
- ``"gated"``: ``features + BN0(z(merged))`` (the reference without ``ZRESIDUAL``), exactly the
  identity at initialisation, so the layer can be inserted into a trained backbone without changing
  what it predicts.

Pixel convention: ``cameras.K`` maps into the pixels of the FEATURE map (fold the backbone stride
into K, e.g. with ``feature_cameras``), and feature pixel (i, j) has its centre at x = j, y = i. With
``align_corners=True`` the grid_sample coordinates -1 and +1 are the centres of the first and last
pixel, so the source map covers x in [0, w - 1], y in [0, h - 1]; samples outside it are masked out of
the softmax. ``cameras.image_size`` must be (w, h) of the feature map.

Exact geometry with lens distortion (feature maps are in distorted pixels): the reference pixel is
undistorted, its epipolar line in the undistorted source image comes from ``core.geometry.epipolar``,
the line is clipped to the undistorted outline of the source map (its border, undistorted at
``BOUNDARY_POINTS_PER_EDGE`` points per edge, as a polygon), the samples are spaced evenly on that
segment and mapped through the source camera's distortion before sampling. Without distortion this is
the reference code's straight segment between the line's crossings of the image border.

Sources: ``"nearest"`` (the other camera with the nearest centre), ``"knn"`` (the ``k`` nearest) or
``"all"`` (every other view), gathered with index tensors; everything is vectorised over batch,
views, sources, locations and samples. Aggregation over sources: ``"mean"`` over the sources whose
line meets the source map at that location, or ``"learned"``: a softmax over the sources of scores
from a 1x1 convolution of [query feature, fused feature] (zero-initialised, so it starts as the
mean). A location with no usable source (its line misses every source map, or it sits at an
epipole) gets a zero fused feature: no NaN.

Deviations from the reference code (github.com/yihui-he/epipolar-transformers), on purpose:

- N views instead of pairs (source selection and aggregation above);
- exact geometry under lens distortion (the reference uses straight lines of a distortion-free P);
- out-of-map samples are masked explicitly (the reference sets similarities that are exactly 0 to
  -1e10, which also drops in-map samples whose feature happens to be orthogonal to the query);
- no gradient reaches the cameras (the sample geometry is computed without autograd, as in the
  reference); gradients reach the features of both views and the layer's parameters.

Query and key projections (``projections=True``; off in the published configs): the reference's
``EPIPOLAR.PARAMETERIZED`` ``'theta'`` and ``'phi'``, 1x1 convolutions of the query and of the source features before
the similarity; the attended values stay the source's features. The reference starts them at random and narrows them
(``BOTTLENECK``); here they keep the channels and start as the identity (the layer starts as the unprojected one).

Softmax scale: ``softmax_scale=None`` uses the reference's default ``1 / sqrt(samples)``
(``EPIPOLAR.SOFTMAXSCALE``); the "attention is all you need" choice would be ``1 / sqrt(channels)``.

Computation: a bilinear sample is a weighted mix of four source pixels, so its similarity with the
query is the same mix of the four pixels' similarities, and the attention-weighted sum of the samples
is a sparse mixing matrix (4 x samples entries per query) applied to the source pixels. The layer
computes the dense query x source product (one batched matrix product), gathers the similarities
from it, scatters the attention into the mixing matrix and applies it as a second product. This is
exactly what sampling every point with ``grid_sample(align_corners=True, padding_mode="zeros")``
gives (a test checks it), 10x faster on the CPU at the published setting, and it holds 2 x (h w)^2
numbers per reference-source pair instead of the C x h w x samples of the gathered samples (512 MiB
against 1 GiB in float32 at 4 views, 256 channels, 64 x 64, 64 samples, one source).

Sampling ignores which side of the epipole a point lies on (both halves of the line are searched,
as in the reference).
"""
import math
from typing import Optional

import torch
from torch import Tensor, nn

from core.geometry.cameras import Cameras
from core.geometry.epipolar import epipolar_lines, fundamental_from_cameras
from core.geometry.projection import distort, normalized_to_pixels, pixels_to_normalized
from core.registry import FUSIONS

BOUNDARY_POINTS_PER_EDGE = 16  # points per edge of the source map's outline, undistorted into a polygon
_INSIDE_TOLERANCE_PX = 1e-3    # a sample this close outside the map still counts as inside
_COSINE_EPS = 1e-8             # as torch.nn.functional.cosine_similarity

SOURCE_MODES = ("nearest", "knn", "all")
AGGREGATIONS = ("mean", "learned")
SIMILARITIES = ("dot", "cosine")
RESIDUALS = ("reference", "gated")


def pixel_grid(height: int, width: int, dtype: torch.dtype, device) -> Tensor:
    """(h * w, 2) pixel centres (x = j, y = i) in row-major order."""
    y, x = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing="ij")
    return torch.stack([x, y], dim=-1).reshape(-1, 2)


def select_sources(centers: Tensor, mode: str, k: int = 2) -> Tensor:
    """(B, V, S) int64 indices of the source views of every view, nearest first.

    ``centers`` (B, V, 3) camera centres; ``mode`` "nearest" (S = 1), "knn" (S = k) or "all" (S = V - 1).
    """
    if centers.dim() != 3 or centers.shape[-1] != 3:
        raise ValueError(f"select_sources: centers must have shape (B, V, 3), got {tuple(centers.shape)}")
    num_views = centers.shape[1]
    count = {"nearest": 1, "knn": k, "all": num_views - 1}.get(mode)
    if count is None:
        raise ValueError(f"select_sources: mode must be one of {SOURCE_MODES}, got {mode!r}")
    if not 1 <= count <= num_views - 1:
        raise ValueError(f"select_sources: {mode!r} needs {count} source views but there are only "
                         f"{num_views} views (at most {num_views - 1} sources per view)")
    distances = torch.cdist(centers, centers)
    self_mask = torch.eye(num_views, dtype=torch.bool, device=centers.device)
    distances = distances.masked_fill(self_mask, float("inf"))
    return distances.topk(count, dim=-1, largest=False).indices


def _map_outline(width: int, height: int, dtype: torch.dtype, device) -> Tensor:
    """(4 n, 2) points around the rectangle [0, w - 1] x [0, h - 1], in order (a closed polygon)."""
    t = torch.arange(BOUNDARY_POINTS_PER_EDGE, dtype=dtype, device=device) / BOUNDARY_POINTS_PER_EDGE
    right, bottom = torch.full_like(t, width - 1.0), torch.full_like(t, height - 1.0)
    zero = torch.zeros_like(t)
    edges = [(t * (width - 1), zero), (right, t * (height - 1)),
             ((1 - t) * (width - 1), bottom), (zero, (1 - t) * (height - 1))]
    return torch.cat([torch.stack(edge, dim=-1) for edge in edges])


def _clip_lines(lines: Tensor, polygon: Tensor):
    """Where lines (..., N, 3) (a^2 + b^2 = 1) cross a closed polygon (..., E, 2).

    Returns the foot point p0 = -c (a, b) (..., N, 2), the direction d = (-b, a) (..., N, 2), the
    first and last crossing as parameters along d (..., N) and whether the line crosses at all (..., N).
    NaN lines or polygon vertices never cross.
    """
    a, b, c = lines.unsqueeze(-2).unbind(-1)                           # (..., N, 1)
    vertex_x, vertex_y = polygon.unsqueeze(-3).unbind(-1)              # (..., 1, E)
    side = a * vertex_x + b * vertex_y + c                             # signed distances (..., N, E)
    along = -b * vertex_x + a * vertex_y                               # positions along d
    side_next, along_next = side.roll(-1, dims=-1), along.roll(-1, dims=-1)
    crosses = ((side <= 0) & (side_next >= 0)) | ((side >= 0) & (side_next <= 0))
    step = side - side_next
    fraction = torch.where(step != 0, side / torch.where(step != 0, step, torch.ones_like(step)),
                           torch.zeros_like(step))
    position = along + fraction * (along_next - along)
    first = torch.where(crosses, position, torch.full_like(position, float("inf"))).amin(-1)
    last = torch.where(crosses, position, torch.full_like(position, float("-inf"))).amax(-1)
    hits = crosses.any(-1)
    foot = -c * torch.cat([a, b], dim=-1)
    direction = torch.cat([-b, a], dim=-1)
    return foot, direction, first, last, hits


def epipolar_samples(cameras: Cameras, sources: Tensor, height: int, width: int, samples: int):
    """Sample points of every reference location on its epipolar curve in each source view.

    cameras (B, V) with K mapping into (w, h) feature pixels; sources (B, V, S) view indices.
    Returns (pixels (B, V, S, h * w, samples, 2) in DISTORTED source pixels, zero where masked;
    mask (B, V, S, h * w, samples): the sample lies inside the source map and its line meets it).
    No autograd; computed in the cameras' dtype.
    """
    with torch.no_grad():
        batch, num_views = cameras.batch_shape
        num_sources = sources.shape[-1]
        dtype, device = cameras.dtype, cameras.device
        source_cameras = cameras[torch.arange(batch, device=device)[:, None, None], sources]   # (B, V, S)
        reference_cameras = cameras.unsqueeze(2).expand(batch, num_views, num_sources)

        grid = pixel_grid(height, width, dtype, device)
        reference_points = cameras.undistort_pixels(grid)                                    # (B, V, hw, 2)
        fundamental = fundamental_from_cameras(reference_cameras, source_cameras)            # (B, V, S, 3, 3)
        lines = epipolar_lines(reference_points.unsqueeze(2), fundamental)                   # (B, V, S, hw, 3)

        outline = cameras.undistort_pixels(_map_outline(width, height, dtype, device))       # (B, V, E, 2)
        outline = outline[torch.arange(batch, device=device)[:, None, None], sources]        # (B, V, S, E, 2)
        foot, direction, first, last, hits = _clip_lines(lines, outline)

        steps = torch.linspace(0.0, 1.0, samples, dtype=dtype, device=device)
        first = torch.where(hits, first, torch.zeros_like(first))
        last = torch.where(hits, last, torch.zeros_like(last))
        positions = first.unsqueeze(-1) + (last - first).unsqueeze(-1) * steps             # (B, V, S, hw, K)
        undistorted = foot.unsqueeze(-2) + positions.unsqueeze(-1) * direction.unsqueeze(-2)
        hits = hits & torch.isfinite(undistorted).all(-1).all(-1)
        undistorted = torch.where(hits[..., None, None], undistorted, torch.zeros_like(undistorted))

        flat = undistorted.reshape(batch, num_views, num_sources, -1, 2)
        normalized = pixels_to_normalized(flat, source_cameras.K)
        pixels = normalized_to_pixels(distort(normalized, source_cameras.dist), source_cameras.K)
        pixels = pixels.reshape(undistorted.shape)

        low = -_INSIDE_TOLERANCE_PX
        high = pixels.new_tensor([width - 1.0, height - 1.0]) + _INSIDE_TOLERANCE_PX
        inside = ((pixels >= low) & (pixels <= high)).all(-1)                              # False for NaN
        mask = inside & hits.unsqueeze(-1)
        pixels = torch.where(mask.unsqueeze(-1), pixels, torch.zeros_like(pixels))
    return pixels, mask


def bilinear_corners(pixels: Tensor, height: int, width: int, dtype: torch.dtype):
    """Bilinear interpolation of a (h, w) map at ``pixels`` (n, q, K, 2) as flat corner indices and weights.

    Returns (corners (n, q, K * 4) int64 indices into h * w, weights (n, q, K * 4)); a corner outside
    the map gets index 0 and weight 0, as ``grid_sample(padding_mode="zeros", align_corners=True)``.
    """
    low = pixels.floor()
    frac = (pixels - low).to(dtype)
    low = low.long()
    x = torch.stack([low[..., 0], low[..., 0] + 1, low[..., 0], low[..., 0] + 1], dim=-1)      # (n, q, K, 4)
    y = torch.stack([low[..., 1], low[..., 1], low[..., 1] + 1, low[..., 1] + 1], dim=-1)
    fx, fy = frac[..., :1], frac[..., 1:]
    weights = torch.cat([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dim=-1)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    corners = torch.where(inside, y * width + x, torch.zeros_like(x))
    weights = torch.where(inside, weights, torch.zeros_like(weights))
    return corners.flatten(-2), weights.flatten(-2)


def _mix(values: Tensor, weights: Tensor, samples: int) -> Tensor:
    """Sum of corner values (n, q, K * 4) times their bilinear weights -> (n, q, K)."""
    return (values * weights).unflatten(-1, (samples, 4)).sum(-1)


def _sample_norms(gram: Tensor, corners: Tensor, weights: Tensor, samples: int) -> Tensor:
    """Norms (n, q, K) of bilinear samples from the Gram matrix (n, hw, hw) of the source pixels:
    |sum_a w_a f_a|^2 = sum_ab w_a w_b <f_a, f_b>."""
    n, q, _ = corners.shape
    hw = gram.shape[-1]
    corners, weights = corners.unflatten(-1, (samples, 4)), weights.unflatten(-1, (samples, 4))
    pairs = (corners.unsqueeze(-1) * hw + corners.unsqueeze(-2)).reshape(n, -1)             # (n, q K 16)
    products = gram.reshape(n, -1).gather(1, pairs).reshape(n, q, samples, 4, 4)
    squared = (products * weights.unsqueeze(-1) * weights.unsqueeze(-2)).sum((-1, -2))
    return squared.clamp_min(_COSINE_EPS ** 2).sqrt()   # finite gradient at 0 (masked samples)


def _identity_conv(channels: int) -> nn.Conv2d:
    """A 1x1 convolution that starts as the identity (the query and key projections)."""
    conv = nn.Conv2d(channels, channels, kernel_size=1, bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).reshape(channels, channels, 1, 1))
        conv.bias.zero_()
    return conv


def _masked_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis among ``mask``; all-zero where a row has no valid entry (no NaN)."""
    any_valid = mask.any(-1, keepdim=True)
    fill = torch.where(any_valid, torch.full_like(logits[..., :1], float("-inf")), torch.zeros_like(logits[..., :1]))
    weights = torch.softmax(torch.where(mask, logits, fill), dim=-1)
    return weights * mask


@FUSIONS.register("epipolar")
class EpipolarTransformer(nn.Module):
    """N-view epipolar transformer with the reference's z-residual fusion (see the module docstring).

    Args:
        channels: C, the feature channels.
        samples: points per epipolar line (reference: 64).
        similarity: "dot" or "cosine".
        softmax_scale: multiplies the similarities before the softmax; None: 1 / sqrt(samples).
        sources: "nearest", "knn" (the ``k`` nearest) or "all".
        k: number of sources for "knn".
        aggregation: "mean" or "learned" over the sources.
        residual: "reference" (features + merged + BN0(z(merged))) or "gated" (features + BN0(z(merged))).
        projections: learned 1x1 query and key projections before the similarity, starting as the identity.
    """

    def __init__(self, channels: int, samples: int = 64, similarity: str = "dot",
                 softmax_scale: Optional[float] = None, sources: str = "nearest", k: int = 2,
                 aggregation: str = "mean", residual: str = "reference", projections: bool = False):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"EpipolarTransformer: channels must be a positive integer, got {channels!r}")
        if not isinstance(samples, int) or samples < 2:
            raise ValueError(f"EpipolarTransformer: samples must be an integer >= 2, got {samples!r}")
        if similarity not in SIMILARITIES:
            raise ValueError(f"EpipolarTransformer: similarity must be one of {SIMILARITIES}, got {similarity!r}")
        if sources not in SOURCE_MODES:
            raise ValueError(f"EpipolarTransformer: sources must be one of {SOURCE_MODES}, got {sources!r}")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"EpipolarTransformer: k must be a positive integer, got {k!r}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"EpipolarTransformer: aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if residual not in RESIDUALS:
            raise ValueError(f"EpipolarTransformer: residual must be one of {RESIDUALS}, got {residual!r}")
        if softmax_scale is not None and not (math.isfinite(softmax_scale) and softmax_scale > 0):
            raise ValueError(f"EpipolarTransformer: softmax_scale must be a positive number, got {softmax_scale!r}")
        self.channels, self.samples, self.similarity = channels, samples, similarity
        self.softmax_scale = 1.0 / math.sqrt(samples) if softmax_scale is None else float(softmax_scale)
        self.sources, self.k, self.aggregation, self.residual = sources, k, aggregation, residual
        if not isinstance(projections, bool):
            raise ValueError(f"EpipolarTransformer: projections must be True or False, got {projections!r}")
        self.query_projection = self.key_projection = None
        if projections:
            self.query_projection = _identity_conv(channels)
            self.key_projection = _identity_conv(channels)
        self.conv = nn.Conv2d(channels, channels, kernel_size=1, bias=True)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)  # BN0: z(merged) starts at zero
        if aggregation == "learned":
            self.source_score = nn.Conv2d(2 * channels, 1, kernel_size=1, bias=True)
            nn.init.zeros_(self.source_score.weight)  # starts as the mean over usable sources
            nn.init.zeros_(self.source_score.bias)

    def get_extra_state(self) -> dict:
        """The residual form travels with the weights: a checkpoint of one form never loads into the other."""
        return {"residual": self.residual}

    def set_extra_state(self, state) -> None:
        found = state.get("residual") if isinstance(state, dict) else None
        if found != self.residual:
            raise ValueError(f"its epipolar layer was trained with the {found!r} residual, this model has "
                             f"{self.residual!r}: set MODEL.FUSION.RESIDUAL {found}")

    def _check(self, features: Tensor, cameras: Cameras) -> None:
        if not isinstance(features, Tensor) or features.dim() != 5:
            raise ValueError("EpipolarTransformer: features must be a tensor (B, V, C, h, w), got "
                             f"{tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__}")
        batch, num_views, channels, height, width = features.shape
        if channels != self.channels:
            raise ValueError(f"EpipolarTransformer: features have {channels} channels, the layer expects {self.channels}")
        if num_views < 2 or height < 2 or width < 2:
            raise ValueError(f"EpipolarTransformer: needs >= 2 views and maps of at least 2 x 2, got {tuple(features.shape)}")
        if not isinstance(cameras, Cameras) or tuple(cameras.batch_shape) != (batch, num_views):
            raise ValueError(f"EpipolarTransformer: cameras must be Cameras of batch shape ({batch}, {num_views}), got "
                             f"{tuple(cameras.batch_shape) if isinstance(cameras, Cameras) else type(cameras).__name__}")
        expected = cameras.image_size.new_tensor([width, height])
        if not bool(((cameras.image_size - expected).abs() <= 0.5).all()):
            raise ValueError(f"EpipolarTransformer: cameras.image_size must be the feature map size (w, h) = "
                             f"({width}, {height}) (fold the stride into K: Cameras.for_feature_map), got "
                             f"{cameras.image_size.reshape(-1, 2)[0].tolist()}")
        if not bool(torch.isfinite(features).all()):
            raise ValueError("EpipolarTransformer: features contain NaN or inf")

    def forward(self, features: Tensor, cameras: Cameras, return_attention: bool = False):
        """features (B, V, C, h, w), cameras (B, V) into feature pixels -> fused features (B, V, C, h, w).

        With ``return_attention`` a dict: ``features``; ``sources`` (B, V, S) source view indices;
        ``attention`` (B, V, S, h, w, samples) softmax weights (zero on masked samples);
        ``sample_pixels`` (B, V, S, h, w, samples, 2) distorted source pixels (x, y), zero where masked;
        ``sample_mask`` (B, V, S, h, w, samples); ``source_weights`` (B, V, S, h, w) aggregation weights.
        """
        self._check(features, cameras)
        batch, num_views, channels, height, width = features.shape
        cameras = cameras.to(device=features.device)
        sources = select_sources(cameras.centers, self.sources, self.k)                     # (B, V, S)
        num_sources = sources.shape[-1]
        pixels, mask = epipolar_samples(cameras, sources, height, width, self.samples)

        flat_index = (torch.arange(batch, device=features.device)[:, None, None] * num_views + sources).reshape(-1)
        flat = features.reshape(batch * num_views, channels, height * width)
        source_features = flat[flat_index]                                                  # (n, C, hw): values
        queries, keys = flat, source_features
        if self.query_projection is not None:
            maps = features.reshape(batch * num_views, channels, height, width)
            queries = self.query_projection(maps).flatten(2)
            keys = self.key_projection(maps).flatten(2)[flat_index]
        query = queries.reshape(batch, num_views, 1, channels, -1).expand(-1, -1, num_sources, -1, -1)
        query = query.reshape(-1, channels, height * width)                                 # (n, C, hw)
        corners, corner_weights = bilinear_corners(pixels.reshape(-1, height * width, self.samples, 2),
                                                   height, width, features.dtype)           # (n, hw, K * 4)

        # similarity of the query with the bilinear sample = the bilinear mix of its similarities with
        # the four corner pixels, read from the dense query x source product
        affinity = torch.bmm(query.transpose(1, 2), keys)                                   # (n, hw, hw)
        similarity = _mix(affinity.gather(2, corners), corner_weights, self.samples)         # (n, hw, K)
        if self.similarity == "cosine":
            gram = torch.bmm(keys.transpose(1, 2), keys)                                    # (n, hw, hw)
            sample_norms = _sample_norms(gram, corners, corner_weights, self.samples)
            norms = query.norm(dim=1).unsqueeze(-1) * sample_norms
            similarity = similarity / norms.clamp_min(_COSINE_EPS)
        flat_mask = mask.reshape(-1, height * width, self.samples)
        attention = _masked_softmax(similarity * self.softmax_scale, flat_mask)
        # the attention-weighted sum of the samples = a sparse (4 K entries per row) mixing matrix
        # over the source pixels, applied as a dense product
        mixing = torch.zeros_like(affinity).scatter_add(
            2, corners, (attention.unsqueeze(-1) * corner_weights.unflatten(-1, (self.samples, 4))).flatten(-2))
        fused = torch.bmm(source_features, mixing.transpose(1, 2))                         # (n, C, hw)
        fused = fused.reshape(batch, num_views, num_sources, channels, height, width)

        usable = mask.any(-1).reshape(batch, num_views, num_sources, height, width)
        if self.aggregation == "learned":
            pairs = torch.cat([query.reshape(-1, channels, height, width),
                               fused.reshape(-1, channels, height, width)], dim=1)
            scores = self.source_score(pairs).reshape(batch, num_views, num_sources, height, width)
            source_weights = _masked_softmax(scores.movedim(2, -1), usable.movedim(2, -1)).movedim(-1, 2)
        else:
            source_weights = usable.to(features.dtype) / usable.sum(2, keepdim=True).clamp_min(1)
        merged = (fused * source_weights.unsqueeze(3)).sum(2).reshape(batch * num_views, channels, height, width)
        fused_residual = self.bn(self.conv(merged))
        if self.residual == "reference":
            fused_residual = fused_residual + merged
        output = features + fused_residual.reshape(features.shape)
        if not return_attention:
            return output
        spatial = (batch, num_views, num_sources, height, width, self.samples)
        return {"features": output, "sources": sources, "attention": attention.reshape(spatial),
                "sample_pixels": pixels.reshape(*spatial, 2), "sample_mask": mask.reshape(spatial),
                "source_weights": source_weights}
