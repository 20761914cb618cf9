"""Zerynth's modules as ``blebridge run --api zerynth`` scripts import them (this directory is
on their sys.path; it is not a package they import)."""
