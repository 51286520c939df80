"""Published values the study reproduces, with where each comes from.

Sources (text copies in the project's literature folder):

* **Bao et al. 2022** — H. Bao et al., "Quantization and sparsity-aware processing for
  energy-efficient NVM-based convolutional neural networks", Front. Electron. 3:954661.
  LeNet-5 on MNIST, weights clipped to [-0.25, 0.25], activations to [0, 2], SGD with batch
  200 for 300 iteration cycles; PCM devices (Joshi et al. 2020) and converter figures from
  the ADC survey.
* **García-Redondo et al. 2020** — F. García-Redondo, S. Das, G. Rosendale, "Training DNN IoT
  Applications for Deployment on Analog NVM Crossbars", IJCNN 2020 (arXiv:1910.13850): an
  FC network on UCI HAR and a six-conv CNN on CIFAR-10, PCM with 4-bit and 2-bit devices,
  custom 4/8-bit ADCs and DACs in 55 nm.
"""

from __future__ import annotations

from typing import Any

BAO = "Bao et al. 2022 (Front. Electron. 3:954661)"
GARCIA = "García-Redondo et al., IJCNN 2020"

REFERENCES: dict[str, dict[str, Any]] = {
    "accuracy_grid": {
        "source": f"{BAO}, Fig. 2B and Sec. 3.1",
        "network": "LeNet-5, MNIST",
        "W4A3": 0.9882,
        "float": 0.9908,
        "text": "LeNet-5 on MNIST: W4A3 98.82 % vs 99.08 % float; accuracy saturates from "
        "about 4-bit weights and 3-bit activations and falls steeply at 1 bit",
    },
    "clip_bound": {
        "source": f"{BAO}, Fig. 2A",
        "best_hi": 2.0,
        "text": "best accuracy with the activation clip range [0, 2]; both smaller and larger "
        "upper bounds lose accuracy",
    },
    "robustness_nvw": {
        "source": f"{BAO}, Fig. 3A",
        "criterion": "largest nvw that keeps over 90 % accuracy (MNIST)",
        "text": "lower weight precision is markedly more robust to weight variation; the "
        "activation precision hardly changes it",
    },
    "robustness_nvw_by_a": {
        "source": f"{BAO}, Fig. 3B and Sec. 3.2",
        "criterion": "largest nvw that keeps over 90 % accuracy (MNIST)",
        "text": "the robustness to weight variation shows no distinct tendency across "
        "activation precisions (1-8 bits; no number given)",
    },
    "robustness_nva": {
        "source": f"{BAO}, Fig. 4",
        "text": "lower activation precision is markedly more robust to the converters' "
        "comparison-level variation; the weight precision barely matters",
    },
    "activation_cdf": {
        "source": f"{BAO}, Fig. 5",
        "W4A3": {"fewer_bits": 2, "fraction": 0.99},
        "W8A8": {"fewer_bits": 4, "fraction": 0.97},
        "text": "over 99 % of W4A3 activations need 2 fewer bits than the maximum (codes "
        "<= 1 of 7), over 97 % of W8A8 activations 4 fewer bits (codes < 16 of 255)",
    },
    "adc_energy_vs_rows": {
        "source": f"{BAO}, Fig. 6E",
        "normalized_adc_energy_at_128": {"W4A3": 0.47, "W8A8": 0.21},
        "at_512": {"W4A3": 1.0, "W8A8": 0.82},
        "text": "ADC energy at 128 rows: 47 % (W4A3) and 21 % (W8A8) of the original; at 512 "
        "rows no saving for W4A3 and still over 18 % for W8A8",
    },
    "mac_efficiency": {
        "source": f"{BAO}, Fig. 6F and abstract",
        "improvement_at_128": {"W8A8": 2.98, "W4A3": 1.15},
        "improvement_range": {"W8A8": {"32": 4.98, "512": 1.18}, "W4A3": {"32": 1.20}},
        "text": "MAC-unit energy-efficiency improvement at 128 x 128, sense row included: "
        "2.98x (W8A8) and 1.15x (W4A3); 4.98x to 1.18x for W8A8 from 32 to 512 rows",
    },
    "periphery_savings": {
        "source": f"{GARCIA} (final abstract); arXiv:1910.13850v2",
        "area_fraction_saved": 0.80,
        "energy_fraction_saved": 0.45,
        "arxiv_v2": {"area_fraction_saved": 0.67, "energy_fraction_saved": 0.40},
        # the HAR network: 2-bit, only-positive weights (final abstract); energy saved on
        # HAR "up to 55 %" in the authors' blog (45 % in the abstract, for the combination)
        "har": {"accuracy": 0.9291, "float_accuracy": 0.95, "energy_fraction_saved_blog": 0.55},
        # CIFAR-10: 40 % of the convolution filters unipolar stays competitive (Fig. 8)
        "cnn_unipolar_fraction": 0.4,
        "text": "shared periphery with unipolar weights versus per-layer tuned periphery "
        "with differential columns: up to 80 % area and 45 % energy saved (arXiv v2: 67 % "
        "and 40 %; the authors' blog: up to 80 % area on CIFAR-10, 55 % energy on HAR)",
    },
    "unipolar_tradeoff": {
        "source": f"{GARCIA}, Fig. 8 (right)",
        "competitive_fraction": 0.4,
        "text": "about 40 % of the filters unipolar keeps competitive accuracy (six-conv CNN "
        "on CIFAR-10); more unipolar filters save more area and energy but cost accuracy",
    },
    "adc_architectures": {
        "source": f"{BAO}, Sec. 3.1 and Fig. 2C",
        "text": "converter energy and area grow steeply with precision (Murmann's ADC survey); "
        "at 1-bit activations the converters can be replaced by compact circuits such as "
        "voltage comparators; 3-bit activations balance efficiency and accuracy (no number "
        "is given for a comparator-based converter)",
    },
    "accumulation": {
        "source": f"{BAO}, Fig. 6E/F and Sec. 4",
        "text": "with the sensing row the ADC energy falls to 47 % (W4A3) and 21 % (W8A8) of "
        "the original at 128 rows, and the MAC unit's energy efficiency rises 1.15x (W4A3) and "
        "2.98x (W8A8); at 512 rows the method fails for W4A3 but still saves over 18 % for "
        "W8A8; it helps most when activations are sparse and the ADC dominates the energy",
    },
}
