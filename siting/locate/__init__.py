"""Facility-location models, one module per family over a shared base (the layout of pysal/spopt's ``locate``)."""

from .base import SitingResult
from .lscp import LSCP
from .mclp import MCLP
from .pmedian import PMedian

__all__ = ["LSCP", "MCLP", "PMedian", "SitingResult"]
