"""Why a network trains or doesn't: activation statistics, gradient flow, anomaly detection, and
the Trainer callbacks that record them during a run (``deepgrad train --monitor``)."""

from .activations import ActivationStats, LayerActivations
from .anomaly import detect_anomaly
from .gradients import GradientFlow
from .monitors import ActivationMonitor, GradientFlowMonitor, Histogram, Monitor, Sample, standard_monitors
