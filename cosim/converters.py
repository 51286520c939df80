"""ADC architectures as plug-ins: what an architecture provides, and the registry of them.

The card's ``[adc] architecture`` names a registered :class:`AdcArchitecture`; the
characterization, the library loader and the engine reach the converter only through it,
so a new architecture is one object registered under a new name:

* its **netlist generator**: the nominal circuit parameters of a card, a ``.subckt`` with
  the shared pin order (``vin clk start vref vdd skip1.. b{N-1}..b0 done``), a testbench of
  many conversions and its decoder;
* its **characterization sweep**: ``characterize(ctx)`` runs SPICE, fits the surrogate and
  validates it on held-out runs, returning the library block (``block``);
* its **fitted surrogate** (:class:`AdcSurrogate`): ``convert``, energy per conversion as a
  function of the skipped MSB cycles (and optionally the output code), code transitions,
  ``to_dict``; the architecture decodes it (``from_dict``, ``models_by_bits``) and builds
  the ideal converter;
* its **Monte-Carlo instances**: ``sample_instance`` draws one instance from a generator and
  returns the surrogate *and* the netlist parameters of that same instance (one draw, so
  SPICE can rebuild what the engine simulated).

The registry maps names to architectures or to ``"module:attribute"`` strings loaded on
first use, so that this module (which :mod:`cosim.card` imports to validate
``adc.architecture``) stays free of NumPy and of every implementation.

Examples
--------
>>> adc_architecture_names()
('flash', 'sar')
>>> arch = adc_architecture("sar")
>>> arch.block, arch.kind
('sar_adc', 'sar_adc')
>>> adc_architecture("pipe")
Traceback (most recent call last):
...
cosim.errors.CosimError: unknown ADC architecture 'pipe'; the registered ones are: flash, sar
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cosim.errors import CosimError

if TYPE_CHECKING:
    import numpy as np

    from cosim.card import Card
    from cosim.characterize.context import BlockResult, CharContext


@runtime_checkable
class AdcSurrogate(Protocol):
    """A fitted ADC instance: what the engine, the library and the sense row use.

    ``kind`` names it in ``library.json``; ``bits``, ``v_ref_v`` (full scale, V) and
    ``conversion_time_s`` describe the converter.
    """

    # read-only: the fitted models are frozen dataclasses

    @property
    def kind(self) -> str: ...

    @property
    def bits(self) -> int: ...

    @property
    def v_ref_v(self) -> float: ...

    @property
    def conversion_time_s(self) -> float: ...

    def convert(self, v: Any, skip: Any = 0) -> np.ndarray:
        """int64 codes of input voltages ``v`` (any shape) with ``skip`` MSB cycles skipped
        (broadcastable; ``0 .. bits-1``)."""
        ...

    def energy_per_conversion_j(self, skip: Any = 0, codes: Any = None) -> np.ndarray:
        """Energy of one conversion (J) with ``skip`` skipped MSB cycles (any shape): the
        energy saved per skipped cycle is the difference between skip counts; with
        ``codes`` (broadcastable) its dependence on the output code."""
        ...

    def thresholds(self, skip: int = 0) -> np.ndarray:
        """Code transition voltages (V): entry ``k - 1`` is the lowest input giving a code
        ``>= k``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values and NumPy arrays; the architecture's ``from_dict`` inverts it."""
        ...


@dataclass(frozen=True)
class AdcInstance:
    """One Monte-Carlo ADC instance: its surrogate and the netlist parameters of the same
    instance (from the same draws)."""

    surrogate: AdcSurrogate
    params: Any


@runtime_checkable
class AdcArchitecture(Protocol):
    """What an ADC architecture provides (see the module docstring).

    Attributes
    ----------
    name
        The card's ``adc.architecture`` value.
    block
        Name of its block in the surrogate library (``library.json`` ``blocks``).
    kind
        ``kind`` of its surrogate in the library.
    """

    name: str
    block: str
    kind: str

    # -- netlist generator ------------------------------------------------------------
    def nominal_params(self, card: Card, bits: int | None = None) -> Any:
        """Netlist parameters of the card's nominal converter (``bits`` default the card's)."""
        ...

    def subckt(self, params: Any, name: str | None = None) -> str:
        """``.subckt`` text of one instance, pins :meth:`subckt_pins`."""
        ...

    def subckt_name(self, params: Any) -> str:
        """The default subcircuit name of ``params`` (stable, unique per instance)."""
        ...

    def subckt_pins(self, bits: int) -> list[str]:
        """Pins in order: ``vin clk start vref vdd skip1..skip{N-1} b{N-1}..b0 done``."""
        ...

    def testbench_netlist(self, params: Any, v_in: np.ndarray, skip: Any = 0) -> str:
        """One simulation converting every ``v_in[f]`` with ``skip[f]`` skipped cycles."""
        ...

    def testbench_vectors(self) -> tuple[str, ...]:
        """Vectors :meth:`decode_testbench` needs from a testbench run."""
        ...

    def decode_testbench(self, result: Any, params: Any, n: int) -> dict[str, np.ndarray]:
        """``codes`` (int64, ``(n,)``) and the architecture's probes of a testbench run."""
        ...

    # -- characterization ---------------------------------------------------------------
    def characterize(self, ctx: CharContext) -> BlockResult:
        """Run the SPICE sweep, fit the surrogate, validate it on held-out runs."""
        ...

    # -- surrogate ------------------------------------------------------------------------
    def ideal(self, bits: int, v_ref_v: float) -> AdcSurrogate:
        """The ideal converter: ``clip(floor(v / LSB + 1/2), 0, 2**bits - 1)``."""
        ...

    def from_dict(self, d: Mapping[str, Any]) -> AdcSurrogate:
        """Decode a stored surrogate (a ``LibraryError`` when malformed)."""
        ...

    def models_by_bits(
        self, extra: Mapping[str, Any], bits: int | None = None
    ) -> dict[int, AdcSurrogate]:
        """The nominal at every stored resolution, from the block's ``extra``."""
        ...

    # -- Monte-Carlo instances ------------------------------------------------------------
    def sample_instance(
        self,
        nominal: AdcSurrogate | Mapping[int, AdcSurrogate],
        card: Card,
        rng: np.random.Generator,
        bits: int | None = None,
    ) -> AdcInstance:
        """One instance around the fitted nominal (or the table of them, ``bits`` picks)."""
        ...


#: name -> architecture, or "module:attribute" loaded on first use
_REGISTRY: dict[str, AdcArchitecture | str] = {
    "sar": "cosim.surrogates.adc.architecture:SAR",
    "flash": "cosim.surrogates.adc.flash_architecture:FLASH",
}
#: name -> the most bits the architecture is built for (the card checks ``adc.bits``
#: against it without importing the architecture); absent: the card's own range
_MAX_BITS: dict[str, int] = {"flash": 4}
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def register_adc(
    name: str, arch: AdcArchitecture | str, *, replace: bool = False, max_bits: int | None = None
) -> None:
    """Register ``arch`` as the ADC architecture ``name`` (the card's ``adc.architecture``).

    Parameters
    ----------
    name
        Lower-case identifier (``[a-z][a-z0-9_]*``).
    arch
        An object following :class:`AdcArchitecture` whose ``name`` is ``name``, or a
        ``"module:attribute"`` string naming one, imported on first use.
    replace
        Allow replacing an architecture registered under ``name``.
    max_bits
        The most bits the architecture is built for; a card asking for more is refused
        (:func:`adc_max_bits`). None: the card's own range.

    Raises
    ------
    CosimError
        A malformed name, a name already taken (without ``replace``), or an object that
        does not follow the protocol.

    Examples
    --------
    >>> register_adc("sar", "cosim.surrogates.adc.architecture:SAR")
    Traceback (most recent call last):
    ...
    cosim.errors.CosimError: an ADC architecture is already registered as 'sar'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise CosimError(f"an ADC architecture name must match [a-z][a-z0-9_]*, got {name!r}")
    if name in _REGISTRY and not replace:
        raise CosimError(f"an ADC architecture is already registered as {name!r}")
    if isinstance(arch, str):
        if arch.count(":") != 1 or not all(arch.split(":")):
            raise CosimError(f"ADC architecture {name!r}: {arch!r} is not 'module:attribute'")
    else:
        _check_arch(name, arch)
    if max_bits is not None and (
        isinstance(max_bits, bool) or not isinstance(max_bits, int) or max_bits < 1
    ):
        raise CosimError(f"ADC architecture {name!r}: max_bits must be an integer >= 1")
    _REGISTRY[name] = arch
    _MAX_BITS.pop(name, None)
    if max_bits is not None:
        _MAX_BITS[name] = max_bits


def unregister_adc(name: str) -> None:
    """Remove the architecture ``name`` (for tests and plug-ins that replace one)."""
    if name not in _REGISTRY:
        raise CosimError(_unknown(name))
    del _REGISTRY[name]
    _MAX_BITS.pop(name, None)


def adc_architecture_names() -> tuple[str, ...]:
    """The registered architecture names, sorted (nothing is imported)."""
    return tuple(sorted(_REGISTRY))


def adc_max_bits(name: str) -> int | None:
    """The most bits the architecture ``name`` is built for, or None (no limit beyond the
    card's range; also for a name that is not registered: the card names that itself).

    Examples
    --------
    >>> adc_max_bits("flash"), adc_max_bits("sar")
    (4, None)
    """
    return _MAX_BITS.get(name)


def adc_architecture(name: str) -> AdcArchitecture:
    """The architecture registered as ``name``.

    Raises
    ------
    CosimError
        ``name`` is not registered (the message lists the registered ones), or its
        ``"module:attribute"`` does not load an architecture.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise CosimError(_unknown(name))
    arch = _REGISTRY[name]
    if isinstance(arch, str):
        module, attr = arch.split(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise CosimError(
                f"ADC architecture {name!r} cannot be loaded from {arch}: {exc}"
            ) from None
        arch = _check_arch(name, obj)
        _REGISTRY[name] = arch
    return arch


def adc_architecture_for_kind(kind: str) -> AdcArchitecture | None:
    """The architecture whose surrogate ``kind`` is ``kind`` (the library's decoder), or
    None."""
    for name in adc_architecture_names():
        arch = adc_architecture(name)
        if arch.kind == kind:
            return arch
    return None


def _unknown(name: Any) -> str:
    known = ", ".join(adc_architecture_names())
    return f"unknown ADC architecture {name!r}; the registered ones are: {known}"


def _members(proto: type) -> list[str]:
    """The attributes and methods a protocol class declares."""
    names = set(getattr(proto, "__annotations__", {}))
    names.update(k for k, v in vars(proto).items() if callable(v) and not k.startswith("_"))
    return sorted(names)


def _check_arch(name: str, arch: Any) -> AdcArchitecture:
    missing = [m for m in _members(AdcArchitecture) if not hasattr(arch, m)]
    if missing:
        raise CosimError(
            f"ADC architecture {name!r} does not follow the AdcArchitecture protocol "
            f"(lacks {', '.join(missing)})"
        )
    if arch.name != name:
        raise CosimError(f"ADC architecture {name!r} calls itself {arch.name!r}")
    return arch
