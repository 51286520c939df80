"""Crossbar netlist: NVM devices at every wordline/bitline crossing, with wire parasitics.

Geometry (row ``i`` = wordline, column ``j`` = bitline)::

    DAC_i ─ r_driver ─ d_i ─ r_wl ─ w_i_0 ─ r_wl ─ w_i_1 ─ … ─ w_i_{C-1}
                                      │              │
                                   device         device
                                      │              │
                     b_0_j (top) ─ r_bl ─ b_1_j ─ … ─ b_{R-1}_j ─ r_bl ─ t_j (TIA input)

Every wordline has one ``r_wl`` segment per cell (the first between the driver and cell 0)
and every bitline one ``r_bl`` segment per cell (the last between cell R−1 and the TIA).
An optional *sense line* (the sparsity-sensing "row" of Bao et al., which in this
orientation is an extra column) sits nearest the drivers, before column 0, with every device
at ``g_sense_s``; its current is reported as the last column.

Wordlines are driven at ``-V_i`` (see :mod:`netlists`). The crossbar-only netlist ends each
bitline (and the sense line) in a 0 V source standing in for an ideal virtual ground; the
MAC-unit netlist connects them to TIAs instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device_models import DeviceModel
from netlists.common import branch, index_sweep, num, pwl_of_index


@dataclass(frozen=True)
class CrossbarParams:
    """Geometry and parasitics of one crossbar tile.

    Parameters
    ----------
    rows, cols
        Wordlines and bitlines (bitlines exclude the sense line).
    r_wire_wl_ohm, r_wire_bl_ohm
        Resistance of one cell segment of a wordline / bitline (ohm).
    r_driver_ohm
        Output resistance of each wordline driver (ohm).
    sense
        Add the sparsity-sensing line.
    g_sense_s
        Conductance of every sense-line device (S).
    """

    rows: int
    cols: int
    r_wire_wl_ohm: float
    r_wire_bl_ohm: float
    r_driver_ohm: float
    sense: bool = False
    g_sense_s: float = 0.0

    def __post_init__(self) -> None:
        if self.rows < 1 or self.cols < 1:
            raise ValueError("CrossbarParams.rows and cols must be >= 1")
        for name in ("r_wire_wl_ohm", "r_wire_bl_ohm", "r_driver_ohm"):
            if getattr(self, name) < 0:
                raise ValueError(f"CrossbarParams.{name} must be >= 0")
        if self.sense and self.g_sense_s <= 0:
            raise ValueError("CrossbarParams.g_sense_s must be > 0 when sense=True")

    @property
    def n_lines(self) -> int:
        """Bitlines including the sense line."""
        return self.cols + (1 if self.sense else 0)

    def with_g_matrix(self, g: np.ndarray) -> np.ndarray:
        """The full conductance matrix (rows, n_lines): ``g`` plus the sense column.

        A matrix that already has ``n_lines`` columns is taken as is (a programmed sense
        line with its own variation).
        """
        g = np.asarray(g, dtype=float)
        if not np.all(np.isfinite(g)) or np.any(g < 0):
            raise ValueError("conductances must be finite and >= 0 (NaN, inf or negative found)")
        if self.sense and g.shape == (self.rows, self.n_lines):
            return g  # already holds the (programmed) sense column
        if g.shape != (self.rows, self.cols):
            raise ValueError(
                f"conductance matrix has shape {g.shape}, the crossbar is {(self.rows, self.cols)}"
            )
        if self.sense:
            return np.concatenate([g, np.full((self.rows, 1), self.g_sense_s)], axis=1)
        return g


def _wire(name: str, a: str, b: str, r: float) -> str:
    # a 0-ohm segment still needs an element; a tiny resistor keeps the topology identical
    return f"R{name} {a} {b} {num(r if r > 0 else 1e-6)}"


def crossbar_elements(
    p: CrossbarParams,
    device: DeviceModel,
    g: np.ndarray,
    driver_nodes: list[str],
    bitline_ends: list[str],
) -> list[str]:
    """Netlist lines of the array itself, between driver nodes and bitline end nodes.

    ``driver_nodes[i]`` is the node behind the driver resistance of row ``i``;
    ``bitline_ends[j]`` is where bitline ``j`` (the sense line last) meets its TIA.
    Physical column order: sense line (if any) nearest the drivers, then 0..cols-1.
    """
    gf = p.with_g_matrix(g)
    order = ([p.cols] if p.sense else []) + list(range(p.cols))  # left-to-right on a wordline
    lines: list[str] = []
    for i in range(p.rows):
        lines.append(_wire(f"drv{i}", driver_nodes[i], f"d{i}", p.r_driver_ohm))
        prev = f"d{i}"
        for j in order:
            node = f"w{i}_{j}"
            lines.append(_wire(f"wl{i}_{j}", prev, node, p.r_wire_wl_ohm))
            prev = node
            lines.append(device.spice_element(f"dev{i}_{j}", f"b{i}_{j}", node, gf[i, j]))
            lines.append(
                _wire(
                    f"bl{i}_{j}",
                    f"b{i}_{j}",
                    f"b{i + 1}_{j}" if i < p.rows - 1 else bitline_ends[j],
                    p.r_wire_bl_ohm,
                )
            )
    return lines


def crossbar_netlist(
    p: CrossbarParams,
    device: DeviceModel,
    g: np.ndarray,
    inputs_v: np.ndarray,
    title: str = "cosim crossbar",
) -> str:
    """A DC-sweep netlist that applies each input vector and measures column currents.

    Parameters
    ----------
    p
        Crossbar geometry.
    device
        Device model (writes each device's element; nonlinear I–V as B-sources).
    g
        Conductances (S), shape ``(rows, cols)``.
    inputs_v
        Input magnitudes (V), shape ``(n_vectors, rows)``; row ``i`` is driven at ``-V_i``.
    title
        Netlist title (first line).

    Returns
    -------
    str
        Netlist text. Read results with :func:`crossbar_vectors` / :func:`column_currents`.

    Examples
    --------
    >>> from device_models import IdealDevice
    >>> p = CrossbarParams(2, 2, 1.0, 1.0, 0.0)
    >>> text = crossbar_netlist(p, IdealDevice(1, 0, 1e-5, 0.2), np.full((2, 2), 1e-5),
    ...                         np.array([[0.1, 0.2]]))
    >>> text.splitlines()[0]
    'cosim crossbar'
    """
    v = np.asarray(inputs_v, dtype=float)
    if v.ndim != 2 or v.shape[1] != p.rows:
        raise ValueError(f"inputs_v must have shape (n, {p.rows}), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("inputs_v holds NaN or inf")
    n = v.shape[0]
    src, analysis = index_sweep(n)
    lines = [title, src]
    drivers = []
    for i in range(p.rows):
        lines.append(f"Bdac{i} dac{i} 0 V=-{pwl_of_index(v[:, i])}")
        lines.append(f"Vdrv{i} dac{i} drv{i} 0")
        drivers.append(f"drv{i}")
    ends = [f"t{j}" for j in range(p.n_lines)]
    lines += crossbar_elements(p, device, g, drivers, ends)
    for j in range(p.n_lines):
        lines.append(f"Vcol{j} t{j} 0 0")
    lines.append(".save " + " ".join(crossbar_vectors(p)))
    lines.append(analysis)
    lines.append(".end")
    return "\n".join(lines) + "\n"


def crossbar_vectors(p: CrossbarParams) -> tuple[str, ...]:
    """Vectors a crossbar run returns: column currents, then driver currents."""
    return tuple(branch(f"Vcol{j}") for j in range(p.n_lines)) + tuple(
        branch(f"Vdrv{i}") for i in range(p.rows)
    )


def column_currents(result, p: CrossbarParams, n: int) -> np.ndarray:
    """Column currents (A, positive = drawn out of the TIA node), shape ``(n, n_lines)``."""
    cols = [np.asarray(result[branch(f"Vcol{j}")])[:n] for j in range(p.n_lines)]
    return -np.stack(cols, axis=1)


def driver_currents(result, p: CrossbarParams, n: int) -> np.ndarray:
    """Current each driver sinks from its wordline (A, positive), shape ``(n, rows)``."""
    rows = [np.asarray(result[branch(f"Vdrv{i}")])[:n] for i in range(p.rows)]
    return -np.stack(rows, axis=1)
