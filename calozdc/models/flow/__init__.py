"""Flow matching: conditional rectified flows with fixed-step ODE solvers."""

from calozdc.models.flow.conditional_mlp import ConditionalMLP
from calozdc.models.flow.flow_matching import FlowMatching
from calozdc.models.flow.flow_sampler import SOLVERS, FlowSampler
from calozdc.models.flow.latent_flow import LatentFlowMatching, conv_autoencoder

__all__ = ["SOLVERS", "ConditionalMLP", "FlowMatching", "FlowSampler", "LatentFlowMatching",
           "conv_autoencoder"]
