"""A stack of kernel-time predictors: a measured profile over a device calibration.

Owns answering each kernel from the first layer that knows it: a profile measured on this device
(exact shapes, interpolated) before the device's calibration (profiles/device_model.py: fitted
or transferred efficiencies that price any shape). Same questions as profiles.fit.FittedProfile,
plus the collectives a calibration carries. What no layer knows falls to the roofline in
ProfiledCostModel.
"""
from __future__ import annotations


class KernelStack:
    def __init__(self, *layers):
        self.layers = [layer for layer in layers if layer is not None]
        if not self.layers:
            raise ValueError("a kernel stack needs at least one predictor")
        self.ops = set().union(*(layer.ops for layer in self.layers))
        self.provenance = self.layers[0].provenance
        self.device = self.layers[0].device
        self.dtype = self.layers[0].dtype

    def _first(self, method: str, op: str, shape: dict, dtype: str):
        for layer in self.layers:
            got = getattr(layer, method)(op, shape, dtype)
            if got is not None:
                return got
        return None

    def predict(self, op: str, shape: dict, dtype: str):
        return self._first("predict", op, shape, dtype)

    def predict_clamped(self, op: str, shape: dict, dtype: str):
        return self._first("predict_clamped", op, shape, dtype)

    def answers(self, op: str):
        """The layer that prices `op`, or None."""
        return next((layer for layer in self.layers if op in layer.ops), None)

    def all_reduce_s(self, nbytes: float, num_gpus: int, latency_s: float | None = None):
        for layer in self.layers:
            if hasattr(layer, "all_reduce_s"):
                got = layer.all_reduce_s(nbytes, num_gpus, latency_s=latency_s)
                if got is not None:
                    return got
        return None

    def describe(self) -> list[dict]:
        return [layer.describe() if hasattr(layer, "describe") else
                {"profile": layer.provenance.get("table") or layer.provenance.get("trained_on"),
                 "device": layer.device, "dtype": layer.dtype} for layer in self.layers]
