"""What-if cards: a variant of the library's card in fields the surrogates do not depend on."""

from __future__ import annotations

from cosim.card import Card
from cosim.library import SurrogateLibrary

# Card fields that the characterized circuits do not depend on: a what-if study may change
# them without characterizing again. Array size is among them because the crossbar
# surrogate is physical (fitted at other sizes than the card's and validated held out at it);
# evaluations at sizes never validated say so in their results.
WHAT_IF_FIELDS = {
    "device": {
        "level_bits",
        "prog_noise_scale",
        "read_noise_scale",
        "drift_t0_s",
        "drift_nu_mean",
        "drift_nu_sigma",
        "stuck_on_rate",
        "stuck_off_rate",
    },
    "array": {"rows", "cols", "bias_rows"},
    "dac": {"e_conv_j", "area_m2", "bits"},
    # energy only: the op-amp netlist draws i_quiescent_a between its (ideal) rails, which
    # changes no signal; the rails themselves set the characterized output swing
    "opamp": {"i_quiescent_a"},
    # the read window sets the read energy, the op-amps' energy and the read-noise
    # bandwidth of the device model (none of them characterized)
    "tia": {"area_m2", "t_read_s", "tuning_buffers_per_layer", "tuning_dacs_per_layer"},
    "subtractor": {"area_m2"},
    "adc": {"area_m2", "columns_per_adc", "e_conv_j"},
    "sense_row": {"area_m2", "max_skip_bits", "margin_rel", "enabled", "offset_n_sigma"},
    "digital": {"e_add_j", "e_activation_j", "area_per_column_m2"},
    "area": {"device_cell_m2"},
}


def what_if_card(library: SurrogateLibrary, card: Card) -> Card:
    """``card`` if it differs from the library's only in fields the surrogates don't depend
    on (:data:`WHAT_IF_FIELDS`); otherwise a :class:`~cosim.errors.LibraryError` naming the
    first field that needs a new characterization."""
    from cosim.errors import LibraryError

    a, b = library.card.to_dict(), card.to_dict()
    for sec, vals in b.items():
        if sec == "card":
            continue
        for key, v in vals.items():
            if a[sec][key] != v and key not in WHAT_IF_FIELDS.get(sec, set()):
                raise LibraryError(
                    f"card '{card.name}' changes {sec}.{key} ({a[sec][key]!r} -> {v!r}), which "
                    f"the library {library.path} was characterized with; run cosim "
                    "characterize for this card"
                )
    if card.sense_row.enabled and "sense_row" not in library.surrogates:
        raise LibraryError(
            f"card '{card.name}' enables the sense row but the library "
            f"{library.path} has no sense_row block"
        )
    return card
