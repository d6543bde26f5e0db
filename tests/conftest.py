"""Test-wide set-up: quiet logs (warnings and errors still show), and the Mosquitto and PostgreSQL fixtures."""

from gateway import logs
from tests.mqtt_broker import broker, prefix  # noqa: F401 - fixtures for every test that needs Mosquitto
from tests.postgres import postgres_table, postgres_url  # noqa: F401 - and PostgreSQL

logs.configure("warning")
