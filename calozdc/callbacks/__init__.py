"""calozdc.callbacks: Keras callbacks that watch the physics of generated showers.

* :class:`PhysicsMetricsCallback`: channel W1, total-energy W1 (optionally FPD/KPD) into the
  epoch logs every k epochs (History, EarlyStopping, KerasTuner objectives, TensorBoard).
* :class:`ShowerImagesCallback`: real vs generated shower images and channel-sum histograms
  in TensorBoard event files.
"""

from calozdc.callbacks.physics_metrics_callback import PhysicsMetricsCallback, physics_metrics
from calozdc.callbacks.shower_images_callback import ShowerImagesCallback, log_colour_image

__all__ = ["PhysicsMetricsCallback", "ShowerImagesCallback", "log_colour_image",
           "physics_metrics"]
