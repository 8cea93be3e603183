"""Deployment controller (upstream pkg/controller/deployment), split by concern."""
from kubelite.controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
