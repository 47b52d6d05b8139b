"""Alerts: the sensor that turns failures into messages."""
