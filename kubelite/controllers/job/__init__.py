"""The Job controller (``controller``) and its pure arithmetic (``util``)."""
from kubelite.controllers.job.controller import JobController

__all__ = ["JobController"]
