"""Demo data generator for the landing zone: ``python -m assets_project.demo generate``."""

from assets_project.demo.generate import GenerationReport, Scale, generate

__all__ = ["GenerationReport", "Scale", "generate"]
