"""An independent SciPy nodal solver for the crossbar (nodal analysis, sparse LU).

It builds the conductance matrix of the geometry described in :mod:`netlists.crossbar`
directly (it never reads netlist text), so agreeing with ngspice on that netlist is a real
check of both. It also gives the crossbar surrogate its exact *linear* transfer matrix.

Unknowns: driver nodes ``d_i``, wordline nodes ``w_ik`` and bitline nodes ``b_ik`` (``k`` the
physical position along the wordline); the TIA ends ``t_j`` are held at the virtual-ground
voltage (0 V by default). Rows are driven at ``-V_i``.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from cosim.blas import single_thread
from device_models import DeviceModel

_R_MIN = 1e-6  # a 0-ohm segment is written as 1 µΩ in the netlist too
#: tiles with at least this many devices take the nested-dissection transfer by default.
#: Measured against the stacked row-by-row elimination (:func:`transfer_blocks_stack`, one
#: BLAS thread, one n rows × n + 1 lines tile, fastest of 5, load ~0.5): nested/blocks 2.4 at
#: 64, 1.65 at 96, 1.2 at 112, 0.99 at 128, 0.77 at 160, 0.46 at 256. The switch sits at
#: the tie, 128 × 128 devices; the engine's 64-row tiles take the row-by-row elimination.
NESTED_MIN = 128 * 128


class _Nodes(NamedTuple):
    d: np.ndarray  # (rows,)
    w: np.ndarray  # (rows, n_lines) physical order
    b: np.ndarray  # (rows, n_lines) physical order
    n: int


def _splu(a: sp.spmatrix):
    # the nodal matrix is symmetric positive definite: no pivoting, symmetric ordering
    return spla.splu(
        a.tocsc(),
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )


class CrossbarNetwork:
    """The resistive network of one crossbar tile.

    Parameters
    ----------
    g
        Device conductances, shape ``(rows, n_lines)`` (S), columns in the caller's order;
        with ``sense_first`` the *last* column is the sense line and sits nearest the drivers.
    r_wl_ohm, r_bl_ohm, r_drv_ohm
        Segment and driver resistances (ohm).
    sense_first
        Whether the last column of ``g`` physically sits before column 0.

    Examples
    --------
    >>> net = CrossbarNetwork(np.full((2, 2), 1e-5), 0.0, 0.0, 0.0)
    >>> np.allclose(net.solve(np.array([[0.1, 0.2]])), [[3e-6, 3e-6]])
    True
    """

    def __init__(
        self,
        g: np.ndarray,
        r_wl_ohm: float,
        r_bl_ohm: float,
        r_drv_ohm: float,
        sense_first: bool = False,
    ) -> None:
        g = np.asarray(g, dtype=float)
        if g.ndim != 2:
            raise ValueError("g must be a 2-D conductance matrix")
        self.rows, self.n_lines = g.shape
        self.g = g
        k = self.n_lines - (1 if sense_first else 0)
        self.order = ([self.n_lines - 1] if sense_first else []) + list(range(k))
        self.gw = 1.0 / max(r_wl_ohm, _R_MIN)
        self.gb = 1.0 / max(r_bl_ohm, _R_MIN)
        self.gd = 1.0 / max(r_drv_ohm, _R_MIN)
        r, c = self.rows, self.n_lines
        self.nodes = _Nodes(
            d=np.arange(r),
            w=r + np.arange(r * c).reshape(r, c),
            b=r + r * c + np.arange(r * c).reshape(r, c),
            n=r + 2 * r * c,
        )

    def _stamps(self, g_phys: np.ndarray, wires: bool = True):
        nd = self.nodes
        rows, cols, vals = [], [], []

        def stamp(a, c, gval):
            gval = np.broadcast_to(gval, np.shape(a)).ravel()
            a = np.asarray(a).ravel()
            c = np.asarray(c).ravel()
            rows.extend([a, c, a, c])
            cols.extend([a, c, c, a])
            vals.extend([gval, gval, -gval, -gval])

        def ground(a, gval):
            gval = np.broadcast_to(gval, np.shape(a)).ravel()
            a = np.asarray(a).ravel()
            rows.append(a)
            cols.append(a)
            vals.append(gval)

        if wires:
            ground(nd.d, self.gd)  # driver resistance to the (fixed) DAC voltage
            stamp(nd.d, nd.w[:, 0], self.gw)  # first wordline segment
            stamp(nd.w[:, :-1], nd.w[:, 1:], self.gw)
            stamp(nd.b[:-1, :], nd.b[1:, :], self.gb)  # bitline segments
            ground(nd.b[-1, :], self.gb)  # last segment to the (fixed) TIA node
        stamp(nd.w, nd.b, g_phys)  # devices
        return sp.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(nd.n, nd.n),
        )

    def matrix(self, g_dev: np.ndarray | None = None) -> sp.csc_matrix:
        """Nodal conductance matrix for device conductances ``g_dev`` (caller's order)."""
        g = self.g if g_dev is None else np.asarray(g_dev, dtype=float)
        return self._stamps(g[:, self.order]).tocsc()

    def transfer(self, g_dev: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact linear transfer and Norton conductances, by block elimination (fast path).

        The nodal matrix is block-tridiagonal when the nodes are ordered row by row (rows
        couple only through bitline segments). Forward elimination down the rows yields the
        solution at the last row — where the TIA nodes are — without back substitution, for
        all inputs at once: one dense ``n_lines²`` product per row
        (:func:`transfer_blocks_stack`) instead of a sparse solve per input. Same results as
        :meth:`transfer_sparse` to rounding.

        Returns
        -------
        m : ndarray, shape (rows, n_lines)
            Column currents are ``I = V @ m`` (A) for input magnitudes ``V`` (V); columns in
            the caller's order.
        g_norton : ndarray, shape (n_lines,)
            Conductance seen from each TIA node into the array with inputs at 0 V (S): a TIA
            node at ``v`` instead of 0 changes that column's current by ``+g_norton * v`` (rows
            are driven at ``-V``, so raising the TIA node draws more current).
        """
        m, y = self.transfer_full(g_dev)
        return m, np.diagonal(y).copy()

    def transfer_full(
        self, g_dev: np.ndarray | None = None, method: str = "auto"
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transfer` with the full admittance matrix between the TIA nodes.

        ``method``: ``"blocks"`` (row-by-row block elimination,
        :func:`transfer_blocks_stack`, O(rows·n_lines³)), ``"nested"`` (nested dissection,
        :func:`transfer_nested`, O(n³) for an n×n tile) or ``"auto"``: nested from
        :data:`NESTED_MIN` devices on (faster there; both are exact eliminations of the same
        SPD system and agree to rounding, ~1e-12 of the largest entry of ``m``).

        Returns ``m`` as :meth:`transfer` and ``y`` (n_lines, n_lines) (S): TIA nodes at
        voltages ``v`` instead of 0 change the column currents by ``y @ v``. The diagonal is
        the Norton conductance; the (negative) off-diagonal terms are how an offset at one
        TIA input shifts the other columns' currents through the wordlines and drivers.
        """
        g = self.g if g_dev is None else np.asarray(g_dev, dtype=float)
        m, y = self.transfer_stack(g[None], method)
        return m[0], y[0]

    def transfer_stack(
        self, g_stack: np.ndarray, method: str = "auto"
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transfer_full` of a stack of tiles ``g_stack`` (T, rows, n_lines) (S), each
        with this network's shape, wires and sense-line position, in one stacked solve:
        ``m`` (T, rows, n_lines) and ``y`` (T, n_lines, n_lines), caller's column order.
        Programming a layer's tiles this way costs a fraction of one solve per tile."""
        g = np.asarray(g_stack, dtype=float)
        if g.ndim != 3 or g.shape[1:] != (self.rows, self.n_lines):
            raise ValueError(
                f"g_stack must have shape (T, {self.rows}, {self.n_lines}), got {g.shape}"
            )
        if method not in ("auto", "blocks", "nested"):
            raise ValueError(f"unknown transfer method {method!r}")
        g = g[:, :, self.order]
        # many small dense products and solves: BLAS threads only add contention here
        with single_thread():
            if method == "blocks" or (method == "auto" and self.rows * self.n_lines < NESTED_MIN):
                m_phys, y_phys = transfer_blocks_stack(g, self.gw, self.gb, self.gd)
            else:
                m_phys, y_phys = transfer_nested(g, self.gw, self.gb, self.gd)
        m = np.empty_like(m_phys)
        m[:, :, self.order] = m_phys
        y = np.empty_like(y_phys)
        o = np.asarray(self.order)
        y[:, o[:, None], o] = y_phys
        return m, y

    def transfer_sparse(self, g_dev: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transfer` by sparse LU with one solve per input (reference, slower)."""
        nd = self.nodes
        lu = _splu(self.matrix(g_dev))
        r, c = self.rows, self.n_lines
        rhs = np.zeros((nd.n, r + c))
        rhs[nd.d, np.arange(r)] = self.gd  # row i driven at +1 V (sign-symmetric network)
        rhs[nd.b[-1, :], r + np.arange(c)] = self.gb  # TIA node k at +1 V
        x = lu.solve(rhs)
        m_phys = self.gb * x[nd.b[-1, :], :r]  # (C_phys, R): current into TIA k per input
        y_self = self.gb - self.gb * x[nd.b[-1, :], r + np.arange(c)]
        m = np.empty((r, c))
        m[:, self.order] = m_phys.T
        g_norton = np.empty(c)
        g_norton[self.order] = y_self
        return m, g_norton

    def solve(
        self,
        v_in: np.ndarray,
        device: DeviceModel | None = None,
        v_tia: np.ndarray | float = 0.0,
        tol_v: float = 1e-13,
        max_iter: int = 50,
    ) -> np.ndarray:
        """Column currents (A) for input magnitudes ``v_in`` (n, rows), exactly.

        ``device`` gives the I–V curve (``None`` or ohmic: one linear solve per vector;
        nonlinear: Newton). ``v_tia`` is the voltage of the TIA nodes (scalar or per column in
        the caller's order), 0 for an ideal virtual ground. Rows are driven at ``-v_in``.
        Currents are positive when drawn out of the TIA nodes.
        """
        v_in = np.atleast_2d(np.asarray(v_in, dtype=float))
        nd = self.nodes
        vt = np.broadcast_to(np.asarray(v_tia, dtype=float), (self.n_lines,))[self.order]
        g_phys = self.g[:, self.order]
        nonlinear = device is not None and not device.is_ohmic
        lu_lin = _splu(self._stamps(g_phys))
        a_wires = self._stamps(np.zeros_like(g_phys), wires=True).tocsr() if nonlinear else None
        out = np.empty((v_in.shape[0], self.n_lines))
        for k, vk in enumerate(v_in):
            rhs = np.zeros(nd.n)
            rhs[nd.d] = -self.gd * vk
            rhs[nd.b[-1, :]] += self.gb * vt
            x = lu_lin.solve(rhs)
            if nonlinear:
                x = self._newton(device, g_phys, a_wires, rhs, x, tol_v, max_iter)
            out[k, self.order] = self.gb * (vt - x[nd.b[-1, :]])
        return out

    def _newton(self, device, g_phys, a_wires, rhs, x, tol_v, max_iter):
        nd = self.nodes
        for _ in range(max_iter):
            vdev = x[nd.b] - x[nd.w]  # bitline minus wordline (positive)
            idev = device.current(g_phys, vdev)
            f = a_wires @ x - rhs
            np.add.at(f, nd.b.ravel(), idev.ravel())
            np.add.at(f, nd.w.ravel(), -idev.ravel())
            jac = a_wires + self._stamps(device.small_signal(g_phys, vdev), wires=False)
            dx = _splu(jac).solve(-f)
            x = x + dx
            if np.max(np.abs(dx)) < tol_v:
                break
        return x


#: the row transfers' growth bound ``rows·sqrt(2·max g/gb)`` up to which the block
#: elimination's transfer-matrix recursion is used (growth ≤ cosh 7 ≈ 550, rounding stays
#: ~1e-14 of full scale); beyond it (bitline segments of ~100 Ω on a 64-row tile)
#: :func:`transfer_blocks_stack` hands the stack to the nested dissection
BLOCKS_GROWTH_MAX = 7.0


def _wordline_generators(
    g: np.ndarray, gw: float, gd: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse ``W`` of every row's wordline block, in closed form.

    Row ``i``'s wordline is the chain ``d, w_0 … w_{c-1}`` (driver node, then the devices'
    nodes): segments ``gw``, the driver's ``gd`` to its source, each device ``g_k`` to its
    (eliminated-later) bitline node. Its nodal matrix ``T`` is tridiagonal, so ``T⁻¹`` is
    semiseparable: ``T⁻¹[l, k] = T⁻¹[k, k]·R_l/R_k`` for ``l ≥ k`` with ``R`` a running
    product of ``gw/η`` (``η`` the backward elimination pivots). Pivots are carried as their
    excess over ``gw`` (the conductance to ground seen through the rest of the chain), so
    no step subtracts nearly equal numbers.

    ``g`` (..., c) (S). Returns ``a``, ``b`` (..., c) with ``W[k, l] = a_k·b_l`` for
    ``k ≤ l`` (``W = T⁻¹`` on the device nodes) and ``w0`` (..., c) = ``T⁻¹[w_k, d]``.
    """
    c = g.shape[-1]
    gt = np.moveaxis(g, -1, 0).copy()  # the chain axis first: each step a contiguous slice
    hr = np.empty((c + 1, *g.shape[:-1]))  # η_k − gw on the device nodes (index k + 1)
    hr[c] = gt[c - 1]
    for k in range(c - 1, 0, -1):
        h = hr[k + 1]
        hr[k] = gt[k - 1] + gw * h / (gw + h)
    sr0 = gw * hr[1] / (gw + hr[1])  # the whole chain seen from the driver node
    sl = np.empty_like(hr)  # conductance to ground seen leftward from node k
    hl = np.full(g.shape[:-1], gd)  # δ − gw at the driver node
    for k in range(1, c + 1):
        sl[k] = gw * hl / (gw + hl)
        hl = gt[k - 1] + sl[k]
    diag = 1.0 / (sl[1:] + hr[1:])  # T⁻¹[k, k] on the device nodes
    r_run = gw / (gw + hr[1:])  # R_1 … R_c, the running product (a loop: cumprod is slower)
    for k in range(1, c):
        r_run[k] *= r_run[k - 1]
    a, b, w0 = diag / r_run, r_run, r_run / (gd + sr0)
    return np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1), np.moveaxis(w0, 0, -1)


def transfer_blocks_stack(
    g_phys: np.ndarray, gw: float, gb: float, gd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact transfer of a stack of tiles by row-by-row block elimination.

    ``g_phys`` (T, rows, c) device conductances in physical column order (S); ``gw``,
    ``gb``, ``gd`` the wordline-segment, bitline-segment and driver conductances (S).
    Returns ``m`` (T, rows, c) (S) and ``y`` (T, c, c) (S) as
    :meth:`CrossbarNetwork.transfer_full`, in physical order.

    The nodal matrix is block-tridiagonal in the rows, which couple only through the
    bitline segments (``gb·I``). Each row's wordline and driver node are eliminated in
    closed form (:func:`_wordline_generators`), leaving ``E_i`` (c, c): the row's devices
    and wordline as seen from its bitline nodes, over ``gb``. Forward elimination down the
    rows is then the matrix continued fraction ``S_0 = I + E_0``,
    ``S_i = 2I + E_i − S_{i−1}⁻¹`` (in units of ``gb``). Written as ``S_i = P_{i−1}⁻¹ P_i``
    it needs no inverse per row: ``D_i = D_{i−1} + P_{i−1} E_i``, ``P_i = P_{i−1} + D_i``
    (``P_{−1} = I``, ``D_i = P_i − P_{i−1}``), one matrix product per row for the whole
    stack, and the products ``S_{r−1}⁻¹ ⋯ S_j⁻¹`` that carry row ``j``'s input to the TIA
    nodes telescope to ``P_{r−1}⁻¹ P_{j−1}``: ``m = P_{r−1}⁻¹ [P_{j−1} f_j]_j``,
    ``y = gb·P_{r−1}⁻¹ D_{r−1}`` — one solve per tile at the end. Carrying the difference
    ``D`` (not ``P_{i−2}``) keeps the small device terms apart from the unit wire terms, and
    ``y`` comes out of ``D`` directly, not as the difference ``gb·I − gb²·S⁻¹``.

    ``P`` grows like ``cosh(rows·sqrt(‖E‖))`` (about 1.1 for 64 rows of 1.5·g_max devices
    on 1 Ω segments): beyond :data:`BLOCKS_GROWTH_MAX` the rounding it would amplify is
    avoided by the nested dissection (:func:`transfer_nested`), as for an extreme wordline
    decay.
    """
    g = np.asarray(g_phys, dtype=float)
    nt, r, c = g.shape
    # ‖E_i‖∞ ≤ 2·max g/gb: the devices plus the wordline's (smaller, positive) coupling
    growth = r * np.sqrt(2.0 * float(g.max(initial=0.0)) / gb)
    a, b, w0 = _wordline_generators(g, gw, gd)
    if not growth <= BLOCKS_GROWTH_MAX or not b.min(initial=1.0) > 1e-150:
        return transfer_nested(g, gw, gb, gd)
    # row by row (leading axis): −U = −G·W·G/gb, (−U)[k, l] = alpha_k·beta_l for k ≤ l
    alpha = np.ascontiguousarray(np.moveaxis(g * a, 1, 0)) / -gb
    beta = np.ascontiguousarray(np.moveaxis(g * b, 1, 0))
    g_gb = np.ascontiguousarray(np.moveaxis(g, 1, 0)) / gb
    # row i's unit input as currents into its bitline nodes
    f = np.ascontiguousarray(np.moveaxis(g * w0, 1, 0)[..., None]) * gd
    k = np.arange(c)
    lo = np.minimum.outer(k, k).ravel()
    hi = np.maximum.outer(k, k).ravel()
    diag = (slice(None), k, k)
    p = np.broadcast_to(np.eye(c), (nt, c, c)).copy()  # P_{i−1}
    d = np.empty((nt, c, c))  # D_{i−1}
    e = np.empty((nt, c, c))  # E_i, then P_{i−1}·E_i (buffers: no allocation per row)
    e_flat = e.reshape(nt, c * c)
    rows_lo = np.empty((nt, c * c))
    rows_hi = np.empty((nt, c * c))
    rhs = np.empty((nt, c, r + c))  # [P_{j−1} f_j]_j, then D_{r−1}
    for i in range(r):
        np.matmul(p, f[i], out=rhs[:, :, i : i + 1])
        np.take(alpha[i], lo, axis=1, out=rows_lo, mode="clip")  # clip: no buffer
        np.take(beta[i], hi, axis=1, out=rows_hi, mode="clip")
        np.multiply(rows_lo, rows_hi, out=e_flat)
        e[diag] += g_gb[i]
        if i == 0:
            d[...] = e
        else:
            d += np.matmul(p, e, out=rows_lo.reshape(nt, c, c))  # (a free buffer)
        p += d
    rhs[:, :, r:] = d
    x = np.linalg.solve(p, rhs)
    y = gb * x[:, :, r:]
    return x[:, :, :r].transpose(0, 2, 1).copy(), 0.5 * (y + y.transpose(0, 2, 1))


# --- nested dissection: the transfer of large tiles in O(n^3) --------------------------------


def _split_levels(n: int, depth: int) -> list[np.ndarray]:
    """Interval sizes of ``n`` halved ``depth`` times (``n//2`` first), leaves first: each
    level holds at most two sizes, ``⌊n/2^k⌋`` and ``⌈n/2^k⌉``."""
    levels = [np.array([n])]
    for _ in range(depth):
        s = levels[-1]
        levels.append(np.stack([s // 2, s - s // 2], axis=1).ravel())
    return levels[::-1]


#: stacks of at most this many blocks, with an interface of at least _LOOP_M_MIN nodes, are
#: eliminated one block at a time by Cholesky (potrf, trsm, then syrk straight into the
#: Schur complement: no temporary of its size); more, smaller blocks by NumPy's stacked
#: inverse and products (the per-call cost of the loop dominates there)
_LOOP_B_MAX = 1024
_LOOP_M_MIN = 8
#: children of at most this many rows and columns are joined four at a time (both halvings at
#: once) when rows and columns both have levels left
_JOIN4_MAX = 32


class _Arena:
    """Reused memory for the large arrays of nested-dissection transfers: a fresh allocation
    of megabytes costs its first-touch page faults every time (measured: a quarter of a
    256×257 transfer), so each level's Schur complements and each join's temporaries are
    carved from buffers that stay (per thread: :func:`_arenas`)."""

    def __init__(self) -> None:
        self._buf = np.empty(0)
        self._at = 0

    def reset(self) -> None:
        """Everything carved so far is free again (the caller no longer reads it)."""
        self._at = 0

    def carve(self, *shape: int) -> np.ndarray:
        n = math.prod(shape)
        if self._at + n > self._buf.size:  # a larger buffer; views of the old one stay valid
            size = max(2 * self._buf.size, n)
            if size > _ARENA_KEEP_MAX:  # too large to keep between transfers: a plain array
                return np.empty(shape)
            self._buf = np.empty(size)
            self._at = 0
        out = self._buf[self._at : self._at + n].reshape(shape)
        self._at += n
        return out


#: arenas grow to at most this many doubles (32 MiB: a 256×257 tile's fit; larger arrays are
#: plain allocations), so a thread keeps at most ~100 MiB between transfers
_ARENA_KEEP_MAX = 1 << 22
_arena_local = threading.local()


def _arenas() -> tuple[_Arena, _Arena, _Arena]:
    """This thread's arenas: two for the levels' Schur complements (one read while the
    other is written) and one for a join's temporaries."""
    if not hasattr(_arena_local, "arenas"):
        _arena_local.arenas = (_Arena(), _Arena(), _Arena())
    return _arena_local.arenas


def _eliminate(
    s: np.ndarray, kii: np.ndarray, kie: np.ndarray, scratch: _Arena | None = None
) -> None:
    """``s −= kieᵀ kii⁻¹ kie`` in place for stacks ``s`` (B, e, e), ``kii`` (B, m, m) (SPD)
    and ``kie`` (B, m, e) (overwritten); ``scratch`` holds the temporary. Only the lower
    triangle of ``s`` (row ≥ column) is guaranteed afterwards: every reader of a Schur
    complement takes its entries from there (:func:`_join_index`, the root)."""
    b, m, _ = kie.shape
    if b > _LOOP_B_MAX or m < _LOOP_M_MIN:
        tmp = scratch.carve(*s.shape) if scratch is not None else None
        s -= np.matmul(kie.transpose(0, 2, 1), np.linalg.inv(kii) @ kie, out=tmp)
        return
    potrf = sla.get_lapack_funcs("potrf", (kii,))
    trsm, syrk = sla.get_blas_funcs(("trsm", "syrk"), (kie,))
    for k in range(b):
        # C-ordered blocks read as Fortran are their transposes: kii is symmetric, kieᵀ
        # (e, m) is solved from the right (X Lᵀ = kieᵀ: X = (L⁻¹ kie)ᵀ), and the Fortran
        # upper triangle of sᵀ is the lower triangle of s
        chol, info = potrf(kii[k].T, lower=True, clean=False, overwrite_a=True)
        if info != 0:
            raise np.linalg.LinAlgError("nested-dissection interface is not positive definite")
        x = trsm(1.0, chol, kie[k].T, side=1, lower=True, trans_a=1, overwrite_b=True)
        syrk(-1.0, x, beta=1.0, c=s[k].T, trans=0, lower=False, overwrite_c=True)


@functools.cache
def _leaf_index(p: int, q: int, has_r: bool, has_t: bool) -> tuple[tuple[np.ndarray, ...], ...]:
    """A leaf's nodal matrix by parts: for the boundary block (``bnd × bnd``,
    :func:`_boundary`), the interior block and the interior-to-boundary block, the wordline
    and bitline segment stamps at unit conductance (flat) and the device stamps at unit
    conductance (``p·q`` rows, device ``(i, j)`` at ``i·q + j``): a leaf's part is
    ``g @ dev + gw·wl + gb·bl``, one small product for all leaves."""
    lx = np.arange(p)
    tx = p + np.arange(q)
    w = p + q + np.arange(p * q).reshape(p, q)
    b = w + p * q
    n = p + q + 2 * p * q
    kw, kb, kd = np.zeros((n, n)), np.zeros((n, n)), np.zeros((p * q, n, n))

    def stamp(k: np.ndarray, a: np.ndarray, c: np.ndarray) -> None:
        np.add.at(k, (a, a), 1.0)
        np.add.at(k, (c, c), 1.0)
        np.add.at(k, (a, c), -1.0)
        np.add.at(k, (c, a), -1.0)

    stamp(kw, lx, w[:, 0])
    stamp(kw, w[:, :-1].ravel(), w[:, 1:].ravel())
    if has_t:
        stamp(kb, tx, b[0])
    stamp(kb, b[:-1].ravel(), b[1:].ravel())
    for d, (wd, bd) in enumerate(zip(w.ravel(), b.ravel(), strict=True)):
        stamp(kd[d], np.array([wd]), np.array([bd]))
    parts = [lx, w[:, q - 1]] if has_r else [lx]
    bnd = np.concatenate([*parts, tx if has_t else [], b[p - 1, :]]).astype(int)
    used = np.ones(n, dtype=bool)
    if not has_t:
        used[tx] = False  # no nodes above the array's top row
    used[bnd] = False
    inner = np.flatnonzero(used)
    out = tuple(
        (
            kw[np.ix_(r, c)].ravel(),
            kb[np.ix_(r, c)].ravel(),
            kd[:, r[:, None], c].reshape(p * q, -1),
        )
        for r, c in ((bnd, bnd), (inner, inner), (inner, bnd))
    )
    for part in out:
        for arr in part:
            arr.flags.writeable = False  # cached: shared by every call
    return out


def _leaf(
    g: np.ndarray, gw: float, gb: float, has_r: bool, has_t: bool, out: _Arena, scratch: _Arena
) -> np.ndarray:
    """Schur complements (B, e, e) of leaf blocks with conductances ``g`` (B, p, q) (S)
    onto their boundary (:func:`_boundary`), every other node eliminated; carved from
    ``out`` (the temporaries from ``scratch``)."""
    nb, p, q = g.shape
    gf = g.reshape(nb, p * q)
    parts = []
    index = _leaf_index(p, q, has_r, has_t)
    for arena, (wl, bl, dev) in zip((out, scratch, scratch), index, strict=True):
        part = np.matmul(gf, dev, out=arena.carve(nb, dev.shape[1]))
        part += gw * wl + gb * bl
        parts.append(part)
    ee, ii, ie = parts
    e, m = math.isqrt(ee.shape[1]), math.isqrt(ii.shape[1])
    s = ee.reshape(nb, e, e)
    if m:
        _eliminate(s, ii.reshape(nb, m, m), ie.reshape(nb, m, e), scratch)
    return s


#: a block: (rows p, columns q, has R, has T) (:func:`_boundary`); a child of a join: its
#: first row and column inside the parent, then its block
_Block = tuple[int, int, bool, bool]
_Child = tuple[int, int, int, int, bool, bool]


def _boundary(r0: int, c0: int, p: int, q: int, has_r: bool, has_t: bool) -> list[tuple]:
    """A block's boundary nodes, the order of its Schur complement: ``L`` (the wordline
    nodes left of the block, p), ``R`` (its last column's wordline nodes, p; absent on the
    array's right edge), ``T`` (the bitline nodes above it, q; absent on the top edge), ``B``
    (its bottom row's bitline nodes, q). Named by their place in the tile: ``("w", row,
    col)`` the wordline node after column ``col`` (``col = -1``: the driver side), ``("b",
    row, col)`` the bitline node below row ``row`` (``row = -1``: above)."""
    nodes = [("w", r0 + i, c0 - 1) for i in range(p)]
    if has_r:
        nodes += [("w", r0 + i, c0 + q - 1) for i in range(p)]
    if has_t:
        nodes += [("b", r0 - 1, c0 + j) for j in range(q)]
    return nodes + [("b", r0 + p - 1, c0 + j) for j in range(q)]


@functools.cache
def _join_index(
    children: tuple[_Child, ...], parent: _Block
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where a join's ``kii`` (two terms: a node pair that two children share gets both),
    ``kie`` and parent ``S`` entries sit in the flat source ``[child 0 (e0²), child 1, …,
    0]`` (:func:`_join`). The interface is every child boundary node not on the parent's
    boundary (each is on exactly two children); the parent's nodes are on one child each."""
    ids: dict[tuple, int] = {}
    child_ids = [
        np.array([ids.setdefault(nd, len(ids)) for nd in _boundary(*ch)]) for ch in children
    ]
    outer = np.array([ids[nd] for nd in _boundary(0, 0, *parent)])
    count = np.zeros(len(ids), dtype=int)
    for c in child_ids:
        count[c] += 1
    inner = np.setdiff1d(np.arange(len(ids)), outer)
    assert np.all(count[inner] == 2) and np.all(count[outer] == 1)
    sizes = [c.size for c in child_ids]
    base = np.concatenate([[0], np.cumsum(np.square(sizes))])
    zero = int(base[-1])

    def index(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = np.full((rows.size, cols.size), zero)
        second = first.copy()
        for k, c in enumerate(child_ids):
            pos = np.full(len(ids), -1)
            pos[c] = np.arange(c.size)
            pr, pc = pos[rows][:, None], pos[cols][None, :]
            # the child's lower triangle (its only valid part: _eliminate)
            flat = base[k] + np.maximum(pr, pc) * sizes[k] + np.minimum(pr, pc)
            here = (pr >= 0) & (pc >= 0)
            np.copyto(second, flat, where=here & (first != zero))
            np.copyto(first, flat, where=here & (first == zero))
        return first.ravel(), second.ravel()

    kii_1, kii_2 = index(inner, inner)
    kie, no_kie = index(inner, outer)
    s, no_s = index(outer, outer)
    assert np.all(no_kie == zero) and np.all(no_s == zero)
    res = (kii_1, kii_2, kie, s)
    for arr in res:
        arr.flags.writeable = False  # cached: shared by every call
    return res


def _join(
    children: list[np.ndarray], index: tuple[np.ndarray, ...], out: _Arena, scratch: _Arena
) -> np.ndarray:
    """Schur complement of neighbouring blocks' union onto its boundary, their shared nodes
    eliminated (:func:`_join_index`). Each child (..., e_k, e_k) may be a strided view;
    returns (..., e, e), carved from ``out`` (the temporaries from ``scratch``)."""
    ix_1, ix_2, ix_kie, ix_s = index
    lead = children[0].shape[:-2]
    nb, m, e = math.prod(lead), math.isqrt(ix_1.size), math.isqrt(ix_s.size)
    # one flat source: every part below is one gather from it (no per-side copies)
    parts = [c.reshape(*lead, c.shape[-1] ** 2) for c in children]
    width = sum(c.shape[-1] for c in parts) + 1
    src = scratch.carve(*lead, width)
    np.concatenate([*parts, np.zeros((*lead, 1))], axis=-1, out=src)
    src = src.reshape(nb, width)
    # (mode "clip": the indices are in range, and "raise" would buffer the output)
    kii = np.take(src, ix_1, axis=1, out=scratch.carve(nb, m * m), mode="clip")
    kii += np.take(src, ix_2, axis=1, out=scratch.carve(nb, m * m), mode="clip")
    kie = np.take(src, ix_kie, axis=1, out=scratch.carve(nb, m * e), mode="clip")
    s = np.take(src, ix_s, axis=1, out=out.carve(nb, e * e), mode="clip").reshape(nb, e, e)
    _eliminate(s, kii.reshape(nb, m, m), kie.reshape(nb, m, e), scratch)
    return s.reshape(*lead, e, e)


def _pick(a: np.ndarray, axis: int, idx: np.ndarray) -> np.ndarray:
    """``a`` at positions ``idx`` along ``axis``: a view where they are evenly spaced."""
    step = int(idx[1] - idx[0]) if idx.size > 1 else 1
    if step > 0 and np.all(np.diff(idx) == step):
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(int(idx[0]), int(idx[-1]) + 1, step)
        return a[tuple(sl)]
    return np.take(a, idx, axis=axis)


def transfer_nested(
    g_phys: np.ndarray, gw: float, gb: float, gd: float, leaf_depth: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Exact transfer of a stack of tiles by nested dissection (dense Schur complements).

    ``g_phys`` (T, rows, c) device conductances in physical column order (S); ``gw``,
    ``gb``, ``gd`` the wordline-segment, bitline-segment and driver conductances (S).
    Returns ``m`` (T, rows, c) (S: current into TIA k per volt on row i) and ``y``
    (T, c, c) (S), as :meth:`CrossbarNetwork.transfer_full` in physical order.
    """
    g_phys = np.asarray(g_phys, dtype=float)
    nt, r, c = g_phys.shape
    depth_r = max(int(np.floor(np.log2(r))) - leaf_depth, 0)
    depth_c = max(int(np.floor(np.log2(c))) - leaf_depth, 0)
    rl, cl = _split_levels(r, depth_r), _split_levels(c, depth_c)

    def groups(sizes: np.ndarray, edge: int) -> list[tuple[int, bool, np.ndarray]]:
        # intervals grouped by (size, on the open edge): every block of a group has the
        # same layout, and the group is one stacked computation
        out = []
        for n in np.unique(sizes):
            for on_edge in (True, False):
                idx = np.flatnonzero((sizes == n) & ((np.arange(sizes.size) == edge) == on_edge))
                if idx.size:
                    out.append((int(n), on_edge, idx))
        return out

    # blocks[(p, top, q, right)] = (row intervals, col intervals, S (T, nI, nJ, e, e))
    blocks: dict[tuple[int, bool, int, bool], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    r0 = np.concatenate([[0], np.cumsum(rl[0])[:-1]])
    c0 = np.concatenate([[0], np.cumsum(cl[0])[:-1]])
    # each level's Schur complements alternate between two arenas (one is read while the
    # other is written); the scratch arena is free again after every join
    *levels, scratch = _arenas()
    levels[0].reset()
    step = 0
    for p, top, ri in groups(rl[0], 0):
        for q, right, ci in groups(cl[0], cl[0].size - 1):
            rows = (r0[ri][:, None] + np.arange(p))[:, None, :, None]
            cols = (c0[ci][:, None] + np.arange(q))[None, :, None, :]
            gl = g_phys[:, rows, cols].reshape(-1, p, q)
            scratch.reset()
            s = _leaf(gl, gw, gb, not right, not top, levels[0], scratch)
            blocks[(p, top, q, right)] = (ri, ci, s.reshape(nt, ri.size, ci.size, *s.shape[1:]))
    lev_r, lev_c = 0, 0
    while lev_r < len(rl) - 1 or lev_c < len(cl) - 1:
        step += 1
        out = levels[step % 2]
        out.reset()  # the level before last: nothing reads it any more
        more_r, more_c = lev_r < len(rl) - 1, lev_c < len(cl) - 1
        # halve the longer side; small blocks both at once (a four-way join: one pass over
        # their Schur complements instead of two, where moving them costs more than the
        # larger interface's arithmetic)
        cols_first = more_c and (not more_r or cl[lev_c].max() <= rl[lev_r].max())
        both = more_r and more_c and max(cl[lev_c].max(), rl[lev_r].max()) <= _JOIN4_MAX
        split_c, split_r = cols_first or both, not cols_first or both
        lev_r, lev_c = lev_r + split_r, lev_c + split_c
        new: dict[tuple[int, bool, int, bool], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for p, top, rj in groups(rl[lev_r], 0):
            row_parts = (
                [(0, p // 2, top, 2 * rj), (p // 2, p - p // 2, False, 2 * rj + 1)]
                if split_r
                else [(0, p, top, rj)]
            )
            for q, right, cj in groups(cl[lev_c], cl[lev_c].size - 1):
                col_parts = (
                    [(0, q // 2, False, 2 * cj), (q // 2, q - q // 2, right, 2 * cj + 1)]
                    if split_c
                    else [(0, q, right, cj)]
                )
                kids, shapes = [], []
                for r_off, pk, tk, rk in row_parts:
                    for c_off, qk, rt, ck in col_parts:
                        ri, ci, sk = blocks[(pk, tk, qk, rt)]
                        sk = _pick(
                            _pick(sk, 1, np.searchsorted(ri, rk)), 2, np.searchsorted(ci, ck)
                        )
                        kids.append(sk)
                        shapes.append((r_off, c_off, pk, qk, not rt, not tk))
                index = _join_index(tuple(shapes), (p, q, not right, not top))
                scratch.reset()
                new[(p, top, q, right)] = (rj, cj, _join(kids, index, out, scratch))
        blocks = new
    ((_, _, s_root),) = blocks.values()
    k = s_root[:, 0, 0]  # (T, r + c, r + c) on [L (the driver nodes), B (bottom bitline)]
    k = np.where(np.tri(r + c, dtype=bool), k, k.transpose(0, 2, 1))  # from its lower triangle
    a = k[:, :r, :r] + gd * np.eye(r)
    k_lb = k[:, :r, r:]
    # only the inverse's B columns are needed: eliminate L first (Schur complement on B)
    x = np.linalg.solve(a, k_lb)  # A⁻¹ K_LB
    z_bb = np.linalg.inv(k[:, r:, r:] + gb * np.eye(c) - k_lb.transpose(0, 2, 1) @ x)
    m = -gd * gb * (x @ z_bb)  # (K⁻¹)_LB = −A⁻¹ K_LB S⁻¹
    y = gb * np.eye(c) - gb * gb * z_bb
    return m, y
