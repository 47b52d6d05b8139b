"""Commands of ``python -m assets_project``, one module each."""
