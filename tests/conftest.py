"""Test-wide set-up: quiet logs (warnings and errors still show), and the Mosquitto fixtures."""
from gateway import logs
from tests.mqtt_broker import broker, prefix  # noqa: F401 - fixtures for every test that needs Mosquitto

logs.configure("warning")
