"""The HorizontalPodAutoscaler controller: replica calculation, normalization, the sync loop."""
from kubelite.controllers.podautoscaler.controller import HorizontalPodAutoscalerController, configure

__all__ = ["HorizontalPodAutoscalerController", "configure"]
