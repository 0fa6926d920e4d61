"""calozdc.callbacks: Keras callbacks that watch the physics of generated showers.

* :class:`PhysicsMetricsCallback`: channel W1, total-energy W1 (optionally FPD/KPD) into the
  epoch logs every k epochs (History, EarlyStopping, KerasTuner objectives, TensorBoard).
* :class:`ShowerImagesCallback`: real vs generated shower images and channel-sum histograms
  in TensorBoard event files.
* :class:`TrainingScalarsCallback`: learning rates (``lr``, ``g_lr``/``d_lr``), loss-scale
  factors and VQ codebook health into the logs (place it before Keras' ``TensorBoard``).
* :class:`NonFiniteGuard`: stops ``fit`` at the first NaN/inf in the logs, recording where.
* :class:`RunCheckpoint` / :func:`load_checkpoint`: atomic periodic checkpoints (model,
  optimizers, history, random-generator states) for an exact resume.
"""

from calozdc.callbacks.non_finite_guard import NonFiniteGuard
from calozdc.callbacks.physics_metrics_callback import PhysicsMetricsCallback, physics_metrics
from calozdc.callbacks.run_checkpoint import RunCheckpoint, load_checkpoint
from calozdc.callbacks.shower_images_callback import ShowerImagesCallback, log_colour_image
from calozdc.callbacks.training_scalars_callback import TrainingScalarsCallback

__all__ = ["NonFiniteGuard", "PhysicsMetricsCallback", "RunCheckpoint", "ShowerImagesCallback",
           "TrainingScalarsCallback", "load_checkpoint", "log_colour_image", "physics_metrics"]
