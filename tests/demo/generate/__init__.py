"""Tests of ``assets_project.demo.generate``, one module per module of the package."""
