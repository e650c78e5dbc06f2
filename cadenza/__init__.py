"""The Cadenza CAD1 Task 1 recipe (separate, NAL-R per listener, remix, HAAQI) built on xumx-sliCQ-V2."""
