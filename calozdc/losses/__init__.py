"""calozdc.losses: physics losses, each a pure function plus a ``keras.losses.Loss`` class.

All use ``keras.ops`` only (every backend) and compute in float32 even under mixed
precision. Pure functions take ``(y_true, y_pred, ...)`` and return one value per sample, so
they can be added as weighted terms inside custom train steps; the classes go into
``compile(loss=...)``.
"""

from calozdc.losses.asymmetric_exponential_mse import (
    AsymmetricExponentialMSE,
    asymmetric_exponential_mse,
)
from calozdc.losses.channel_wasserstein_loss import (
    ChannelWassersteinLoss,
    channel_sums,
    channel_wasserstein_loss,
)
from calozdc.losses.energy_conservation_loss import (
    EnergyConservationLoss,
    energy_conservation_loss,
)
from calozdc.losses.longitudinal_profile_loss import (
    LongitudinalProfileLoss,
    fit_gamma_profile,
    gamma_layer_fractions,
    longitudinal_profile_loss,
)
from calozdc.losses.mask_value_loss import MaskValueLoss, mask_value_loss
from calozdc.losses.transverse_profile_loss import (
    TransverseProfileLoss,
    core_tail_cdf,
    core_tail_density,
    transverse_profile_loss,
)

__all__ = [
    "AsymmetricExponentialMSE",
    "ChannelWassersteinLoss",
    "EnergyConservationLoss",
    "LongitudinalProfileLoss",
    "MaskValueLoss",
    "TransverseProfileLoss",
    "asymmetric_exponential_mse",
    "channel_sums",
    "channel_wasserstein_loss",
    "core_tail_cdf",
    "core_tail_density",
    "energy_conservation_loss",
    "fit_gamma_profile",
    "gamma_layer_fractions",
    "longitudinal_profile_loss",
    "mask_value_loss",
    "transverse_profile_loss",
]
