"""HAAQI (Kates & Arehart's Hearing-Aid Audio Quality Index, version 1) with the scores of pyclarity 0.9.0.

:func:`compute_haaqi` takes the arguments of ``clarity.evaluator.haaqi.compute_haaqi`` and returns the same
value, bit for bit, drawing the same values from numpy's global legacy generator in the same order (so a chain
of calls after one ``np.random.seed`` gives the same scores), at a fraction of the time and memory: the ear
model reduces each auditory band as soon as it is computed (:mod:`.ear_model`), its loops are compiled
(:mod:`.kernels`, :mod:`.legacy_random`) and only the lags that are used are correlated (:mod:`.alignment`).
"""

from cadenza.haaqi.haaqi import HAAQI_AUDIOGRAM_FREQUENCIES, compute_haaqi, haaqi_v1

__all__ = ["HAAQI_AUDIOGRAM_FREQUENCIES", "compute_haaqi", "haaqi_v1"]
