"""The unit eigenvector of the smallest eigenvalue of symmetric positive semi-definite 4x4 matrices, entry by entry:
the null vector of the DLT's normal matrix (``core.geometry.triangulation``). Every entry is a tensor of one shape
(the points), so that compiled the whole solve is one loop over the points."""
import torch


def _adjugate(m):
    """The adjugate (``det(M) M^-1``) of 4x4 matrices given entry by entry (``m[i][j]``, tensors of one shape), from
    their 2x2 minors; entry by entry."""
    (m00, m01, m02, m03), (m10, m11, m12, m13), (m20, m21, m22, m23), (m30, m31, m32, m33) = m
    s0, s1, s2 = m00 * m11 - m10 * m01, m00 * m12 - m10 * m02, m00 * m13 - m10 * m03
    s3, s4, s5 = m01 * m12 - m11 * m02, m01 * m13 - m11 * m03, m02 * m13 - m12 * m03
    c0, c1, c2 = m20 * m31 - m30 * m21, m20 * m32 - m30 * m22, m20 * m33 - m30 * m23
    c3, c4, c5 = m21 * m32 - m31 * m22, m21 * m33 - m31 * m23, m22 * m33 - m32 * m23
    return ((m11 * c5 - m12 * c4 + m13 * c3, -m01 * c5 + m02 * c4 - m03 * c3,
             m31 * s5 - m32 * s4 + m33 * s3, -m21 * s5 + m22 * s4 - m23 * s3),
            (-m10 * c5 + m12 * c2 - m13 * c1, m00 * c5 - m02 * c2 + m03 * c1,
             -m30 * s5 + m32 * s2 - m33 * s1, m20 * s5 - m22 * s2 + m23 * s1),
            (m10 * c4 - m11 * c2 + m13 * c0, -m00 * c4 + m01 * c2 - m03 * c0,
             m30 * s4 - m31 * s2 + m33 * s0, -m20 * s4 + m21 * s2 - m23 * s0),
            (-m10 * c3 + m11 * c1 - m12 * c0, m00 * c3 - m01 * c1 + m02 * c0,
             -m30 * s3 + m31 * s1 - m32 * s0, m20 * s3 - m21 * s1 + m22 * s0))


def _column(m, j: int):
    return [row[j] for row in m]


def _times(m, h):
    """The matrix ``m`` (entry by entry) times the vector ``h`` (4 tensors)."""
    return [sum(m_ij * h_j for m_ij, h_j in zip(row, h)) for row in m]


def _unit(h):
    norm = sum(h_i * h_i for h_i in h).sqrt().clamp_min(torch.finfo(h[0].dtype).tiny)
    return [h_i / norm for h_i in h]


def smallest_eigenvectors(m):
    """The unit eigenvectors (4 tensors) of the smallest eigenvalue of the 4x4 normal matrices ``M = A^T A``, given
    entry by entry (``m[i][j]``, tensors of one shape), and whether each settled: inverse iteration with the
    adjugate (``adj(M) = det(M) M^-1``, started from its largest column, which already leans towards the smallest
    eigenvector by the eigenvalue ratios), 6 steps: each shrinks the error by the ratio of the two smallest
    eigenvalues, about 1e-5 for 2 px of noise on a 4-view point, 3e-3 (1e-2 for the worst percent) for 40 px.
    A system has not settled when its eigen-residual is above 1e-9 |M|, its last step above 1e-10 (close
    smallest eigenvalues), it is nearly rank-deficient (``tr adj(M)``, the sum of the eigenvalue triples, below
    1e6 eps tr(M)^3) or the result is not finite; those are for the SVD to solve (``core.geometry.triangulation._null_vectors_svd``), so
    the results and the rank decisions are the SVD's (to 1e-12 in the tests). Float64 only: the normal matrix
    squares the condition number. Entry by entry, so that compiled it is one loop over the points."""
    adjugate = _adjugate(m)
    diagonal = [adjugate[i][i] for i in range(4)]
    best, h = diagonal[0], _column(adjugate, 0)
    for j in range(1, 4):
        larger = diagonal[j] > best
        best = torch.where(larger, diagonal[j], best)
        h = [torch.where(larger, new, old) for new, old in zip(_column(adjugate, j), h)]
    for _ in range(6):
        previous = h
        h = _unit(_times(adjugate, h))
    # adj(M) is positive semi-definite, so the iterates keep their sign: a last step that still moved h means
    # the two smallest eigenvalues are close and the iteration has not separated them
    step = sum((h_i - p_i) ** 2 for h_i, p_i in zip(h, previous)).sqrt()
    Mh = _times(m, h)
    rayleigh = sum(h_i * Mh_i for h_i, Mh_i in zip(h, Mh))
    residual = sum((Mh_i - rayleigh * h_i) ** 2 for h_i, Mh_i in zip(h, Mh)).sqrt()
    size = sum(m[i][i] for i in range(4))
    settled = (residual <= 1e-9 * size) & (step <= 1e-10) & \
        (sum(diagonal) > 1e6 * torch.finfo(size.dtype).eps * size ** 3) & \
        torch.isfinite(h[0] + h[1] + h[2] + h[3])
    return h, settled
