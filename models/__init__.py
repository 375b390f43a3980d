"""The model manifest, fetching and checking, graph surgery, and the similarity calibration files."""
